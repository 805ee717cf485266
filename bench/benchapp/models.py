from django.db import models


class BenchRow(models.Model):
    """The baseline view's one INSERT."""

    key = models.CharField(max_length=255)
    created_at = models.DateTimeField()
