import pytest

from jobs.models import Client


@pytest.fixture
def workspace(db):
    """The Client the fixtures' events belong to (EmailBison workspace 42)."""
    return Client.objects.create(name="Acme Outreach", emailbison_workspace_id="42")


@pytest.fixture
def test_handler():
    """Register a handler for the TEST_EVENT type; unregistered after the test."""
    from webhooks.registry import register_handler, unregister_handler

    registered = []

    def register(handler, event_type="TEST_EVENT"):
        register_handler(event_type, handler, replace=True)
        registered.append(event_type)
        return event_type

    yield register
    for event_type in registered:
        unregister_handler(event_type)
