"""A NUL in a query parameter or the path is a 400 everywhere, never a 500 (issue 22, item 7):
every registered admin changelist, with a NUL in each filter and in the search."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.conftest import CRON_SECRET


def changelists() -> list[tuple[str, list[str]]]:
    """(changelist URL, query parameter names) of every registered model admin."""
    found = []
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        names = ["q", "status", "o"]
        for entry in model_admin.list_filter:
            field = entry[0] if isinstance(entry, tuple) else entry
            names += [field, f"{field}__exact", f"{field}__id__exact", f"{field}__gte"]
        found.append((url, names))
    return found


@pytest.fixture
def staff_client(db):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_changelists__nul_in_any_filter_or_search_is_400(staff_client):
    """Every changelist, every filter and ``q``: 400 (PostgreSQL raised DataError, a 500)."""
    checked = 0
    for url, names in changelists():
        for name in names:
            response = staff_client.get(url, {name: "a\x00b"})
            assert response.status_code == 400, (url, name, response.status_code)
            checked += 1
    assert checked > 40


@pytest.mark.django_db
def test_admin_changelists__still_answer_without_nul(staff_client):
    """The guard lets ordinary filters through."""
    for url, _ in changelists():
        assert staff_client.get(url, {"q": "ada"}).status_code == 200, url


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/cron/background-jobs?x=%00",
                                  "/api/webhooks/email?token=%00",
                                  "/api/cron/back%00ground-jobs"])
def test_machine_routes__nul_is_400(path):
    """The machine routes refuse it too (a param with NUL would reach a jsonb column)."""
    response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {CRON_SECRET}")
    assert response.status_code == 400
    assert response.json()["success"] is False
