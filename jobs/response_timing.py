"""``response-timing``: how fast each inbound message was answered, and by whom (DOMAIN.md).

The scan walks the lookback's inbound messages oldest first, ``batch_size`` at a time, keyed on
(sent_at, id). Per batch, whatever its rows: one read of the batch, one of the batch's existing
events, one of the batch's leads' later messages, and at most one insert and one update. An
inbound message whose next message on its lead is outbound gets one ``ResponseTimingEvent``
(unique on the message): that next message is the response; the first setter and the first AI
answer before the lead wrote again fill ``setter_*`` and ``ai_*``, now or in a later run once
they exist. A second run over the same data changes nothing.

Result: ``inserted`` (events created), ``updatedSetter`` / ``updatedAi`` (events whose setter /
AI answer was recorded by this run, new events included), ``durationMs``, ``exhausted`` (true
when the scan reached the end of the lookback; false when the time budget stopped it first),
``scanFromIso`` and ``scanToIso`` (the range scanned: the lookback's start, and its end or the
last inbound message scanned when the budget stopped the scan).
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.db.models import Q

from jobs import conf
from jobs.inserts import rows_insert_new
from jobs.models import Direction, Message, MessageSource, Responder, ResponseTimingEvent

logger = logging.getLogger(__name__)

RESPONDERS = {MessageSource.SETTER: Responder.SETTER, MessageSource.AI: Responder.AI}


class _Row(NamedTuple):
    """A message as the scan needs it (a tuple: thousands are made per batch)."""

    id: int
    lead_id: int
    direction: str
    source: str
    sent_at: datetime


@dataclass
class _Counts:
    inserted: int = 0
    updated_setter: int = 0
    updated_ai: int = 0


def response_timing_record(*, now: datetime,
                           lookback_days: int = conf.RESPONSE_TIMING_LOOKBACK_DAYS,
                           batch_size: int = conf.RESPONSE_TIMING_BATCH_SIZE,
                           budget_seconds: float | None = None) -> dict:
    """Record the response timing of the lookback's inbound messages (see the module doc)."""
    started = time.monotonic()
    budget = conf.response_timing_budget_seconds() if budget_seconds is None else budget_seconds
    deadline = started + budget
    scan_from = now - timedelta(days=lookback_days)
    counts = _Counts()
    cursor: tuple[datetime, int] | None = None
    exhausted = False
    while time.monotonic() < deadline:
        batch = _inbound_batch(scan_from=scan_from, scan_to=now, after=cursor, size=batch_size)
        if batch:
            _record_batch(batch, now=now, counts=counts)
            cursor = (batch[-1].sent_at, batch[-1].id)
        if len(batch) < batch_size:
            exhausted = True
            break
    result = {
        "inserted": counts.inserted,
        "updatedSetter": counts.updated_setter,
        "updatedAi": counts.updated_ai,
        "durationMs": int((time.monotonic() - started) * 1000),
        "exhausted": exhausted,
        "scanFromIso": iso_millis(scan_from),
        "scanToIso": iso_millis(now if exhausted or cursor is None else cursor[0]),
    }
    logger.info("response timing recorded", extra={"action": "response_timing_recorded",
                                                   **result})
    return result


def iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_FIELDS = ("id", "lead_id", "direction", "source", "sent_at")


def _inbound_batch(*, scan_from: datetime, scan_to: datetime, after: tuple[datetime, int] | None,
                   size: int) -> list[_Row]:
    query = Message.objects.filter(direction=Direction.INBOUND, sent_at__gte=scan_from,
                                   sent_at__lte=scan_to)
    if after is not None:
        # The plain lower bound lets the (direction, sent_at) index start at the cursor.
        query = query.filter(Q(sent_at__gt=after[0]) | Q(sent_at=after[0], id__gt=after[1]),
                             sent_at__gte=after[0])
    return [_Row._make(values) for values in
            query.order_by("sent_at", "id").values_list(*_FIELDS)[:size]]


def _record_batch(batch: list[_Row], *, now: datetime, counts: _Counts) -> None:
    existing = {event.inbound_message_id: event for event in ResponseTimingEvent.objects.filter(
        inbound_message_id__in=[row.id for row in batch])}
    following, positions = _later_messages(batch)
    new_events, changed = [], []
    for inbound in batch:
        answer = _answer_of(following[inbound.lead_id], positions[inbound.id])
        if answer is None:
            continue
        response, setter, ai = answer
        event = existing.get(inbound.id)
        if event is None:
            event = ResponseTimingEvent(
                inbound_message_id=inbound.id, lead_id=inbound.lead_id,
                inbound_at=inbound.sent_at, response_message_id=response.id,
                responder=RESPONDERS.get(response.source, Responder.CAMPAIGN),
                response_delay_ms=_delay_ms(inbound, response), created_at=now, updated_at=now)
            new_events.append(event)
        filled_setter = setter is not None and event.setter_message_id is None
        filled_ai = ai is not None and event.ai_message_id is None
        if filled_setter:
            event.setter_message_id, event.setter_delay_ms = setter.id, _delay_ms(inbound, setter)
            counts.updated_setter += 1
        if filled_ai:
            event.ai_message_id, event.ai_delay_ms = ai.id, _delay_ms(inbound, ai)
            counts.updated_ai += 1
        if event.pk is not None and (filled_setter or filled_ai):
            event.updated_at = now
            changed.append(event)
    # The insert and the update are independent: a run that dies between them leaves work the
    # next run finds.
    ids = [row.id for row in batch]
    counts.inserted += rows_insert_new(
        ResponseTimingEvent, new_events,
        count_rows=ResponseTimingEvent.objects.filter(inbound_message_id__in=ids).count)
    if changed:
        ResponseTimingEvent.objects.bulk_update(
            changed, ["setter_message", "setter_delay_ms", "ai_message", "ai_delay_ms",
                      "updated_at"])


def _later_messages(batch: list[_Row]) -> tuple[dict[int, list[_Row]], dict[int, int]]:
    """Every message of the batch's leads from the batch's first inbound on, per lead, in
    (sent_at, id) order, and each message's position in its lead's list: one query."""
    leads = {row.lead_id for row in batch}
    query = Message.objects.filter(lead_id__in=leads, sent_at__gte=batch[0].sent_at).order_by(
        "lead_id", "sent_at", "id").values_list(*_FIELDS)
    per_lead, positions = defaultdict(list), {}
    for values in query:
        row = _Row._make(values)
        positions[row.id] = len(per_lead[row.lead_id])
        per_lead[row.lead_id].append(row)
    return per_lead, positions


def _answer_of(messages: list[_Row],
               position: int) -> tuple[_Row, _Row | None, _Row | None] | None:
    """(response, first setter answer, first AI answer) when the message after the inbound one at
    ``position`` is outbound; None when it is inbound or there is none yet."""
    if position + 1 >= len(messages) or messages[position + 1].direction != Direction.OUTBOUND:
        return None
    setter = ai = None
    for index in range(position + 1, len(messages)):
        row = messages[index]
        if row.direction == Direction.INBOUND:
            break  # the lead wrote again: later answers answer that message
        if row.source == MessageSource.SETTER and setter is None:
            setter = row
        elif row.source == MessageSource.AI and ai is None:
            ai = row
    return messages[position + 1], setter, ai


def _delay_ms(inbound: _Row, answer: _Row) -> int:
    return int((answer.sent_at - inbound.sent_at).total_seconds() * 1000)
