"""seed_demo: idempotent, and every cron of this half finds work in it."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from freezegun import freeze_time

from jobs.followups import followups_run
from jobs.models import Client, FollowUpInstance, Lead, Message
from jobs.response_timing import response_timing_record


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo__second_run_adds_nothing():
    """The first seed makes the demo; the second finds it all and says so."""
    assert "Demo data added: 3 clients, 3 campaigns, 11 leads" in seed()
    counts = (Client.objects.count(), Lead.objects.count(), Message.objects.count(),
              FollowUpInstance.objects.count())
    assert seed() == "Demo data already present: nothing added.\n"
    assert (Client.objects.count(), Lead.objects.count(), Message.objects.count(),
            FollowUpInstance.objects.count()) == counts


@pytest.mark.django_db
def test_seed_demo__providers_at_the_given_base_url():
    """Every provider URL of the demo clients is the --provider-base-url; one client has none."""
    seed("--provider-base-url", "http://127.0.0.1:9999/")
    acme, globex, initech = Client.objects.order_by("emailbison_workspace_id")
    assert acme.emailbison_workspace_id == "42"  # the README's sample webhook's workspace
    assert (acme.emailbison_base_url, acme.availability_base_url) == (
        "http://127.0.0.1:9999", "http://127.0.0.1:9999")
    assert acme.first_touch_slot_offers and acme.availability_source == "json"
    assert (globex.booking_provider, globex.booking_base_url) == ("json", "http://127.0.0.1:9999")
    assert not (initech.emailbison_base_url or initech.availability_source
                or initech.booking_provider)
    due = Lead.objects.filter(first_email_due_at__gt=timezone.now(), last_outbound_at=None)
    assert due.count() == 2 and all(lead.emailbison_lead_id for lead in due)


@pytest.mark.django_db
def test_seed_demo__response_timing_and_followups_find_work():
    """On the demo, response-timing records the answered replies and followups produces tasks,
    pauses, resumes; a second pass of each finds nothing more."""
    seed()
    now = timezone.now()
    with freeze_time(now):
        timing = response_timing_record(now=now)
        steps = followups_run(now=now)
    assert (timing["inserted"], timing["updatedSetter"], timing["updatedAi"]) == (6, 4, 3)
    assert {key: steps[key] for key in ("resumed", "paused", "tasksCreated", "advanced",
                                        "errors")} == {
        "resumed": 1, "paused": 1, "tasksCreated": 4, "advanced": 4, "errors": 0}
    with freeze_time(now):
        assert response_timing_record(now=now)["inserted"] == 0
        assert followups_run(now=now)["tasksCreated"] == 0
