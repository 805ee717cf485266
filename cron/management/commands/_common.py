"""What the cron commands share: finding the cron, parsing --param, printing an outcome."""

import json
import uuid

from django.core.management.base import CommandError
from django.utils import timezone

from cron.registry import CronDefinition, all_crons, get_cron
from cron.responses import outcome_body
from cron.services import Source, Trigger


def add_cron_arguments(parser) -> None:
    parser.add_argument("name", help="the cron's name, e.g. background-jobs")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a param the cron allows; repeat for several")


def command_trigger(name: str, pairs: list[str]) -> Trigger:
    """The trigger of a command run: source ``command``, now, a fresh correlation id."""
    cron = cron_or_error(name)
    return Trigger(cron=cron, source=Source.COMMAND, params=parse_params(cron, pairs),
                   correlation_id=f"command:{uuid.uuid4()}", requested_at=timezone.now())


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
