"""One error shape for every refused API request: {"code": "...", "detail": "..."}.

Kept apart from `emr.kernel.api`: DRF loads the permission classes while it imports its own
views, so the module holding them must not import `rest_framework.views`.
"""

from django.core.exceptions import ObjectDoesNotExist
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from emr.kernel.errors import DomainError

NOT_FOUND = "No such record, or you may not see it."


def page_not_found(request, exception):
    """Django's 404, for an address no URL pattern matches (`/api/v1/orders/0.5/`): under
    /api/ it is the API's {code, detail}, as the schema documents, not an HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": NOT_FOUND}, status=404)
    return defaults.page_not_found(request, exception)


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(
            {**exc.extra, "code": exc.code, "detail": exc.detail}, status=exc.http_status
        )
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return Response(
            {"code": "not_found", "detail": NOT_FOUND},
            status=status.HTTP_404_NOT_FOUND,
        )
    if isinstance(exc, DataError):
        # The last line of defence behind the serializers' bounds: a value the column cannot
        # hold (a number out of range, say) is the caller's mistake, not the server's.
        return Response(
            {"code": "invalid", "detail": "A value is out of the range this field accepts."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid",
            "detail": _first_message(exc.detail),
            "errors": exc.detail,
        }
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = {"code": code if isinstance(code, str) else "error", "detail": str(detail)}
    return response


def _first_message(detail, path: str = "") -> str:
    """The first problem as a sentence that names the field: "items.0.quantity: …"."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            prefix = path if field == "non_field_errors" else f"{path}{field}"
            return _first_message(
                value, f"{prefix}." if prefix and not prefix.endswith(".") else prefix
            )
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if value:
                nested = isinstance(value, dict | list)
                return _first_message(value, f"{path}{index}." if nested else path)
    text = str(detail)
    return f"{path.rstrip('.')}: {text}" if path else text
