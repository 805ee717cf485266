"""The outreach data (DOMAIN.md), in two modules: what webhooks write (outreach) and what the
crons produce or keep (cron_work). Everything is importable from ``jobs.models``."""

from jobs.models.cron_work import (
    Appointment,
    AppointmentStatus,
    AvailabilityCache,
    CronLease,
    FollowUpTask,
    FollowUpTaskKind,
    FollowUpTaskStatus,
    Responder,
    ResponseTimingEvent,
    SlotOffer,
)
from jobs.models.outreach import (
    Client,
    Direction,
    EmailCampaign,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpStatus,
    FollowUpStep,
    Lead,
    LeadStatus,
    Message,
    MessageSource,
    PauseReason,
    Sentiment,
)

__all__ = [
    "Appointment", "AppointmentStatus", "AvailabilityCache", "Client", "CronLease", "Direction",
    "EmailCampaign", "FollowUpInstance", "FollowUpSequence", "FollowUpStatus", "FollowUpStep",
    "FollowUpTask", "FollowUpTaskKind", "FollowUpTaskStatus", "Lead", "LeadStatus", "Message",
    "MessageSource", "PauseReason", "Responder", "ResponseTimingEvent", "Sentiment", "SlotOffer",
]
