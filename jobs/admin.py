from django.contrib import admin

from jobs.models import (
    Appointment,
    AvailabilityCache,
    Client,
    CronLease,
    EmailCampaign,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpStep,
    FollowUpTask,
    Lead,
    Message,
    ResponseTimingEvent,
    SlotOffer,
)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "emailbison_workspace_id", "availability_source",
                    "booking_provider", "time_zone")
    search_fields = ("name", "emailbison_workspace_id")


@admin.register(EmailCampaign)
class EmailCampaignAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "client", "bison_campaign_id")
    list_filter = ("client",)
    search_fields = ("name", "bison_campaign_id")


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("sent_at", "direction", "source", "sentiment", "subject")
    readonly_fields = fields
    ordering = ("-sent_at",)
    show_change_link = True


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("id", "email", "client", "status", "sentiment", "last_message_at",
                    "last_message_direction")
    list_filter = ("status", "sentiment", "client")
    search_fields = ("email", "first_name", "last_name", "emailbison_lead_id")
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "direction", "source", "sentiment", "sent_at", "subject")
    list_filter = ("direction", "source", "sentiment", ("sent_at", admin.DateFieldListFilter))
    search_fields = ("lead__email", "inboxxia_scheduled_email_id", "emailbison_reply_id")
    raw_id_fields = ("lead", "campaign")


class FollowUpStepInline(admin.TabularInline):
    model = FollowUpStep
    extra = 0


@admin.register(FollowUpSequence)
class FollowUpSequenceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "client")
    inlines = [FollowUpStepInline]


@admin.register(FollowUpInstance)
class FollowUpInstanceAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "sequence", "status", "pause_reason", "current_step",
                    "next_step_due_at")
    list_filter = ("status", "pause_reason")
    raw_id_fields = ("lead",)


@admin.register(FollowUpTask)
class FollowUpTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "kind", "step_order", "status", "due_at", "channel")
    list_filter = ("kind", "status", "channel")
    raw_id_fields = ("lead", "instance", "appointment")


@admin.register(ResponseTimingEvent)
class ResponseTimingEventAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "inbound_at", "responder", "response_delay_ms",
                    "setter_delay_ms", "ai_delay_ms")
    list_filter = ("responder",)
    raw_id_fields = ("lead", "inbound_message", "response_message", "setter_message",
                     "ai_message")


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "provider_id", "status", "start_at", "end_at")
    list_filter = ("status",)
    search_fields = ("provider_id", "lead__email")
    raw_id_fields = ("lead",)


@admin.register(AvailabilityCache)
class AvailabilityCacheAdmin(admin.ModelAdmin):
    list_display = ("id", "client", "source", "fetched_at", "stale_at", "failures",
                    "next_attempt_at", "last_error")
    list_filter = ("source",)


@admin.register(SlotOffer)
class SlotOfferAdmin(admin.ModelAdmin):
    list_display = ("id", "client", "emailbison_lead_id", "lead", "offered_at", "sentence")
    list_filter = ("client",)
    raw_id_fields = ("lead",)


@admin.register(CronLease)
class CronLeaseAdmin(admin.ModelAdmin):
    list_display = ("name", "holder", "expires_at")
