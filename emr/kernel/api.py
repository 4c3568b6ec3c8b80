"""What every API door shares: staff-only access by permission, and strict integer fields for
money and quantities. (The error shape is `emr.kernel.api_errors`.)"""

from rest_framework import serializers
from rest_framework.permissions import BasePermission


class IsStaff(BasePermission):
    """A patient's portal login has no API access; only active staff do."""

    message = "Only clinic staff can use the API."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class ActionPermission(IsStaff):
    """`view.action_permissions` maps a viewset action ("create") or, on a plain APIView, an
    HTTP method ("post") to the permission it needs; anything unlisted needs only staff."""

    message = "Your role does not allow this action. Ask a billing admin."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        key = getattr(view, "action", None) or request.method.lower()
        required = getattr(view, "action_permissions", {}).get(key)
        return required is None or request.user.has_perm(required)


# The largest value every integer column of ours holds (PostgreSQL `integer`); money is cents,
# so this is over $21 million, beyond any clinic sale.
MAX_INTEGER = 2**31 - 1


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: no "12", no 12.5, no true. Money and quantities use it.

    Bounded by default: a number beyond what the column holds is a 400, not a database error.
    """

    default_error_messages = {
        "invalid": "Must be a whole number (an integer, not text or a decimal)."
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", MAX_INTEGER)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
