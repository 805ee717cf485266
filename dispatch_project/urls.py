from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # The machine routes first: each request tries the patterns in this order.
    path("api/cron/", include("cron.urls")),
    path("api/webhooks/", include("webhooks.urls")),
    path("admin/", admin.site.urls),
]
