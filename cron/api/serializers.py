"""What the read API shows. Claim tokens stay inside; a webhook's raw body only on request."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cron.models import DispatchWindow
from ledger.models import FunctionAttempt, FunctionRun
from webhooks.models import WebhookEvent


class WindowSerializer(serializers.ModelSerializer):
    class Meta:
        model = DispatchWindow
        fields = ["id", "dispatch_key", "cron", "window_start", "window_seconds", "params",
                  "status", "source", "correlation_id", "requested_at", "task_ids",
                  "dispatch_attempts", "enqueue_error", "created_at", "updated_at"]


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = FunctionAttempt
        fields = ["number", "outcome", "started_at", "finished_at", "duration_ms", "error",
                  "worker_host", "worker_pid"]


class RunSerializer(serializers.ModelSerializer):
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = FunctionRun
        fields = ["id", "function", "cron", "dispatch_key", "correlation_id", "task_id",
                  "source", "params", "payload", "inline", "status", "reason", "attempt",
                  "max_attempts", "queued_at", "enqueued_at", "next_attempt_at", "started_at",
                  "finished_at", "heartbeat_at", "lease_expires_at", "duration_ms", "error",
                  "result", "attempts"]


class WebhookEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEvent
        fields = ["id", "provider", "event_type", "dedupe_key", "webhook_id", "lead_email",
                  "source", "status", "attempts", "max_attempts", "next_attempt_at",
                  "last_error", "received_at", "processed_at", "claimed_by", "lease_expires_at",
                  "result", "requeue_count", "requeued_at", "requeued_by"]


class WebhookEventWithBodySerializer(WebhookEventSerializer):
    raw_body = serializers.SerializerMethodField(
        help_text="The body as received, decoded as UTF-8 (undecodable bytes replaced).")

    class Meta(WebhookEventSerializer.Meta):
        fields = [*WebhookEventSerializer.Meta.fields, "raw_body"]

    @extend_schema_field(serializers.CharField())
    def get_raw_body(self, event) -> str:
        return bytes(event.raw_body).decode("utf-8", "replace")


class CronFunctionSerializer(serializers.Serializer):
    name = serializers.CharField()
    task_prefix = serializers.CharField()


class CronModeSerializer(serializers.Serializer):
    mode = serializers.CharField(help_text="queue, inline, inline-forced or paused.")
    source = serializers.CharField(help_text="env (the flags), override (set at runtime) or "
                                             "forced.")
    why = serializers.CharField(help_text="The flag and its value, or the override's author "
                                          "and reason.")


class LastRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    function = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField()
    dispatch_key = serializers.CharField()
    correlation_id = serializers.CharField()
    queued_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class LastWindowSerializer(serializers.Serializer):
    dispatch_key = serializers.CharField()
    status = serializers.CharField()
    correlation_id = serializers.CharField()
    requested_at = serializers.DateTimeField()


class CronSerializer(serializers.Serializer):
    """A cron of the registry (cron.registry.CronDefinition) with its state."""

    name = serializers.CharField()
    route = serializers.CharField()
    url_path = serializers.CharField()
    functions = CronFunctionSerializer(many=True)
    window_seconds = serializers.IntegerField(help_text="The effective window (overrides applied).")
    schedule = serializers.CharField()
    allowed_params = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    mode = CronModeSerializer()
    last_window = LastWindowSerializer(allow_null=True)
    last_runs = LastRunSerializer(many=True, help_text="The latest run of each function.")
