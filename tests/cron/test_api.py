"""The read API (/api/v1/): who may read, filters, cursor pagination, what each resource shows."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from cron.models import DispatchWindow
from ledger.models import FunctionAttempt, FunctionRun, RunReason, RunStatus
from webhooks.models import WebhookEvent

ENDPOINTS = ["/api/v1/crons/", "/api/v1/windows/", "/api/v1/runs/", "/api/v1/webhook-events/",
             "/api/v1/schema/"]
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def staff_token(db) -> str:
    user = User.objects.create_user("ops", password="x", is_staff=True)
    return Token.objects.create(user=user).key


@pytest.fixture
def api(staff_token) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {staff_token}")


def run(function="t-ok", *, minutes_ago=0, **fields) -> FunctionRun:
    fields.setdefault("status", RunStatus.QUEUED)
    return FunctionRun.objects.create(function=function, source="command",
                                      queued_at=NOW - timedelta(minutes=minutes_ago), **fields)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ENDPOINTS)
def test_api__anonymous_is_401(path):
    """No credentials: 401 with a WWW-Authenticate challenge, never a login redirect."""
    response = Client().get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ENDPOINTS)
def test_api__non_staff_token_is_403_and_wrong_token_401(path):
    """A valid token of a user who is not staff is refused; an unknown token is 401."""
    user = User.objects.create_user("someone", password="x")
    token = Token.objects.create(user=user).key
    assert Client(HTTP_AUTHORIZATION=f"Token {token}").get(path).status_code == 403
    assert Client(HTTP_AUTHORIZATION="Token nope").get(path).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("path", ENDPOINTS)
def test_api__staff_token_bearer_and_session_are_accepted(path, staff_token):
    """A staff user's token as ``Token`` or ``Bearer``, or a staff session."""
    assert Client(HTTP_AUTHORIZATION=f"Token {staff_token}").get(path).status_code == 200
    assert Client(HTTP_AUTHORIZATION=f"Bearer {staff_token}").get(path).status_code == 200
    session = Client()
    session.force_login(User.objects.get(username="ops"))
    assert session.get(path).status_code == 200


@pytest.mark.django_db
def test_api_runs__filters(api):
    """Each filter narrows the runs to the matching ones."""
    a = run("t-ok", cron="alpha", dispatch_key="alpha:v1:60:k1", correlation_id="corr-a",
            minutes_ago=30)
    b = run("t-slow", cron="beta", dispatch_key="beta:v1:60:k2", correlation_id="corr-b",
            status=RunStatus.FAILED, reason=RunReason.ERROR, finished_at=NOW, minutes_ago=10)
    c = run("t-ok", cron="beta", minutes_ago=1)
    assert ids(api.get("/api/v1/runs/?cron=beta")) == [c.pk, b.pk]
    assert ids(api.get("/api/v1/runs/?function=t-ok")) == [c.pk, a.pk]
    assert ids(api.get("/api/v1/runs/?status=failed")) == [b.pk]
    assert ids(api.get("/api/v1/runs/?reason=error")) == [b.pk]
    assert ids(api.get("/api/v1/runs/?dispatch_key=alpha:v1:60:k1")) == [a.pk]
    assert ids(api.get("/api/v1/runs/?correlation_id=corr-b")) == [b.pk]
    since = (NOW - timedelta(minutes=15)).isoformat()
    until = (NOW - timedelta(minutes=5)).isoformat()
    assert ids(api.get("/api/v1/runs/", {"queued_after": since, "queued_before": until})) == [b.pk]
    assert api.get("/api/v1/runs/?status=nonsense").status_code == 400


