"""Window math, dispatch keys, params hashes and task ids (CONTRACT.md "Dispatch key and ids")."""

import hashlib
from datetime import UTC, datetime

import pytest

from cron import keys


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_window_start__last_millisecond_and_next_window_differ():
    """…:59.999 and …:00.000 land in different windows."""
    before = keys.window_start(at("2026-02-17T19:31:59.999"), 60)
    after = keys.window_start(at("2026-02-17T19:32:00.000"), 60)
    assert before == at("2026-02-17T19:31:00")
    assert after == at("2026-02-17T19:32:00")


@pytest.mark.parametrize(
    ("seconds", "moment", "expected"),
    [
        (15, "2026-02-17T19:31:44.999", "2026-02-17T19:31:30"),
        (15, "2026-02-17T19:31:45.000", "2026-02-17T19:31:45"),
        (60, "2026-02-17T19:31:05", "2026-02-17T19:31:00"),
        (300, "2026-02-17T19:34:59.999", "2026-02-17T19:30:00"),
        (300, "2026-02-17T19:35:00", "2026-02-17T19:35:00"),
        (3600, "2026-02-17T19:59:59.999", "2026-02-17T19:00:00"),
        (3600, "2028-02-29T00:00:00", "2028-02-29T00:00:00"),
    ],
)
def test_window_start__window_sizes(seconds, moment, expected):
    """Windows of 15, 60, 300 and 3600 s floor to their start in UTC."""
    assert keys.window_start(at(moment), seconds) == at(expected)


def test_window_start__timezone_of_input_does_not_matter():
    """An aware time in another zone (across a DST change) floors to the same UTC window."""
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 8, 3, 0, 30, tzinfo=ZoneInfo("America/New_York"))  # just after DST
    assert keys.window_start(local, 60) == at("2026-03-08T07:00:00")


def test_dispatch_key__contract_example():
    """The example in CONTRACT.md, with no params suffix."""
    start = keys.window_start(at("2026-02-17T19:31:42"), 60)
    assert keys.dispatch_key("background-jobs", 60, start, {}) == (
        "background-jobs:v1:60:2026-02-17T19:31:00Z"
    )


def test_dispatch_key__params_order_does_not_change_the_key():
    """Params hash over canonical JSON: keys sorted, values as strings."""
    start = at("2026-02-17T19:31:00")
    one = keys.dispatch_key("c", 60, start, {"b": "2", "a": "1"})
    two = keys.dispatch_key("c", 60, start, {"a": "1", "b": "2"})
    assert one == two
    canonical = '{"a":"1","b":"2"}'
    assert one == f"c:v1:60:2026-02-17T19:31:00Z:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def test_params_hash__values_as_strings():
    """A number and its string hash alike."""
    assert keys.params_hash({"limit": 5}) == keys.params_hash({"limit": "5"})


def test_task_id__prefix_and_24_hex_of_the_key_hash():
    key = "background-jobs:v1:60:2026-02-17T19:31:00Z"
    expected = hashlib.sha256(key.encode()).hexdigest()[:24]
    assert keys.task_id("bg-process", key) == f"bg-process:{expected}"


@pytest.mark.parametrize(
    ("value", "kept"),
    [("abc-123", True), ("a" * 128, True), ("a" * 129, False), ("with space", False),
     ("ok.id:1_x-y", True), ("ünï", False), ("", False), (None, False)],
)
def test_correlation_id__charset_and_length(value, kept):
    assert (keys.correlation_id_or_none(value) is not None) is kept


def test_correlation_id__trailing_newline_is_refused():
    """``$`` matched before a final newline: "id\\n" was kept as a correlation id."""
    assert keys.correlation_id_or_none("ok-id\n") is None
    assert keys.correlation_id_or_none("ok-id") == "ok-id"


def test_params_hash__lone_surrogate_hashes_instead_of_raising():
    """A param with a lone surrogate (a command's --param) raised UnicodeEncodeError."""
    assert keys.params_hash({"clientId": "\ud800"}) != keys.params_hash({"clientId": "\udfff"})
