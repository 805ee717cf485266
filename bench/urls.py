"""The project's URLs plus the bench's baseline route."""

from django.urls import include, path

from bench.benchapp.views import baseline_view, duplicate_floor_view

urlpatterns = [
    path("bench/baseline", baseline_view, name="bench-baseline"),
    path("bench/duplicate-floor", duplicate_floor_view, name="bench-duplicate-floor"),
    path("", include("dispatch_project.urls")),
]
