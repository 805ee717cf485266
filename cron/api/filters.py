"""Filters of the read API (django-filter): ``?cron=…&status=…&queued_after=…``."""

import django_filters as filters

from cron.models import DispatchWindow, WindowStatus
from ledger.models import FunctionRun, RunReason, RunStatus
from webhooks.models import EventStatus, WebhookEvent


class WindowFilter(filters.FilterSet):
    cron = filters.CharFilter()
    status = filters.ChoiceFilter(choices=WindowStatus.choices)
    source = filters.CharFilter()
    dispatch_key = filters.CharFilter()
    correlation_id = filters.CharFilter()
    window_start_after = filters.IsoDateTimeFilter(field_name="window_start", lookup_expr="gte")
    window_start_before = filters.IsoDateTimeFilter(field_name="window_start", lookup_expr="lt")

    class Meta:
        model = DispatchWindow
        fields = []


class RunFilter(filters.FilterSet):
    cron = filters.CharFilter()
    function = filters.CharFilter()
    status = filters.ChoiceFilter(choices=RunStatus.choices)
    reason = filters.ChoiceFilter(choices=RunReason.choices)
    source = filters.CharFilter()
    dispatch_key = filters.CharFilter()
    correlation_id = filters.CharFilter()
    task_id = filters.CharFilter()
    queued_after = filters.IsoDateTimeFilter(field_name="queued_at", lookup_expr="gte")
    queued_before = filters.IsoDateTimeFilter(field_name="queued_at", lookup_expr="lt")

    class Meta:
        model = FunctionRun
        fields = []


class WebhookEventFilter(filters.FilterSet):
    event_type = filters.CharFilter()
    status = filters.ChoiceFilter(choices=EventStatus.choices)
    dedupe_key = filters.CharFilter()
    received_after = filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = WebhookEvent
        fields = []
