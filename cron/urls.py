"""One route per registered cron (``/api/cron/<route>``), resolved through the registry at
request time, so a cron registered later needs no URL of its own."""

from django.urls import path

from cron.views import cron_view

urlpatterns = [path("<path:route>", cron_view, name="cron")]
