"""Filters of the read API (django-filter): ``?cron=…&status=…&queued_after=…``."""

from datetime import UTC

import django_filters as filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from cron.models import DispatchWindow, WindowStatus
from ledger.models import FunctionRun, RunReason, RunStatus
from webhooks.models import EventStatus, WebhookEvent


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, converted to UTC: PostgreSQL refuses offsets past ±15:59, and a time
    that does not exist in UTC (year 1 at +05:00) is a 400, not a 500 (found by schemathesis)."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError("The time is out of range.", code="invalid") from None


class TimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class WindowFilter(filters.FilterSet):
    cron = filters.CharFilter()
    status = filters.ChoiceFilter(choices=WindowStatus.choices)
    source = filters.CharFilter()
    dispatch_key = filters.CharFilter()
    correlation_id = filters.CharFilter()
    window_start_after = TimeFilter(field_name="window_start", lookup_expr="gte")
    window_start_before = TimeFilter(field_name="window_start", lookup_expr="lt")

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
    queued_after = TimeFilter(field_name="queued_at", lookup_expr="gte")
    queued_before = TimeFilter(field_name="queued_at", lookup_expr="lt")

    class Meta:
        model = FunctionRun
        fields = []


class WebhookEventFilter(filters.FilterSet):
    event_type = filters.CharFilter()
    status = filters.ChoiceFilter(choices=EventStatus.choices)
    dedupe_key = filters.CharFilter()
    received_after = TimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = TimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = WebhookEvent
        fields = []
