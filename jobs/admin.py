from django.contrib import admin

from jobs.models import (
    Client,
    EmailCampaign,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpStep,
    Lead,
    Message,
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
