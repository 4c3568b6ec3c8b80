"""The portal's pages: thin doors. Each reads the request, asks a read-model or calls one
service, and answers in sentences a patient understands."""

from functools import wraps

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from emr.kernel.errors import Forbidden, NotFound
from emr.portal import accounts
from emr.portal.forms import ChoosePasswordForm, PasswordResetRequestForm, SignInForm


def page(request, template: str, context: dict | None = None, *, status: int = 200):
    clinic = {
        "clinic_name": settings.CLINIC_NAME,
        "clinic_email": settings.CLINIC_EMAIL,
        "clinic_phone": settings.CLINIC_PHONE,
    }
    return render(request, template, clinic | (context or {}), status=status)


def patient_page(view):
    """A page of the signed-in patient: others sign in first; staff are refused with a
    sentence; a number that is not this patient's answers 404 (never 403, never its data)."""

    @wraps(view)
    @never_cache
    def door(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("portal:sign-in"))
        try:
            patient = accounts.portal_patient(request.user)
        except Forbidden as refusal:
            return page(request, "portal/refused.html", {"sentence": refusal.detail}, status=403)
        try:
            return view(request, patient, *args, **kwargs)
        except NotFound as missing:
            return page(
                request,
                "portal/not_found.html",
                {"patient": patient, "sentence": missing.detail},
                status=404,
            )

    return door


# --- Signing in and out --------------------------------------------------------------------


class SignInView(auth_views.LoginView):
    template_name = "portal/sign_in.html"
    authentication_form = SignInForm
    next_page = reverse_lazy("portal:dashboard")

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {"clinic_name": settings.CLINIC_NAME}


class SignOutView(auth_views.LogoutView):
    next_page = reverse_lazy("portal:sign-in")

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a sign-in while sign-in is paused (`AXES_LOCKOUT_CALLABLE`):
    the portal's page at the portal, the admin's page elsewhere."""
    cool_off = get_cool_off(request)
    status = settings.AXES_HTTP_RESPONSE_CODE
    if getattr(request.resolver_match, "namespace", "") != "portal":
        return render(
            request, settings.AXES_LOCKOUT_TEMPLATE, {"cooloff_timedelta": cool_off}, status=status
        )
    return page(
        request,
        "portal/locked_out.html",
        {"cool_off": cool_off, "retry_at": timezone.now() + cool_off},
        status=status,
    )


# --- Passwords: the invitation link, and a reset -------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def request_password_reset(request):
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        accounts.send_password_reset(email=form.cleaned_data["email"])
        return redirect("portal:password-reset-sent")
    return page(request, "portal/password_reset.html", {"form": form})


def password_reset_sent(request):
    return page(request, "portal/password_reset_sent.html")


class ChoosePasswordView(auth_views.PasswordResetConfirmView):
    """A link from an email: the patient chooses a password once, then signs in with it."""

    template_name = "portal/choose_password.html"
    form_class = ChoosePasswordForm
    success_url = reverse_lazy("portal:sign-in")
    heading = "Choose a new password"

    def get_user(self, uidb64):
        try:
            user_id = int(force_str(urlsafe_base64_decode(uidb64)))
        except (TypeError, ValueError, OverflowError):
            return None
        return accounts.patient_login(user_id)

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(
            self.request, "Your password is set. Sign in with your email and the new password."
        )
        return response

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {
            "heading": self.heading,
            "clinic_name": settings.CLINIC_NAME,
        }


class AcceptInviteView(ChoosePasswordView):
    token_generator = accounts.invite_tokens
    heading = "Welcome: choose your password"


class ResetPasswordView(ChoosePasswordView):
    token_generator = accounts.reset_tokens


# --- Pages ---------------------------------------------------------------------------------


@patient_page
def dashboard(request, patient):
    return page(request, "portal/dashboard.html", {"patient": patient, "section": "home"})
