"""manage.py replay_webhooks: a provider export through the ingestion path."""

import json

import pytest
from django.core.management import CommandError, call_command

from tests.webhooks.helpers import fixture_payload
from webhooks.models import EventSource, EventStatus, WebhookEvent


def write(tmp_path, items) -> str:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(items))
    return str(path)


@pytest.mark.django_db
def test_replay__ingests_counts_and_dedupes(tmp_path, capsys):
    """Events are stored as replayed; a repeat is a duplicate; counts are printed."""
    items = [fixture_payload("email_sent__basic"), fixture_payload("lead_replied__basic"),
             fixture_payload("email_sent__basic"),
             fixture_payload("manual_email_sent__unknown_type"),
             {"body": json.dumps(fixture_payload("email_opened__basic")),
              "headers": {"Webhook-Id": "msg_export_1"}}]
    call_command("replay_webhooks", write(tmp_path, items))
    out = capsys.readouterr().out
    assert "queued=3" in out and "duplicates=1" in out and "ignored=1" in out
    assert "refused=0" in out
    assert WebhookEvent.objects.count() == 4
    assert set(WebhookEvent.objects.values_list("source", flat=True)) == {EventSource.REPLAY}
    assert WebhookEvent.objects.filter(dedupe_key="webhook-id:msg_export_1").exists()
    assert WebhookEvent.objects.filter(status=EventStatus.PENDING).count() == 3


@pytest.mark.django_db
def test_replay__refused_items_exit_non_zero_after_storing_the_rest(tmp_path, capsys):
    """A bad item is reported and makes the command fail; good items are still stored."""
    missing_id = fixture_payload("email_sent__missing_scheduled_email_id")
    path = write(tmp_path, [fixture_payload("email_sent__basic"), missing_id, [1, 2]])
    with pytest.raises(CommandError, match="2 item"):
        call_command("replay_webhooks", path)
    err = capsys.readouterr().err
    assert "item 2" in err and "item 3" in err
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("content", [b"not json", b'"a string"'])
def test_replay__unreadable_file_is_an_error(tmp_path, content):
    """A file that is not a JSON array of events fails with a message."""
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(CommandError):
        call_command("replay_webhooks", str(path))


def test_replay__missing_file_is_an_error(tmp_path):
    """A path that does not exist fails with a message, not a traceback."""
    with pytest.raises(CommandError, match="cannot read"):
        call_command("replay_webhooks", str(tmp_path / "nope.json"))
