"""``/api/v1/``: the read API, its OpenAPI schema and the schema's docs page.

The API authenticates itself (token or staff session; anonymous gets 401), so its views are
exempt from the site's LoginRequiredMiddleware; the docs page is for a logged-in staff user.
"""

from django.contrib.auth.decorators import login_not_required
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

for pattern in router.urls:
    pattern.callback = login_not_required(pattern.callback)

urlpatterns = [
    *router.urls,
    path("schema/", login_not_required(SpectacularAPIView.as_view()), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
