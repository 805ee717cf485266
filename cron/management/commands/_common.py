"""What the cron commands share: finding the cron, parsing --param, printing an outcome."""

import json

from django.core.management.base import CommandError

from cron.registry import CronDefinition, all_crons, get_cron
from cron.responses import outcome_body


def cron_or_error(name: str) -> CronDefinition:
    cron = get_cron(name)
    if cron is None:
        known = ", ".join(c.name for c in all_crons())
        raise CommandError(f"No cron named {name!r}. Known crons: {known}.")
    return cron


def parse_params(cron: CronDefinition, pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"--param {pair!r}: write it as name=value.")
        if name not in cron.allowed_params:
            allowed = ", ".join(sorted(cron.allowed_params)) or "none"
            raise CommandError(f"--param {name!r}: {cron.name} accepts: {allowed}.")
        if value != "":
            params[name] = value
    return params


def render(outcome) -> str:
    status, body = outcome_body(outcome)
    return json.dumps({"httpStatus": status, **body}, indent=2, default=str)
