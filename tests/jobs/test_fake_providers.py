"""make run's fake providers (scripts/fake_providers.py) answer in the shapes the real clients
read, so the demo's crons do work rather than count errors."""

from datetime import UTC, date, datetime

import httpx
import pytest

from jobs.providers.availability import AvailabilityClient
from jobs.providers.booking import BookingClient
from jobs.providers.emailbison import EmailBisonClient
from jobs.providers.exceptions import ProviderRejected
from scripts import fake_providers


@pytest.fixture
def fake():
    server = fake_providers.start(port=0)
    yield server
    server.shutdown()
    server.server_close()


def test_fake_providers__emailbison_pages_and_custom_variables(fake):
    """Three pages of leads; a PATCHed custom variable is shown by the lead's GET."""
    with EmailBisonClient(base_url=fake.base_url, api_key="any") as client:
        pages = list(client.campaign_leads("7"))
        client.lead_custom_variable_set("7001", "availability_slot", "Tuesday at 10")
        shown = client.request_json("GET", "/api/leads/7001")
    assert [len(page) for page in pages] == [15, 15, 15]
    assert pages[0][0]["id"] == 7000
    assert shown["data"]["custom_variables"] == [{"name": "availability_slot",
                                                  "value": "Tuesday at 10"}]


def test_fake_providers__office_hours_on_weekdays(fake):
    """Two blocks a weekday in New York, none at the weekend."""
    with AvailabilityClient(base_url=fake.base_url, api_key="any") as client:
        slots = client.slots(start=date(2026, 3, 6), days=3)  # Friday to Sunday
    assert [(s.start_at.astimezone(UTC), s.end_at.astimezone(UTC)) for s in slots] == [
        (datetime(2026, 3, 6, 14, tzinfo=UTC), datetime(2026, 3, 6, 17, tzinfo=UTC)),
        (datetime(2026, 3, 6, 18, tzinfo=UTC), datetime(2026, 3, 6, 22, tzinfo=UTC))]


def test_fake_providers__appointments_by_email(fake):
    """The demo's two leads have a booked and a canceled meeting; some others a booked one,
    most none; the answers read as appointments."""
    with BookingClient(base_url=fake.base_url, api_key="any") as client:
        demo = [client.appointments(email=email)[0].status
                for email in ("hedy@example.com", "Katherine@example.com")]
        found = [client.appointments(email=f"lead{n}@example.com") for n in range(30)]
    assert demo == ["booked", "canceled"]
    assert any(found) and not all(found)
    assert {a.status for appointments in found for a in appointments} == {"booked"}


def test_fake_providers__refuses_requests_without_a_key(fake):
    """No bearer header: 401, as a real provider would; an unknown path: 404 (rejected)."""
    assert httpx.get(f"{fake.base_url}/slots?start=2026-03-02").status_code == 401
    with pytest.raises(ProviderRejected):
        with BookingClient(base_url=fake.base_url + "/nowhere", api_key="k") as client:
            client.appointments(email="a@example.com")
