"""An availability source: the free slots of a client's calendar.

``GET /slots?start=<YYYY-MM-DD>&days=<n>`` answers ``{"slots": [{"start": ISO 8601, "end": ISO
8601}, ...]}`` with offsets; anything else is unsupported data (ProviderBadResponse).
"""

from dataclasses import dataclass
from datetime import date, datetime

from jobs.providers.base import Deadline, ProviderClient

SLOTS_PATH = "/slots"
SUPPORTED_SOURCES = {"json"}  # Client.availability_source values this client speaks


@dataclass(frozen=True)
class Slot:
    start_at: datetime
    end_at: datetime


class AvailabilityClient(ProviderClient):
    name = "Availability"

    @classmethod
    def for_client(cls, client) -> "AvailabilityClient":
        return cls(base_url=client.availability_base_url,
                   api_key=client.availability_api_key, label=client.name)

    def slots(self, *, start: date, days: int, deadline: Deadline | None = None) -> list[Slot]:
        """Free slots from ``start`` for ``days`` days, sorted, each start before its end."""
        answer = self.request_json("GET", SLOTS_PATH,
                                   params={"start": start.isoformat(), "days": days},
                                   deadline=deadline)
        if not isinstance(answer, dict) or not isinstance(answer.get("slots"), list):
            raise self.bad_shape("GET", SLOTS_PATH, "no 'slots' list")
        slots = []
        for item in answer["slots"]:
            try:
                slot = Slot(aware(item["start"]), aware(item["end"]))
            except (TypeError, KeyError, ValueError):
                raise self.bad_shape("GET", SLOTS_PATH, "a slot without an aware ISO 'start' "
                                     "and 'end'") from None
            if slot.end_at <= slot.start_at:
                raise self.bad_shape("GET", SLOTS_PATH, "a slot that ends before it starts")
            slots.append(slot)
        return sorted(slots, key=lambda slot: slot.start_at)


def aware(value: str) -> datetime:
    """An ISO 8601 time with its offset (``Z`` allowed); naive or unreadable is a ValueError."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("naive time")
    return parsed
