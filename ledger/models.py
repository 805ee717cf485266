"""The ledger: one FunctionRun per execution of a registered function, with its attempts.

Status lifecycle: queued -> running -> succeeded | failed, or skipped / cancelled. Every run
reaches exactly one terminal status, with a reason. The ledger knows nothing of crons or
webhooks beyond strings.
"""

from django.db import models
from django.db.models import Q


class RunStatus(models.TextChoices):
    QUEUED = "queued"  # waiting for a worker (or for its next attempt's time)
    RUNNING = "running"  # claimed by a worker holding a lease
    SUCCEEDED = "succeeded"  # terminal: the function returned
    FAILED = "failed"  # terminal: out of attempts, non-retryable error, or abandoned
    SKIPPED = "skipped"  # terminal: not run (idempotent duplicate, overlap, lock held)
    CANCELLED = "cancelled"  # terminal: an operator or a failed enqueue called it off


class RunReason(models.TextChoices):
    ERROR = "error"  # the function raised
    TIMEOUT = "timeout"  # the function ran past its timeout
    ABANDONED = "abandoned"  # its worker died; the lease expired
    IDEMPOTENT_DUPLICATE = "idempotent-duplicate"  # a run with the same key already succeeded
    OVERLAP = "overlap"  # the function's overlap policy refused a run while another was active
    LOCKED = "locked"  # an inline run found the concurrency slot held
    CANCELLED_BY_OPERATOR = "cancelled-by-operator"  # cancelled from the admin or a command
    ENQUEUE_FAILED = "enqueue-failed"  # the broker refused it; the window may be retried


