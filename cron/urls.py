"""The cron routes under ``/api/cron/``, resolved through the registry at request time, so a
cron registered later needs no URL of its own. ``/api/cron/`` itself goes to the same view:
every request here is authenticated before its route is looked up."""

from django.urls import path

from cron.views import cron_view

urlpatterns = [
    path("", cron_view, name="cron-root"),
    path("<path:route>", cron_view, name="cron"),
]
