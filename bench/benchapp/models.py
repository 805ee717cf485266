from django.db import models


class BenchRow(models.Model):
    """The baseline view's one INSERT."""

    key = models.CharField(max_length=255)
    created_at = models.DateTimeField()


class BenchWebhookRow(models.Model):
    """The webhook baseline view's one INSERT: the raw body as received, and when."""

    body = models.BinaryField()
    received_at = models.DateTimeField()
