"""What to check before a rollout (``manage.py preflight``), each check named, with a detail
that says what to do: the flags' effective values and where they come from, the emergency
fallback off, migrations applied, the broker reachable, a cluster seen recently, webhook and
cron auth configured, the sweeper scheduled, DEBUG off."""

from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from cron import conf
from cron.modes import cron_mode
from cron.registry import all_crons
from dispatch_project.env import env_is_set
from ledger.enqueue import broker
from ledger.selectors import cluster_last_seen, sweeper_schedule_state
from webhooks import conf as webhooks_conf

CLUSTER_SEEN_WITHIN_SECONDS = 120
WEBHOOK_FLAGS = ("INBOXXIA_EMAIL_SENT_ASYNC", "WEBHOOK_ALLOW_UNAUTHENTICATED",
                 "WEBHOOK_INLINE_EVENT_TYPES")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def flag_values() -> list[dict]:
    """Every mode flag: its effective value and where it comes from (``env`` or ``default``)."""
    values = []
    for cron in all_crons():
        values += [(cron.use_queue_setting, conf.uses_queue(cron)),
                   (cron.force_inline_setting, conf.forced_inline(cron)),
                   (cron.emergency_fallback_setting, conf.emergency_fallback(cron)),
                   (cron.window_setting, conf.window_seconds(cron))]
    values += [(name, getattr(settings, name, None)) for name in WEBHOOK_FLAGS]
    return [{"flag": name, "value": value, "source": "env" if env_is_set(name) else "default"}
            for name, value in values if name]


def cron_modes() -> list[dict]:
    modes = []
    for cron in all_crons():
        decision = cron_mode(cron)
        modes.append({"cron": cron.name, "mode": decision.mode.value,
                      "source": decision.source.value, "why": decision.why,
                      "windowSeconds": conf.window_seconds(cron)})
    return modes


def preflight_checks(*, now) -> list[Check]:
    return [_emergency_fallback(), _migrations(), _broker(), _cluster(now), _webhook_auth(),
            _cron_secret(), _sweeper(now), _debug()]


def preflight_report(*, now) -> dict:
    checks = preflight_checks(now=now)
    return {"ok": all(check.ok for check in checks),
            "problems": [check.name for check in checks if not check.ok],
            "checks": [asdict(check) for check in checks],
            "flags": flag_values(), "crons": cron_modes()}


def _emergency_fallback() -> Check:
    on = [cron.emergency_fallback_setting for cron in all_crons() if conf.emergency_fallback(cron)]
    if on:
        return Check("emergency-fallback", False, f"{', '.join(on)} is on: a broker outage runs "
                     "the work inline in web requests; set it false once the incident is over")
    return Check("emergency-fallback", True, "off")


def _migrations() -> Check:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:
        return Check("migrations", False, f"database unreachable: {type(error).__name__}: "
                     f"{error}"[:300])
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return Check("migrations", False, f"{len(plan)} not applied ({names}): run manage.py "
                     "migrate")
    return Check("migrations", True, "all applied")


def _broker() -> Check:
    try:
        client = broker()
        client.ping()
        size = client.queue_size()
    except Exception as error:
        return Check("broker", False, f"unreachable: {type(error).__name__}: {error}"[:300])
    return Check("broker", True, f"{client.info()}, {size} task(s) waiting")


def _cluster(now) -> Check:
    seen = cluster_last_seen(now=now)
    if seen["at"] is None:
        return Check("cluster", False, "no cluster seen yet: start manage.py qcluster")
    if seen["ageSeconds"] > CLUSTER_SEEN_WITHIN_SECONDS:
        return Check("cluster", False, f"last seen {seen['ageSeconds']:.0f} s ago: is "
                     "manage.py qcluster running?")
    return Check("cluster", True, f"seen {seen['ageSeconds']:.0f} s ago")


def _webhook_auth() -> Check:
    if webhooks_conf.allow_unauthenticated():
        return Check("webhook-auth", False, "WEBHOOK_ALLOW_UNAUTHENTICATED=true: anyone can "
                     "post events; set WEBHOOK_TOKEN or WEBHOOK_SIGNING_SECRET instead")
    kinds = [name for name, values in (("WEBHOOK_TOKEN", webhooks_conf.tokens()),
                                       ("WEBHOOK_SIGNING_SECRET", webhooks_conf.signing_secrets()))
             if values]
    if not kinds:
        return Check("webhook-auth", False, "neither WEBHOOK_TOKEN nor WEBHOOK_SIGNING_SECRET "
                     "is set: the webhook route refuses every event (503)")
    return Check("webhook-auth", True, " and ".join(kinds))


def _cron_secret() -> Check:
    if not conf.cron_secret():
        return Check("cron-secret", False, "CRON_SECRET is not set: every cron route answers 503")
    return Check("cron-secret", True, "set")


def _sweeper(now) -> Check:
    state = sweeper_schedule_state(now=now)
    if not state["scheduled"]:
        return Check("sweeper", False, "the ledger:sweep schedule is missing: run manage.py "
                     "migrate (or sync_cron_schedules)")
    return Check("sweeper", True, f"scheduled, next run {state['nextRunAt']:%Y-%m-%d %H:%M:%S} UTC")


def _debug() -> Check:
    if settings.DEBUG:
        return Check("debug", False, "DJANGO_DEBUG=true: never in production")
    return Check("debug", True, "off")
