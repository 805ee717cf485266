from django.db import models

from cron.exceptions import AuditImmutable


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


class OverrideMode(models.TextChoices):
    """A runtime override of a cron's mode, above the environment flags (CONTRACT.md
    "Runtime overrides")."""

    PAUSE = "pause"  # triggers are answered 200 ``paused`` and recorded; nothing runs
    FORCE_INLINE = "force-inline"  # triggers run inline (``inline-forced``), whatever the flags
    USE_QUEUE = "use-queue"  # triggers dispatch to the queue, whatever the flags


class CronOverride(models.Model):
    """At most one per cron; set and cleared only through ``cron.overrides.cron_override_set``,
    which writes the audit row in the same transaction."""

    cron = models.CharField(max_length=100)  # unique: cron_override_cron_unique
    mode = models.CharField(max_length=16, choices=OverrideMode.choices)
    reason = models.TextField()
    set_by = models.CharField(max_length=150)
    set_at = models.DateTimeField()

    class Meta:
        ordering = ["cron"]
        constraints = [models.UniqueConstraint(fields=["cron"], name="cron_override_cron_unique")]
        permissions = [("operate_cron", "Can dispatch, re-run and override crons")]

    def __str__(self) -> str:
        return f"{self.cron}: {self.mode}"


class AuditQuerySet(models.QuerySet):
    """Bulk edits and deletes refused too: the trail is append-only."""

    def update(self, **kwargs):
        raise AuditImmutable("override audit rows are never edited")

    def delete(self):
        raise AuditImmutable("override audit rows are never deleted")


class CronOverrideAudit(models.Model):
    """Who changed a cron's override, when, from what to what, and why. Append-only."""

    cron = models.CharField(max_length=100)
    old_mode = models.CharField(max_length=16, blank=True)  # "" = no override
    new_mode = models.CharField(max_length=16, blank=True)  # "" = cleared
    reason = models.TextField()
    actor = models.CharField(max_length=150)
    source = models.CharField(max_length=32)  # admin, command
    at = models.DateTimeField()

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["cron", "at"], name="cron_override_audit_cron_at")]

    def __str__(self) -> str:
        return f"{self.cron}: {self.old_mode or '-'} -> {self.new_mode or '-'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditImmutable("override audit rows are never edited")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutable("override audit rows are never deleted")


class PausedTrigger(models.Model):
    """A trigger answered ``paused`` (CONTRACT.md: "the trigger is recorded"). Kept apart from
    ``DispatchWindow`` so a pause never consumes a window: clearing the pause within the same
    window dispatches it."""

    cron = models.CharField(max_length=100)
    dispatch_key = models.CharField(max_length=255)
    source = models.CharField(max_length=32)
    correlation_id = models.CharField(max_length=128)
    params = models.JSONField(default=dict, blank=True)
    requested_at = models.DateTimeField()
    override_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["requested_at"], name="cron_paused_requested")]

    def __str__(self) -> str:
        return f"{self.dispatch_key} (paused)"
