"""A cron's effective mode and where it comes from: ``cron_mode``.

Precedence, first match wins:
1. the caller forced the path (``manage.py dispatch_cron``, the admin's "Dispatch now":
   ``dispatch=True``): ``queue`` from ``forced``. An operator's explicit request runs even
   while the cron is paused; a pause stops the schedulers' triggers.
2. a runtime override in the database (``CronOverride``): from ``override``.
3. the environment flags (``<PREFIX>_FORCE_INLINE``, then ``<PREFIX>_USE_QUEUE``): from ``env``.

Read on every trigger (one indexed query), so an override changes the route's answer at once.
"""

from dataclasses import dataclass
from enum import Enum

from cron import conf
from cron.models import CronOverride, OverrideMode
from cron.registry import CronDefinition


class CronMode(str, Enum):
    PAUSED = "paused"  # nothing runs; the trigger is recorded (PausedTrigger)
    INLINE_FORCED = "inline-forced"  # runs inline, whatever the queue flag
    INLINE = "inline"  # the queue flag is off: runs inline, as the old system did
    QUEUE = "queue"  # dispatched to the queue, once per window


class ModeSource(str, Enum):
    ENV = "env"
    OVERRIDE = "override"
    FORCED = "forced"


@dataclass(frozen=True)
class ModeDecision:
    mode: CronMode
    source: ModeSource
    why: str  # one line for people: the flag and its value, or the override's author and reason
    override: CronOverride | None = None


_BY_OVERRIDE = {
    OverrideMode.PAUSE: CronMode.PAUSED,
    OverrideMode.FORCE_INLINE: CronMode.INLINE_FORCED,
    OverrideMode.USE_QUEUE: CronMode.QUEUE,
}


def cron_mode(cron: CronDefinition, *, dispatch: bool | None = None) -> ModeDecision:
    """The mode a trigger of ``cron`` takes now (see the module's precedence)."""
    if dispatch:
        return ModeDecision(CronMode.QUEUE, ModeSource.FORCED,
                            "dispatch requested explicitly (command or admin)")
    override = CronOverride.objects.filter(cron=cron.name).first()
    if override is not None:
        return ModeDecision(_BY_OVERRIDE[OverrideMode(override.mode)], ModeSource.OVERRIDE,
                            f"{override.mode} set by {override.set_by} at "
                            f"{override.set_at:%Y-%m-%d %H:%M:%S} UTC: {override.reason}",
                            override)
    return env_mode(cron)


def env_mode(cron: CronDefinition) -> ModeDecision:
    """The mode the environment flags alone give."""
    if conf.forced_inline(cron):
        return ModeDecision(CronMode.INLINE_FORCED, ModeSource.ENV,
                            f"{cron.force_inline_setting}=true")
    uses_queue = conf.uses_queue(cron)
    return ModeDecision(CronMode.QUEUE if uses_queue else CronMode.INLINE, ModeSource.ENV,
                        f"{cron.use_queue_setting}={'true' if uses_queue else 'false'}")
