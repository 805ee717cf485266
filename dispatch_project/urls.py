from django.contrib import admin
from django.urls import include, path

from cron.admin.status import status_urls

urlpatterns = [
    # The machine routes first: each request tries the patterns in this order.
    path("api/cron/", include("cron.urls")),
    path("api/webhooks/", include("webhooks.urls")),
    path("admin/status/", include(status_urls())),
    path("admin/", admin.site.urls),
]
