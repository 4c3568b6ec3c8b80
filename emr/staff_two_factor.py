"""Two-factor sign-in for staff (HIPAA person authentication): a password and the 6-digit code
of an authenticator app (TOTP, django-otp).

Who must: superusers and the groups in STAFF_TWO_FACTOR_GROUPS (billing admins by default; a
clinic may add CS), whenever STAFF_TWO_FACTOR_REQUIRED is on (it is unless DEBUG). Anyone who
has set up an app is asked for its code at every sign-in. Someone who must but has not set one
up is taken to the set-up page before any other staff page, and stays there until done.
API tokens are for systems, not people, and are not concerned.
"""

from base64 import b32encode

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_totp.models import TOTPDevice

SETUP_URL_NAME = "staff-two-factor-setup"
# Pages someone who still has to set up two-factor may open: the set-up itself, signing in and
# out, and the files those pages load.
_OPEN_PATHS = ("/admin/login/", "/admin/logout/", "/admin/jsi18n/")
CODE_SENTENCES = {
    "token_required": "Enter the 6-digit code your authenticator app shows for EMR billing.",
    "invalid_token": "That code is not right or has expired. Enter the code your app shows now.",
    "n_failed_attempts": "Too many wrong codes in a row: wait a minute, then enter the code your "
    "app shows.",
}


def two_factor_required(user) -> bool:
    if not settings.STAFF_TWO_FACTOR_REQUIRED or not user.is_staff:
        return False
    return (
        user.is_superuser or user.groups.filter(name__in=settings.STAFF_TWO_FACTOR_GROUPS).exists()
    )


class StaffSignInForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """The admin's sign-in form with the authenticator code, asked of everyone who set one up."""

    otp_device = forms.CharField(required=False, widget=forms.HiddenInput)
    otp_token = forms.CharField(
        required=False,
        label="Authentication code",
        help_text="The 6 digits your authenticator app shows, if you have set one up.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    otp_challenge = forms.CharField(required=False, widget=forms.HiddenInput)
    otp_error_messages = {**OTPAuthenticationFormMixin.otp_error_messages, **CODE_SENTENCES}

    def _chosen_device(self, user):
        # Each person has one app; the form need not ask which.
        chosen = super()._chosen_device(user)
        return chosen or TOTPDevice.objects.devices_for_user(user, confirmed=True).first()

    def clean(self):
        super().clean()
        user = self.get_user()
        if user is not None and user_has_device(user):
            self.clean_otp(user)
        return self.cleaned_data


class TwoFactorRequiredMiddleware:
    """Who must use two-factor and has not verified this session sees the set-up page first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith((*_OPEN_PATHS, settings.STATIC_URL))
            and request.path != reverse(SETUP_URL_NAME)
            and two_factor_required(user)
        ):
            return self._refuse(request)
        return self.get_response(request)

    @staticmethod
    def _refuse(request):
        if user_has_device(request.user):
            # An app was set up since this session began: sign in again with its code.
            logout(request)
            return HttpResponseRedirect(reverse("admin:login"))
        if request.path.startswith("/api/"):
            return JsonResponse(
                {
                    "code": "auth.two_factor_required",
                    "detail": "Set up two-factor sign-in in the admin before using the API.",
                },
                status=403,
            )
        return HttpResponseRedirect(reverse(SETUP_URL_NAME))


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


@login_required(login_url="admin:login")
def set_up(request):
    """Show a new authenticator secret as a QR code; a correct code from the app turns it on."""
    device = _pending_device(request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            messages.success(
                request,
                "Two-factor sign-in is on: from now on, sign in with your password and "
                "the code your app shows.",
            )
            return HttpResponseRedirect(reverse("admin:index"))
        form.add_error("code", CODE_SENTENCES["invalid_token"])
    secret = b32encode(device.bin_key).decode()
    context = {
        "title": "Set up two-factor sign-in",
        "qr_data_uri": segno.make(device.config_url, error="m").svg_data_uri(scale=5),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "form": form,
        "required": two_factor_required(request.user),
        "site_header": "EMR billing",
    }
    return TemplateResponse(request, "admin/two_factor_setup.html", context)


def _pending_device(user) -> TOTPDevice:
    # One unconfirmed device per person: reloading the page keeps the QR code they scanned.
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
