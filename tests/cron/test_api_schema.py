"""The read API fuzzed from its own OpenAPI schema (schemathesis through the WSGI app, which
closes connections after each request as a server does: hence a transactional database): no
generated request gets a server error, and every 200 conforms to the schema."""

import json
import uuid

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from cron.models import DispatchWindow
from ledger.models import FunctionAttempt, FunctionRun
from webhooks.models import WebhookEvent

TOKEN = "schemathesis-staff-token-0123456789abcde"  # 40 characters, as authtoken stores


def seed() -> None:
    """One of everything, so the serializers have rows to render."""
    now = timezone.now()
    user = User.objects.create_user("fuzzer", password="x", is_staff=True)
    Token.objects.create(user=user, key=TOKEN)
    run = FunctionRun.objects.create(function="t-ok", cron="background-jobs", source="command",
                                     status="failed", reason="error", attempt=1, queued_at=now,
                                     started_at=now, finished_at=now, duration_ms=5,
                                     result={"a": 1}, params={"dryRun": "1"})
    FunctionAttempt.objects.create(run=run, number=1, claim_token=uuid.uuid4(),
                                   outcome="failed", started_at=now, finished_at=now)
    DispatchWindow.objects.create(dispatch_key="background-jobs:v1:60:x", cron="background-jobs",
                                  window_start=now, window_seconds=60, status="enqueued",
                                  source="cron:http", correlation_id="c", requested_at=now,
                                  task_ids=["bg-process:1"], created_at=now, updated_at=now)
    WebhookEvent.objects.create(event_type="EMAIL_OPENED", dedupe_key="k",
                                raw_body=b'{"event": "\xff"}', status="failed", received_at=now)


def openapi_document() -> dict:
    """The schema /api/v1/schema/ serves, generated here (collection has no database)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = get_wsgi_application()


@pytest.fixture
def seeded(transactional_db):
    seed()


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_schema__no_server_error(case, seeded):
    """Generated requests (bounded examples per operation) never answer 5xx, and what they
    answer conforms to the schema."""
    response = case.call_and_validate(headers={"Authorization": f"Token {TOKEN}"},
                                      checks=[not_a_server_error, response_schema_conformance])
    assert response.status_code not in (401, 403)  # the fuzzing reached the views
