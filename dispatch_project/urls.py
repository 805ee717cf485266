from django.contrib import admin
from django.urls import include, path, re_path

from cron import probes
from cron.admin.status import status_urls
from cron.landing import api_not_found, landing

urlpatterns = [
    # The machine routes first: each request tries the patterns in this order.
    path("api/cron/", include("cron.urls")),
    path("api/webhooks/", include("webhooks.urls")),
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("healthz/pipeline", probes.pipeline, name="healthz-pipeline"),
    path("metrics", probes.metrics_view, name="metrics"),
    path("api/v1/", include("cron.api.urls")),
    path("admin/status/", include(status_urls())),
    path("admin/", admin.site.urls),
    path("", landing, name="landing"),
    # Last: any other path under /api/ is a JSON 404 (routes added above take precedence).
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
]
