"""The cron app's admin: windows and paused triggers (read-only, with recorded actions), runtime
overrides and their audit trail, and the status page linked from the admin index."""

from django.contrib import admin

from cron.admin import status, windows  # noqa: F401  (each registers its ModelAdmins)

admin.site.index_template = "admin/cron/index.html"  # the index links the status page
