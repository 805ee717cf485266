"""response-timing: exact results on fixed data, idempotency, late answers, budget, queries."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from jobs.models import Client, Lead, Message, ResponseTimingEvent
from jobs.response_timing import response_timing_record

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=2)


def message(lead, direction, source, at, subject=""):
    return Message.objects.create(lead=lead, direction=direction, source=source, sent_at=at,
                                  subject=subject)


@pytest.fixture
def conversations(db):
    """Three leads: answered by a setter then the AI, then by a campaign email, then not at all;
    a lead who wrote twice before the AI answered; a reply outside the 90-day lookback."""
    client = Client.objects.create(name="Acme")
    ada = Lead.objects.create(client=client, email="ada@example.com")
    bob = Lead.objects.create(client=client, email="bob@example.com")
    old = Lead.objects.create(client=client, email="old@example.com")
    minutes = lambda n: T0 + timedelta(minutes=n)  # noqa: E731
    messages = {
        "ada_in1": message(ada, "inbound", "lead", minutes(0)),
        "ada_setter": message(ada, "outbound", "setter", minutes(5)),
        "ada_ai": message(ada, "outbound", "ai", minutes(6)),
        "ada_in2": message(ada, "inbound", "lead", minutes(60)),
        "ada_campaign": message(ada, "outbound", "campaign", minutes(120)),
        "ada_in3": message(ada, "inbound", "lead", minutes(180)),
        "bob_in1": message(bob, "inbound", "lead", minutes(10)),
        "bob_in2": message(bob, "inbound", "lead", minutes(20)),
        "bob_ai": message(bob, "outbound", "ai", minutes(30)),
        "old_in": message(old, "inbound", "lead", NOW - timedelta(days=91)),
        "old_setter": message(old, "outbound", "setter", NOW - timedelta(days=90, hours=23)),
    }
    return messages


def events() -> list[tuple]:
    return list(ResponseTimingEvent.objects.order_by("inbound_at").values_list(
        "inbound_message__subject", "lead__email", "responder", "response_delay_ms",
        "setter_delay_ms", "ai_delay_ms"))


def record(**options):
    with freeze_time(NOW):
        return response_timing_record(now=NOW, **options)


def test_response_timing_record__exact_result_on_fixed_data(conversations):
    """Three answered inbound messages in the lookback: three events, one setter, two AI."""
    result = record()
    assert result == {
        "inserted": 3, "updatedSetter": 1, "updatedAi": 2, "durationMs": 0, "exhausted": True,
        "scanFromIso": "2025-12-01T12:00:00.000Z", "scanToIso": "2026-03-01T12:00:00.000Z",
    }
    by_inbound = {event.inbound_message_id: event for event in ResponseTimingEvent.objects.all()}
    ada_first = by_inbound[conversations["ada_in1"].pk]
    assert (ada_first.responder, ada_first.response_delay_ms) == ("setter", 300_000)
    assert ada_first.response_message_id == conversations["ada_setter"].pk
    assert (ada_first.setter_message_id, ada_first.setter_delay_ms) == (
        conversations["ada_setter"].pk, 300_000)
    assert (ada_first.ai_message_id, ada_first.ai_delay_ms) == (conversations["ada_ai"].pk, 360_000)
    ada_second = by_inbound[conversations["ada_in2"].pk]
    assert (ada_second.responder, ada_second.response_delay_ms) == ("campaign", 3_600_000)
    assert (ada_second.setter_message_id, ada_second.ai_message_id) == (None, None)
    bob_second = by_inbound[conversations["bob_in2"].pk]
    assert (bob_second.responder, bob_second.response_delay_ms, bob_second.ai_delay_ms) == (
        "ai", 600_000, 600_000)
    assert set(by_inbound) == {conversations[name].pk for name in ("ada_in1", "ada_in2",
                                                                    "bob_in2")}
    assert all(event.created_at == NOW for event in by_inbound.values())


def test_response_timing_record__second_run_changes_nothing(conversations):
    """Running twice over the same data: the second run inserts and updates nothing."""
    record()
    before = list(ResponseTimingEvent.objects.order_by("pk").values())
    result = record()
    assert (result["inserted"], result["updatedSetter"], result["updatedAi"]) == (0, 0, 0)
    assert list(ResponseTimingEvent.objects.order_by("pk").values()) == before


def test_response_timing_record__late_setter_answer_fills_the_existing_event(conversations):
    """A setter answering after the AI (before the lead writes again) is recorded by the next
    run on the event the first run created."""
    record()
    bob = conversations["bob_ai"].lead
    late = message(bob, "outbound", "setter", T0 + timedelta(minutes=45))
    result = record()
    assert (result["inserted"], result["updatedSetter"], result["updatedAi"]) == (0, 1, 0)
    event = ResponseTimingEvent.objects.get(inbound_message=conversations["bob_in2"])
    assert (event.responder, event.setter_message_id, event.setter_delay_ms) == (
        "ai", late.pk, 1_500_000)
    assert ResponseTimingEvent.objects.count() == 3


def test_response_timing_record__small_batches_give_the_same_events(conversations):
    """Batches of one and two walk the same messages as one batch, a tie in sent_at included:
    of two inbound messages at the same instant, the later id is the one answered."""
    tie = message(conversations["ada_in1"].lead, "inbound", "lead", T0, subject="tie")
    record(batch_size=1)
    one_at_a_time = events()
    ResponseTimingEvent.objects.all().delete()
    record(batch_size=2)
    assert events() == one_at_a_time
    ResponseTimingEvent.objects.all().delete()
    record()
    assert events() == one_at_a_time
    answered = set(ResponseTimingEvent.objects.values_list("inbound_message", flat=True))
    assert tie.pk in answered and conversations["ada_in1"].pk not in answered


def test_response_timing_record__budget_stops_the_scan_and_says_so(conversations):
    """With the budget spent after the first batch, the run says exhausted false and where the
    scan stopped; the next run goes on from the start and finishes the work."""
    with freeze_time(NOW, auto_tick_seconds=1):
        result = response_timing_record(now=NOW, batch_size=2, budget_seconds=1.5)
    assert result["exhausted"] is False
    assert result["inserted"] == 1  # ada_in1 and bob_in1 scanned: only ada_in1 was answered
    assert result["scanToIso"] == "2026-02-27T12:10:00.000Z"  # bob_in1, the last one scanned
    assert record()["inserted"] == 2


def test_response_timing_record__queries_per_batch_do_not_grow_with_rows(db):
    """Each batch costs the same number of queries whether its leads have 2 or 12 messages:
    the work is bounded by batches, not by rows (no N+1)."""
    client = Client.objects.create(name="Acme")

    def load(prefix: str, leads: int, answers_per_reply: int):
        for number in range(leads):
            lead = Lead.objects.create(client=client, email=f"{prefix}{number}@example.com")
            moment = T0 + timedelta(minutes=number)
            message(lead, "inbound", "lead", moment)
            for answer in range(answers_per_reply):
                source = ("setter", "ai", "campaign")[answer % 3]
                message(lead, "outbound", source, moment + timedelta(seconds=answer + 1))

    def queries_for_batches() -> int:
        ResponseTimingEvent.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            record(batch_size=5)
        return len(captured)

    load("small", leads=10, answers_per_reply=1)  # two full batches, then an empty read
    small = queries_for_batches()
    Message.objects.all().delete()
    Lead.objects.all().delete()
    load("large", leads=10, answers_per_reply=11)
    large = queries_for_batches()
    assert small == large
    Message.objects.all().delete()
    Lead.objects.all().delete()
    load("double", leads=20, answers_per_reply=1)  # four full batches
    per_batch = (queries_for_batches() - small) // 2
    # The batch, its events, its leads' messages, and the insert (in a savepoint here: the
    # test's transaction).
    assert per_batch == 6
    assert small == 2 * per_batch + 1
