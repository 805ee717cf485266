"""``/api/v1/``: the read API, its OpenAPI schema and the schema's docs page.

The API authenticates itself (token or staff session; anonymous gets 401); the docs page is
for a logged-in staff user.
"""

from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from cron.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("crons", views.CronViewSet, basename="crons")
router.register("windows", views.WindowViewSet, basename="windows")
router.register("runs", views.RunViewSet, basename="runs")
router.register("webhook-events", views.WebhookEventViewSet, basename="webhook-events")

# DRF's views mark themselves login_not_required (they answer 401/403 themselves); the docs
# page, for people, sends an anonymous visitor to the admin's login instead.
urlpatterns = [
    *router.urls,
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")),
         name="api-docs"),
]
