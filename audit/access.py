"""Who may open the audit pages: billing admins and superusers. CS, medical operations and
everyone else get a 403 page that says so; someone not signed in goes to the staff sign-in.

Every view under /audit/ is wrapped in `audit_reviewer_required` (the dashboard's too)."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.template.response import TemplateResponse
from django.urls import reverse

from emr.staff_groups import BILLING_ADMIN


def may_review_audit(user) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or user.groups.filter(name=BILLING_ADMIN).exists()


def audit_reviewer_required(view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not may_review_audit(request.user):
            return TemplateResponse(request, "audit/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return guarded