@pytest.mark.django_db
def test_api_runs__cursor_pagination_walks_every_run_once(api):
    """page_size 3 over 7 runs: three pages, newest first, each run once."""
    created = [run(minutes_ago=minute).pk for minute in range(7)]
    seen, url, pages = [], "/api/v1/runs/?page_size=3", 0
    while url:
        body = api.get(url).json()
        seen += [item["id"] for item in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3
    assert seen == sorted(created, reverse=True)


@pytest.mark.django_db
def test_api_runs__carry_their_attempts_and_no_claim_token(api):
    """A run shows its attempts in order; claim tokens stay inside."""
    failed = run(status=RunStatus.FAILED, reason=RunReason.ERROR, finished_at=NOW, attempt=2)
    for number, outcome in ((1, "failed"), (2, "timeout")):
        FunctionAttempt.objects.create(run=failed, number=number, claim_token=uuid.uuid4(),
                                       outcome=outcome, started_at=NOW, finished_at=NOW)
    body = api.get(f"/api/v1/runs/{failed.pk}/").json()
    assert [(a["number"], a["outcome"]) for a in body["attempts"]] == [(1, "failed"),
                                                                      (2, "timeout")]
    assert "claim_token" not in body and "claim_token" not in body["attempts"][0]


@pytest.mark.django_db
def test_api_windows__filters(api):
    """Windows filter by cron, status, dispatch key and correlation id."""
    common = dict(window_seconds=60, source="cron:http", requested_at=NOW, created_at=NOW,
                  updated_at=NOW)
    one = DispatchWindow.objects.create(dispatch_key="alpha:1", cron="alpha", status="enqueued",
                                        window_start=NOW, correlation_id="c1", **common)
    two = DispatchWindow.objects.create(dispatch_key="beta:1", cron="beta",
                                        status="enqueue-failed", correlation_id="c2",
                                        window_start=NOW - timedelta(hours=1), **common)
    assert ids(api.get("/api/v1/windows/?cron=alpha")) == [one.pk]
    assert ids(api.get("/api/v1/windows/?status=enqueue-failed")) == [two.pk]
    assert ids(api.get("/api/v1/windows/?dispatch_key=beta:1")) == [two.pk]
    assert ids(api.get("/api/v1/windows/?correlation_id=c1")) == [one.pk]
    since = (NOW - timedelta(minutes=30)).isoformat()
    assert ids(api.get("/api/v1/windows/", {"window_start_after": since})) == [one.pk]


@pytest.mark.django_db
def test_api_webhook_events__raw_body_only_on_request(api):
    """The raw body is left out unless ``?include=raw_body``; filters by type and status."""
    event = WebhookEvent.objects.create(event_type="EMAIL_OPENED", dedupe_key="k",
                                        raw_body=b'{"event": {"type": "EMAIL_OPENED"}}',
                                        status="failed", received_at=NOW)
    WebhookEvent.objects.create(event_type="EMAIL_SENT", dedupe_key="k2", raw_body=b"{}",
                                status="pending", received_at=NOW)
    plain = api.get("/api/v1/webhook-events/?event_type=EMAIL_OPENED").json()["results"]
    assert [item["id"] for item in plain] == [event.pk] and "raw_body" not in plain[0]
    full = api.get("/api/v1/webhook-events/?status=failed&include=raw_body").json()["results"]
    assert full[0]["raw_body"] == '{"event": {"type": "EMAIL_OPENED"}}'
    assert "raw_body" in api.get(f"/api/v1/webhook-events/{event.pk}/?include=raw_body").json()


@pytest.mark.django_db
@override_settings(BACKGROUND_JOBS_FORCE_INLINE=True)
def test_api_crons__registry_with_mode_and_last_outcome(api):
    """Each registered cron, its effective mode and source, and its latest run per function."""
    latest = run("background-maintenance", cron="background-jobs", status=RunStatus.SUCCEEDED,
                 finished_at=NOW)
    crons = {item["name"]: item for item in api.get("/api/v1/crons/").json()}
    cron = crons["background-jobs"]
    assert cron["mode"] == {"mode": "inline-forced", "source": "env",
                            "why": "BACKGROUND_JOBS_FORCE_INLINE=true"}
    assert cron["window_seconds"] == 60 and cron["url_path"] == "/api/cron/background-jobs"
    assert [r["id"] for r in cron["last_runs"]] == [latest.pk]
    assert cron["last_window"] is None
    assert api.get("/api/v1/crons/background-jobs/").json()["name"] == "background-jobs"
    assert api.get("/api/v1/crons/no-such-cron/").status_code == 404


@pytest.mark.django_db
def test_api_runs__time_filters_take_any_offset_and_refuse_the_impossible(api):
    """An offset PostgreSQL would refuse (+21:58) is converted to UTC first; a time outside
    what UTC can hold is a 400 (schemathesis found both as 500s)."""
    early = run(minutes_ago=60 * 24)
    assert ids(api.get("/api/v1/runs/", {"queued_before": "5583-05-08T14:32:12.4+21:58"})) == [
        early.pk]
    impossible = {"queued_after": "0001-01-01T00:00:00+05:00"}
    assert api.get("/api/v1/runs/", impossible).status_code == 400


@pytest.mark.django_db
def test_api_docs__page_for_staff_login_redirect_for_anonymous(staff_token):
    """The schema's docs page renders for a logged-in staff user; anonymous goes to login."""
    assert Client().get("/api/v1/docs/").status_code == 302
    session = Client()
    session.force_login(User.objects.get(username="ops"))
    response = session.get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"/api/v1/schema/" in response.content
