"""Reads of the outreach data."""

from jobs.models import Client, Lead


def client_by_workspace(*, workspace_id: str) -> Client | None:
    return Client.objects.filter(emailbison_workspace_id=workspace_id).first()


def lead_by_email(*, client: Client, email: str) -> Lead | None:
    return Lead.objects.filter(client=client, email__iexact=email).first()
