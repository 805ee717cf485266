from django.urls import path

from webhooks.views import email_webhook_view

app_name = "webhooks"
urlpatterns = [path("email", email_webhook_view, name="email")]
