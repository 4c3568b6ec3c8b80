"""API access follows the staff groups: staff only, and each action needs its permission."""

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