TERMINAL_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.SKIPPED,
    RunStatus.CANCELLED,
)
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class FunctionRun(models.Model):
    function = models.CharField(max_length=100)  # indexed first in ledger_run_waiting
    cron = models.CharField(max_length=100, blank=True)
    dispatch_key = models.CharField(max_length=255, blank=True)  # not indexed: see Meta.indexes
    # One success per (function, idempotency_key); defaults to the dispatch key.
    idempotency_key = models.CharField(max_length=255, blank=True)
    concurrency_key = models.CharField(max_length=255, blank=True)
    # Deterministic id of a dispatched run ("bg-process:<24 hex>"); null for inline runs.
    task_id = models.CharField(max_length=100, null=True, blank=True)  # unique: ledger_run_task_id
    correlation_id = models.CharField(max_length=128, blank=True)  # not indexed: see Meta.indexes
    source = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    inline = models.BooleanField(default=False)
    # Overlap policy of the run's function (skip, buffer-one, allow-all; ledger.registry.Overlap),
    # applied when the run is created.
    overlap = models.CharField(max_length=16, blank=True)
    # Which runs count as "the previous run" for the overlap policy: the cron and its params,
    # so a window for one client never skips another client's.
    overlap_key = models.CharField(max_length=255, blank=True)

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    reason = models.CharField(max_length=32, choices=RunReason.choices, blank=True)
    attempt = models.PositiveIntegerField(default=0)  # attempts started so far
    max_attempts = models.PositiveIntegerField(default=1)

    queued_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True, blank=True)  # last handed to the broker
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)  # first attempt's start
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)  # bounded by the runner (ledger.conf.ERROR_MAX_CHARS)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        # Uniqueness and indexes are declared here, not with unique=True / db_index=True on the
        # fields: on PostgreSQL those build a second "_like" (varchar_pattern_ops) index per
        # column that no query uses and every dispatch pays for on each run row it inserts.
        constraints = [
            models.UniqueConstraint(fields=["task_id"], name="ledger_run_task_id"),
            models.UniqueConstraint(
                fields=["function", "idempotency_key"],
                condition=Q(status="succeeded") & ~Q(idempotency_key=""),
                name="ledger_one_success_per_idempotency_key",
            ),
            # Exactly one terminal status, with a reason unless it succeeded; active runs have
            # neither a reason nor a finish time. The database refuses anything else.
            models.CheckConstraint(
                condition=(
                    Q(status__in=["queued", "running"], reason="", finished_at__isnull=True)
                    | Q(status="succeeded", reason="", finished_at__isnull=False)
                    | (
                        Q(status__in=["failed", "skipped", "cancelled"],
                          finished_at__isnull=False)
                        & ~Q(reason="")
                    )
                ),
                name="ledger_run_terminal_has_reason",
            ),
        ]
        indexes = [
            # The sweeper's and the runner's hot paths stay small however large the ledger grows.
            models.Index(
                fields=["status", "lease_expires_at"],
                name="ledger_run_active",
                condition=Q(status__in=["queued", "running"]),
            ),
            # Runs waiting for a slot (queued, no delivery out), oldest first, for the release
            # that wakes them. Partial: a dispatched run (sent at once) never enters it, and no
            # claim or finish of a running run touches it.
            models.Index(fields=["function", "concurrency_key", "queued_at"],
                         name="ledger_run_waiting",
                         condition=Q(status="queued", enqueued_at__isnull=True)),
            # No index on dispatch_key or correlation_id: a window finds its runs by their task
            # ids (unique, indexed), and the admin's search is a substring match no btree
            # serves. Each was one more random-key insert on every dispatch (write-ahead log
            # and CPU in the database server). Nothing filters runs by cron alone either.
            # Pruning reads finished runs only; queued and running ones stay out of this index.
            models.Index(fields=["finished_at"], name="ledger_run_finished",
                         condition=Q(finished_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.function} #{self.pk} {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class AttemptOutcome(models.TextChoices):
    RUNNING = "running"  # still in progress
    SUCCEEDED = "succeeded"  # the function returned
    SKIPPED = "skipped"  # the function declined its work (RunSkipped: its own lock was held)
    FAILED = "failed"  # the function raised
    TIMEOUT = "timeout"  # the function ran past its timeout
    ABANDONED = "abandoned"  # the worker died; the sweeper took the run back


class FunctionAttempt(models.Model):
    run = models.ForeignKey(FunctionRun, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    claim_token = models.UUIDField()
    outcome = models.CharField(
        max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.RUNNING
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="ledger_attempt_number_unique"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of run {self.run_id}: {self.outcome}"


class ConcurrencySlot(models.Model):
    """A held slot: at most ``limit`` rows per (function, key), one per slot number.

    The database's uniqueness is the lock. A slot whose run is no longer running under a live
    lease is stale and may be taken over, so a dead worker never holds a slot past its lease.
    """

    function = models.CharField(max_length=100)
    key = models.CharField(max_length=255, blank=True)
    slot = models.PositiveIntegerField()
    run = models.OneToOneField(FunctionRun, on_delete=models.CASCADE, related_name="slot")
    acquired_at = models.DateTimeField()
    # A claim found every slot of (function, key) held and left its run waiting: the release of
    # this slot wakes the oldest waiting run (``runner._hand_on``). Unset: no run can be waiting
    # for it, so the release looks for none.
    waiters = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["function", "key", "slot"], name="ledger_concurrency_slot_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.function}[{self.key}] slot {self.slot} -> run {self.run_id}"


class ClusterStat(models.Model):
    """A Django-Q cluster's status (its signed ``Stat``) on the ORM broker, which would keep it
    in Django's cache, per process here. Written by each cluster's sentinel at most every
    ``ledger.cluster_stats.WRITE_SECONDS`` (and on every status change), read by the probes, the
    metrics and ``cluster_alive``. On Redis, Django-Q keeps it in Redis and this table is empty.
    """

    key = models.CharField(max_length=255)  # unique: ledger_cluster_stat_key
    value = models.TextField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key"], name="ledger_cluster_stat_key"),
        ]

    def __str__(self) -> str:
        return self.key
