from django.db import models


class WindowStatus(models.TextChoices):
    """Whether the window's work was handed over; never whether it finished (the ledger says)."""

    # Claimed with its runs; the Redis pushes in progress (the ORM broker commits the window
    # ``enqueued`` with its tasks). Maintenance settles one left behind by a dead process.
    DISPATCHING = "dispatching"
    ENQUEUED = "enqueued"  # every function was handed to the broker
    ENQUEUE_FAILED = "enqueue-failed"  # the broker refused; a retry in the window takes it over
    INLINE_EMERGENCY = "inline-emergency"  # the enqueue failed and the work ran inline instead


class DispatchWindow(models.Model):
    """One row per dispatch key, unique in the database, whatever triggered it."""

    dispatch_key = models.CharField(max_length=255)  # unique: cron_window_dispatch_key_unique
    cron = models.CharField(max_length=100)
    window_start = models.DateTimeField()
    window_seconds = models.PositiveIntegerField()
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=WindowStatus.choices)
    source = models.CharField(max_length=32)
    correlation_id = models.CharField(max_length=128)
    requested_at = models.DateTimeField()
    task_ids = models.JSONField(default=list, blank=True)
    dispatch_attempts = models.PositiveIntegerField(default=1)
    enqueue_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-window_start", "-id"]
        # Declared here rather than with unique=True on the field: on PostgreSQL that also builds
        # a second "_like" (varchar_pattern_ops) index that no query uses and every dispatch would
        # pay for. ON CONFLICT (dispatch_key) infers this one. No index on cron: a few hundred
        # windows a day per cron, pruned; the admin's filter reads them fine without one.
        constraints = [
            models.UniqueConstraint(fields=["dispatch_key"], name="cron_window_dispatch_key_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="cron_window_created")]

    def __str__(self) -> str:
        return self.dispatch_key
