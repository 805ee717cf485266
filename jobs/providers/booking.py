"""A booking provider: a lead's appointments, looked up by email.

``GET /appointments?email=<email>`` answers ``{"appointments": [{"id", "status": "booked" |
"canceled", "start", "end"}, ...]}``; anything else is ProviderBadResponse.
"""

from dataclasses import dataclass
from datetime import datetime

from jobs.providers.availability import aware
from jobs.providers.base import Deadline, ProviderClient

APPOINTMENTS_PATH = "/appointments"
SUPPORTED_PROVIDERS = {"json"}  # Client.booking_provider values this client speaks
STATUSES = {"booked", "canceled"}


@dataclass(frozen=True)
class BookedAppointment:
    provider_id: str
    status: str  # booked | canceled
    start_at: datetime
    end_at: datetime | None


class BookingClient(ProviderClient):
    name = "Booking"

    @classmethod
    def for_client(cls, client) -> "BookingClient":
        return cls(base_url=client.booking_base_url, api_key=client.booking_api_key,
                   label=client.name)

    def appointments(self, *, email: str,
                     deadline: Deadline | None = None) -> list[BookedAppointment]:
        answer = self.request_json("GET", APPOINTMENTS_PATH, params={"email": email},
                                   deadline=deadline)
        if not isinstance(answer, dict) or not isinstance(answer.get("appointments"), list):
            raise self.bad_shape("GET", APPOINTMENTS_PATH, "no 'appointments' list")
        found = []
        for item in answer["appointments"]:
            try:
                status = str(item["status"]).lower().replace("cancelled", "canceled")
                if status not in STATUSES:
                    raise ValueError(status)
                found.append(BookedAppointment(
                    provider_id=str(item["id"]), status=status, start_at=aware(item["start"]),
                    end_at=aware(item["end"]) if item.get("end") else None))
            except (TypeError, KeyError, ValueError, AttributeError):
                raise self.bad_shape("GET", APPOINTMENTS_PATH, "an appointment without 'id', "
                                     "a known 'status' or an aware 'start'") from None
        return found
