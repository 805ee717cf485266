"""The read API (``/api/v1/``): crons, windows, runs with their attempts, webhook events.

Read-only, staff only (a staff user's token or session), cursor-paginated newest first.
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from cron import conf
from cron.api.filters import RunFilter, WebhookEventFilter, WindowFilter
from cron.api.serializers import (
    CronSerializer,
    RunSerializer,
    WebhookEventSerializer,
    WebhookEventWithBodySerializer,
    WindowSerializer,
)
from cron.models import DispatchWindow
from cron.registry import CronDefinition, all_crons, get_cron
from cron.modes import cron_mode
from cron.selectors import cron_last_runs, cron_last_window
from ledger.models import FunctionRun
from webhooks.models import WebhookEvent


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def cron_state(cron: CronDefinition) -> dict:
    return {
        "name": cron.name,
        "route": cron.route,
        "url_path": cron.url_path,
        "functions": [{"name": f.name, "task_prefix": f.task_prefix} for f in cron.functions],
        "window_seconds": conf.window_seconds(cron),
        "schedule": cron.schedule,
        "allowed_params": sorted(cron.allowed_params),
        "description": cron.description,
        "mode": _mode(cron),
        "last_window": cron_last_window(cron),
        "last_runs": cron_last_runs(cron),
    }


def _mode(cron: CronDefinition) -> dict:
    decision = cron_mode(cron)
    return {"mode": decision.mode.value, "source": decision.source.value, "why": decision.why}


class CronViewSet(viewsets.ViewSet):
    """The cron registry, each cron with its effective mode and its latest window and runs."""

    lookup_field = "name"
    lookup_value_regex = "[a-z0-9-]+"

    @extend_schema(responses=CronSerializer(many=True))
    def list(self, request):
        return Response(CronSerializer([cron_state(c) for c in all_crons()], many=True).data)

    @extend_schema(responses=CronSerializer)
    def retrieve(self, request, name=None):
        cron = get_cron(name)
        if cron is None:
            raise Http404("no such cron")
        return Response(CronSerializer(cron_state(cron)).data)


class WindowViewSet(viewsets.ReadOnlyModelViewSet):
    """Dispatch windows: one per dispatch key."""

    queryset = DispatchWindow.objects.all()
    serializer_class = WindowSerializer
    filterset_class = WindowFilter
    pagination_class = NewestFirst


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    """Ledger runs, each with its attempts."""

    queryset = FunctionRun.objects.prefetch_related("attempts")
    serializer_class = RunSerializer
    filterset_class = RunFilter
    pagination_class = NewestFirst


INCLUDE = OpenApiParameter("include", OpenApiTypes.STR, enum=["raw_body"],
                           description="raw_body: add each event's body as received.")


@extend_schema(parameters=[INCLUDE])
class WebhookEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Webhook events, without their raw body unless ``?include=raw_body``."""

    queryset = WebhookEvent.objects.defer("raw_body")
    serializer_class = WebhookEventSerializer
    filterset_class = WebhookEventFilter
    pagination_class = NewestFirst

    def _with_body(self) -> bool:
        return "raw_body" in self.request.query_params.get("include", "").split(",")

    def get_queryset(self):
        return WebhookEvent.objects.all() if self._with_body() else super().get_queryset()

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or not self._with_body():
            return WebhookEventSerializer
        return WebhookEventWithBodySerializer
