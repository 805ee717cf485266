"""System checks for the cron configuration (``manage.py check``)."""

from django.core.checks import Error, Tags, register

from cron import conf
from cron.registry import all_crons
from ledger.exceptions import UnknownFunction
from ledger.registry import get_function


@register(Tags.security)
def check_cron_secret(app_configs=None, **kwargs):
    if conf.cron_secret():
        return []
    return [
        Error(
            "CRON_SECRET is not set: every cron route answers 503 'cron endpoint not configured'.",
            hint="Set CRON_SECRET to a long random string and give the same value to the "
            "scheduler (Authorization: Bearer <secret>).",
            id="cron.E001",
        )
    ]


@register(Tags.compatibility)
def check_cron_functions(app_configs=None, **kwargs):
    errors = []
    for cron in all_crons():
        for function in cron.functions:
            try:
                get_function(function.name)
            except UnknownFunction:
                errors.append(
                    Error(
                        f"Cron {cron.name!r} enqueues {function.name!r}, which no app registers.",
                        hint="Register it with ledger.registry.register_function in jobs/"
                        "registration.py, or fix the name in cron/catalog.py.",
                        id="cron.E002",
                    )
                )
    return errors
