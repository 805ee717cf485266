"""Re-deliver a provider export through the same ingestion path as the route."""

import json
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from webhooks.exceptions import WebhookBadRequest
from webhooks.models import EventSource
from webhooks.services import webhook_event_ingest


class Command(BaseCommand):
    help = (
        "Replay a JSON file of webhook events through ingestion (dedupe, queueing, inline "
        "processing: as if posted). The file holds a JSON array; each item is an event body "
        "(an object), or {\"body\": <object or raw string>, \"headers\": {...}} to keep the "
        "delivery's own bytes and webhook-id. Exits non-zero when any item was refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        items = load_items(file)
        counts, problems = Counter(), []
        for position, item in enumerate(items, start=1):
            try:
                body, headers = delivery_of(item)
                outcome = webhook_event_ingest(body=body, headers=headers, now=timezone.now(),
                                               source=EventSource.REPLAY)
            except (WebhookBadRequest, ValueError) as error:
                counts["refused"] += 1
                problems.append(f"item {position}: {error}")
                continue
            if outcome.duplicate:
                counts["duplicates"] += 1
            else:
                counts[outcome.mode.value] += 1
        for problem in problems:
            self.stderr.write(problem)
        summary = ", ".join(f"{name}={counts[name]}" for name in
                            ("queued", "inline", "ignored", "duplicates", "refused"))
        self.stdout.write(f"Replayed {len(items)} item(s): {summary}")
        if problems:
            raise CommandError(f"{len(problems)} item(s) were refused; see above.")


def load_items(file: Path) -> list:
    try:
        items = json.loads(file.read_bytes())
    except OSError as error:
        raise CommandError(f"cannot read {file}: {error.strerror or error}") from None
    except ValueError as error:
        raise CommandError(f"{file} is not JSON: {error}") from None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise CommandError(f"{file} must hold a JSON array of events.")
    return items


def delivery_of(item) -> tuple[bytes, dict]:
    """(raw body, headers) of one export item."""
    if isinstance(item, dict) and "body" in item and "event" not in item:
        headers = item.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError("headers must be an object")
        body = item["body"]
        raw = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode()
        return raw, {str(k).lower(): str(v) for k, v in headers.items()}
    return json.dumps(item).encode("utf-8"), {}
