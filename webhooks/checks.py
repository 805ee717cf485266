"""System checks for the webhook configuration (``manage.py check``)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from standardwebhooks.webhooks import Webhook

from webhooks import conf


@register(Tags.security)
def check_webhook_auth(app_configs=None, **kwargs):
    """Outside DEBUG, the route must authenticate: warn when it cannot."""
    if settings.DEBUG:
        return []
    if not (conf.tokens() or conf.signing_secrets()):
        if conf.allow_unauthenticated():
            return [Warning(
                "WEBHOOK_ALLOW_UNAUTHENTICATED is on and no credential is configured: anyone "
                "who finds /api/webhooks/email can post events.",
                hint="Set WEBHOOK_TOKEN (and give EmailBison the URL with ?token=...) or "
                "WEBHOOK_SIGNING_SECRET, then unset WEBHOOK_ALLOW_UNAUTHENTICATED.",
                id="webhooks.W002",
            )]
        return [Warning(
            "Neither WEBHOOK_TOKEN nor WEBHOOK_SIGNING_SECRET is set: the email webhook answers "
            "503 to every delivery.",
            hint="Set WEBHOOK_TOKEN to a long random string and add it to the provider's URL "
            "as ?token=..., or set WEBHOOK_SIGNING_SECRET (whsec_...).",
            id="webhooks.W001",
        )]
    return []


@register(Tags.security)
def check_webhook_signing_secrets(app_configs=None, **kwargs):
    errors = []
    for position, secret in enumerate(conf.signing_secrets(), start=1):
        try:
            Webhook(secret)
        except Exception:  # binascii.Error, EmptyWebhookSecretError, ...
            errors.append(Error(
                f"WEBHOOK_SIGNING_SECRET value #{position} is not a Standard Webhooks secret "
                "(whsec_ followed by base64).",
                hint="Copy the secret again from the sender's settings.",
                id="webhooks.E001",
            ))
    return errors
