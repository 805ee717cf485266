"""The project's URLs plus the bench's baseline route."""

from django.urls import include, path

from bench.benchapp.views import baseline_view, duplicate_floor_view, new_floor_view
from bench.benchapp.webhook_baseline import webhook_baseline_view

urlpatterns = [
    path("bench/baseline", baseline_view, name="bench-baseline"),
    path("bench/duplicate-floor", duplicate_floor_view, name="bench-duplicate-floor"),
    path("bench/new-floor", new_floor_view, name="bench-new-floor"),
    path("bench/webhook-baseline", webhook_baseline_view, name="bench-webhook-baseline"),
    path("", include("dispatch_project.urls")),
]
