"""EmailBison (white-labelled as Inboxxia): a campaign's leads, page by page, and a lead's custom
variable.

The shape follows EmailBison's public API: bearer token auth; ``GET /api/campaigns/<id>/leads
?page=N`` answers ``{"data": [lead, ...], "meta": {"current_page", "last_page"}}`` (Laravel
pagination); ``PATCH /api/leads/<id>`` takes ``{"custom_variables": [{"name", "value"}]}``.
"""

from collections.abc import Iterator

from jobs.providers.base import Deadline, ProviderClient

LEADS_PATH = "/api/campaigns/{campaign_id}/leads"
LEAD_PATH = "/api/leads/{lead_id}"


class EmailBisonClient(ProviderClient):
    name = "EmailBison"

    @classmethod
    def for_client(cls, client) -> "EmailBisonClient":
        """The client's EmailBison account (ProviderNotConfigured without URL or key)."""
        return cls(base_url=client.emailbison_base_url, api_key=client.emailbison_api_key,
                   label=client.name)

    def campaign_leads(self, campaign_id: str, *, deadline: Deadline | None = None,
                       max_pages: int = 100) -> Iterator[list[dict]]:
        """Each page of the campaign's leads (dicts with at least ``id`` and ``email``), until
        the last page, an empty page or ``max_pages``."""
        path = LEADS_PATH.format(campaign_id=campaign_id)
        for page in range(1, max_pages + 1):
            answer = self.request_json("GET", path, params={"page": page}, deadline=deadline)
            leads, last_page = self._page(answer, path)
            if leads:
                yield leads
            if not leads or page >= last_page:
                return

    def _page(self, answer, path: str) -> tuple[list[dict], int]:
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise self.bad_shape("GET", path, "no 'data' list")
        leads = answer["data"]
        if not all(isinstance(lead, dict) and "id" in lead and "email" in lead
                   for lead in leads):
            raise self.bad_shape("GET", path, "a lead without 'id' or 'email'")
        meta = answer.get("meta") or {}
        try:
            last_page = int(meta.get("last_page", 1))
        except (TypeError, ValueError):
            raise self.bad_shape("GET", path, "'meta.last_page' is not a number") from None
        return leads, last_page

    def lead_custom_variable_set(self, lead_id: str, name: str, value: str, *,
                                 deadline: Deadline | None = None) -> None:
        """Set one custom variable on the lead (the others are left as they are)."""
        self.request_json("PATCH", LEAD_PATH.format(lead_id=lead_id),
                          body={"custom_variables": [{"name": name, "value": value}]},
                          deadline=deadline)
