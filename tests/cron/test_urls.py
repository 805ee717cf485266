"""The edges a new user finds: every /api/cron/ request is authenticated before its route is
looked up, unknown paths under /api/ answer JSON 404, and / is a landing page without secrets."""

import pytest
from django.test import Client, override_settings

from tests.conftest import CRON_SECRET

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/cron/nope", "/api/cron/", "/api/cron/a/b/c"])
def test_cron_paths__unknown_route_is_401_without_the_secret_404_with_it(path, cron_client):
    """Without credentials every path under /api/cron/ is 401 (nothing about which routes
    exist); with them an unknown route is the contract's JSON 404."""
    anonymous = Client().get(path)
    assert anonymous.status_code == 401
    assert anonymous.json() == {"success": False, "error": "unauthorized"}
    known = cron_client.get(path)
    assert known.status_code == 404
    assert known.json() == {"success": False, "error": "unknown cron route"}


def test_cron_paths__wrong_method_without_the_secret_is_401_with_it_405(cron_client):
    """Authentication comes before the method check too."""
    assert Client().delete("/api/cron/background-jobs").status_code == 401
    assert cron_client.delete("/api/cron/background-jobs").status_code == 405


@override_settings(CRON_SECRET="")
def test_cron_paths__unconfigured_secret_is_503_for_any_route():
    """No CRON_SECRET: 503 'not configured', unknown route or not."""
    response = Client().get("/api/cron/nope")
    assert (response.status_code, response.json()["error"]) == (503,
                                                               "cron endpoint not configured")


@pytest.mark.parametrize("path", ["/api/", "/api/nope", "/api/webhooks/nope", "/api/v0/runs"])
def test_api_paths__unknown_is_json_404(path):
    """Unknown paths under /api/ answer JSON, for GET and POST (no CSRF or login in the way)."""
    for response in (Client().get(path), Client(enforce_csrf_checks=True).post(path)):
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"success": False, "error": "not found"}


def test_landing__public_links_admin_health_and_docs_and_no_secret():
    """/ needs no login, links the admin, status, health routes and docs, lists the crons'
    routes, and shows no secret."""
    response = Client().get("/")
    html = response.content.decode()
    assert response.status_code == 200
    for link in ('href="/admin/"', 'href="/admin/status/"', 'href="/healthz"',
                 'href="/readyz"', 'href="/healthz/pipeline"', "docs/deploy.md"):
        assert link in html
    assert "/api/cron/background-jobs" in html
    assert CRON_SECRET not in html and "test-webhook-token" not in html
