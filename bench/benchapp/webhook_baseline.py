"""The webhook bench's baseline: the least work for "stored, answered 202". Authenticate the
shared token in constant time, read the body, one INSERT of it, a small JSON 202. No parsing,
no dedupe key, no doorbell: the floor the real route is compared with."""

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from bench.benchapp.models import BenchWebhookRow


@csrf_exempt
@login_not_required
def webhook_baseline_view(request):
    given = request.headers.get("X-Webhook-Token", "").encode("utf-8", "surrogateescape")
    matched = False
    for token in settings.WEBHOOK_TOKEN or []:
        matched |= hmac.compare_digest(given, token.encode("utf-8"))
    if not matched:
        return JsonResponse({"success": False, "error": "unauthorized"}, status=401)
    row = BenchWebhookRow.objects.create(body=request.body, received_at=timezone.now())
    return JsonResponse({"success": True, "queued": True, "eventId": row.pk}, status=202)
