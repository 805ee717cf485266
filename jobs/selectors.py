"""Reads of the outreach data."""

from django.db.models import Value
from django.db.models.functions import Lower

from jobs.models import Client, Lead


def client_by_workspace(*, workspace_id: str) -> Client | None:
    return Client.objects.filter(emailbison_workspace_id=workspace_id).first()


def lead_by_email(*, client: Client, email: str) -> Lead | None:
    return Lead.objects.alias(email_lower=Lower("email")).filter(
        client=client, email_lower=Lower(Value(email))).first()
