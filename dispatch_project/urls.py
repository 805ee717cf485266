from django.contrib import admin
from django.urls import include, path

from cron import probes

urlpatterns = [
    # The machine routes first: each request tries the patterns in this order.
    path("api/cron/", include("cron.urls")),
    path("api/webhooks/", include("webhooks.urls")),
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("healthz/pipeline", probes.pipeline, name="healthz-pipeline"),
    path("metrics", probes.metrics_view, name="metrics"),
    path("api/v1/", include("cron.api.urls")),
    path("admin/", admin.site.urls),
]
