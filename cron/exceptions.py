"""The cron app's errors. The docstring is the default message; messages say what to do."""


class CronError(Exception):
    """Something about a cron went wrong."""


class UnknownCron(CronError, LookupError):
    """No cron by that name is registered."""


class InvalidOverride(CronError, ValueError):
    """The override's mode or reason is not acceptable."""


class AuditImmutable(CronError):
    """An audit row is append-only: written once, never edited or deleted."""
