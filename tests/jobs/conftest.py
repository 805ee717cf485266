import pytest

from jobs.models import Client


@pytest.fixture
def workspace(db):
    """The Client the fixtures' events belong to (EmailBison workspace 42)."""
    return Client.objects.create(name="Acme Outreach", emailbison_workspace_id="42")
