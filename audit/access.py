"""Who may open the billing-admin review pages: billing admins and superusers.

Someone signed out is sent to the staff sign-in and back; any other staff member (CS, medical
ops) gets a 403 page that says whom to ask. Two-factor sign-in is enforced before this, for
every staff page, by emr.staff_two_factor.TwoFactorRequiredMiddleware.
"""

from functools import wraps

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.template.response import TemplateResponse
from django.urls import reverse

from emr.staff_groups import BILLING_ADMIN


def is_billing_admin(user) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or user.groups.filter(name=BILLING_ADMIN).exists()


def billing_admin_required(view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not is_billing_admin(request.user):
            context = {**admin.site.each_context(request), "title": "Billing admins only"}
            return TemplateResponse(request, "audit/dashboard/forbidden.html", context, status=403)
        return view(request, *args, **kwargs)

    return guarded
