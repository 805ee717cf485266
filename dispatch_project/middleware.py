"""Project-wide request guards."""

from django.http import JsonResponse


class RefuseNulMiddleware:
    """A NUL character in the path or in a query parameter (``?status=%00``) is refused with
    400 before any view runs. PostgreSQL cannot compare or store NUL in text, so a filter or a
    search carrying one raised DataError (500) in every admin changelist; no route of this
    service has a use for it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
                "\x00" in name or any("\x00" in value for value in values)
                for name, values in request.GET.lists()):
            return JsonResponse({"success": False, "error": "NUL character in the request"},
                                status=400)
        return self.get_response(request)
