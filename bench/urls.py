"""The project's URLs plus the bench's baseline routes."""

from django.urls import include, path

from bench.benchapp.views import baseline_view
from bench.benchapp.webhook_baseline import webhook_baseline_view

urlpatterns = [
    path("bench/baseline", baseline_view, name="bench-baseline"),
    path("bench/webhook-baseline", webhook_baseline_view, name="bench-webhook-baseline"),
    path("", include("dispatch_project.urls")),
]
