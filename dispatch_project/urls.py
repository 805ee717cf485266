from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/cron/", include("cron.urls")),
    path("api/webhooks/", include("webhooks.urls")),
]
