"""The project's URLs plus the bench's baseline route."""

from django.urls import include, path

from bench.benchapp.views import baseline_view

urlpatterns = [
    path("bench/baseline", baseline_view, name="bench-baseline"),
    path("", include("dispatch_project.urls")),
]
