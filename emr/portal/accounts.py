"""Portal accounts: staff invite a patient, the patient sets a password from a link that works
once and expires, and resets a forgotten one the same way.

A patient's login is an ordinary Django user named `patient-<id>` (never their email, so audit
labels carry no address), linked from `Patient.user`, with no staff flag and no permissions.
"""

import hashlib
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

from emr.communications import Delivery, record_message
from emr.kernel.actors import Actor
from emr.kernel.errors import Forbidden, StateConflict
from emr.kernel.services import service_transaction
from emr.models import MessageChannel, MessageKind, Patient
from emr.portal.backends import normalize_email

logger = logging.getLogger(__name__)
User = get_user_model()


class PortalLinkTokens(PasswordResetTokenGenerator):
    """Django's password-reset token with a purpose and a lifetime of its own.

    It works once: it signs the account's password hash and last sign-in, and setting a
    password changes the hash (a new invitation does too, so earlier links stop working).
    """

    def __init__(self, purpose: str, lifetime: Callable[[], timedelta]):
        super().__init__()
        self.key_salt = f"emr.portal.{purpose}"
        self._lifetime = lifetime

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime()

    def check_token(self, user, token) -> bool:
        if not super().check_token(user, token):
            return False
        issued = base36_to_int(token.split("-")[0])
        return self._num_seconds(self._now()) - issued <= self.lifetime.total_seconds()


invite_tokens = PortalLinkTokens("invite", lambda: timedelta(hours=settings.PORTAL_INVITE_HOURS))
reset_tokens = PortalLinkTokens(
    "password-reset", lambda: timedelta(minutes=settings.PORTAL_PASSWORD_RESET_MINUTES)
)

STAFF_REFUSAL = (
    "This is a clinic staff account, and staff have no patient portal session. Use the clinic "
    "admin instead; to see the portal as a patient does, sign in with that patient's own login."
)
NOT_A_PATIENT = (
    "This login is not linked to a patient record, so there is nothing to show here. Please "
    "contact the clinic."
)


def portal_patient(user) -> Patient:
    """The patient a signed-in user is, or a refusal with the sentence to show them."""
    if user.is_staff:
        raise Forbidden(STAFF_REFUSAL, code="portal.staff_account")
    patient = Patient.objects.filter(user=user).first()
    if patient is None:
        raise Forbidden(NOT_A_PATIENT, code="portal.not_a_patient")
    return patient


def patient_login(user_id) -> object | None:
    """The login behind a portal link: a patient's, never a staff account's."""
    return User._default_manager.filter(
        pk=user_id, is_staff=False, is_active=True, patient__isnull=False
    ).first()


# --- Invitation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    patient: Patient
    email: str
    expires_at: datetime


def invite_patient(
    *, patient: Patient, actor: Actor, reason: str = "Portal invitation sent"
) -> Invitation:
    """Give the patient a portal login (if they have none) and email them a link to set its
    password. A second invitation before they set one replaces the first (its link stops
    working); once they have a password, they use "Forgot your password?" instead."""
    with service_transaction(actor, reason=reason):
        patient = (
            Patient.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=patient.pk)
        )
        user = patient.user
        if user is None:
            user = User(username=f"patient-{patient.pk}")
        elif user.is_staff:
            raise StateConflict(
                "This patient record is linked to a staff login, which cannot use the portal. "
                "Unlink it before inviting the patient.",
                code="portal.staff_account",
            )
        elif user.has_usable_password():
            raise StateConflict(
                f"{patient.full_name} already set a portal password. They can sign in, or use "
                "“Forgot your password?” on the portal's sign-in page.",
                code="portal.already_active",
            )
        user.email = patient.email
        user.first_name, user.last_name = patient.first_name[:150], patient.last_name[:150]
        user.set_unusable_password()
        user.save()
        if patient.user_id != user.pk:
            patient.user = user
            patient.save()
        expires_at = timezone.now() + invite_tokens.lifetime
        message = _portal_email(
            patient,
            subject=f"Set up your {settings.CLINIC_NAME} patient portal",
            lines=[
                f"{settings.CLINIC_NAME} has opened a patient portal account for you. There you "
                "can see your orders, invoices and receipts, pay an open invoice and manage "
                "your subscriptions.",
                "",
                "Choose your password here. The link works once and expires on "
                f"{expires_at:%d %b %Y at %H:%M} UTC:",
                _link("portal:accept-invite", user, invite_tokens),
            ],
        )
        transaction.on_commit(
            partial(_send, message, patient_id=patient.pk, kind=MessageKind.PORTAL_INVITE)
        )
    return Invitation(patient=patient, email=patient.email, expires_at=expires_at)


# --- Password reset ------------------------------------------------------------------------


def request_password_reset(*, email: str, address: str | None) -> None:
    """The reset form's request: a reset email goes out only while this email and this address
    are within their limits for the window (`PORTAL_PASSWORD_RESET_*`, read now), so the form
    can neither flood a mailbox nor be run through a list of addresses. Every request counts,
    whether or not the email has an account, and the answer is the same either way."""
    window = settings.PORTAL_PASSWORD_RESET_WINDOW_MINUTES * 60
    # The email is hashed: a cache key carries no address.
    email_key = hashlib.sha256(normalize_email(email).lower().encode()).hexdigest()
    within = [
        _count(f"portal:reset:email:{email_key}", window)
        <= settings.PORTAL_PASSWORD_RESET_PER_EMAIL,
        _count(f"portal:reset:address:{address or 'unknown'}", window)
        <= settings.PORTAL_PASSWORD_RESET_PER_ADDRESS,
    ]
    if not all(within):
        logger.warning("Portal password reset not sent: the request limit for the window is spent")
        return
    send_password_reset(email=email)


def _count(key: str, window_seconds: int) -> int:
    """This request's number in the key's window (the window starts with its first request)."""
    cache.add(key, 0, timeout=window_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=window_seconds)
        return 1


def send_password_reset(*, email: str) -> None:
    """Email a reset link when `email` is a patient's portal login. The answer is the same
    either way, so the form tells no one which addresses have an account."""
    patient = (
        Patient.objects.select_related("user")
        .filter(
            email__iexact=normalize_email(email),
            user__isnull=False,
            user__is_active=True,
            user__is_staff=False,
        )
        .first()
    )
    if patient is None:
        return
    minutes = int(reset_tokens.lifetime.total_seconds() // 60)
    message = _portal_email(
        patient,
        subject=f"Reset your {settings.CLINIC_NAME} portal password",
        lines=[
            "Someone asked to reset the password of your patient portal account.",
            "",
            f"Choose a new password here. The link works once and expires in {minutes} minutes:",
            _link("portal:reset-password", patient.user, reset_tokens),
            "",
            "If you did not ask for this, ignore this email: your password stays as it is.",
        ],
    )
    _send(message, patient_id=patient.pk, kind=MessageKind.PASSWORD_RESET)


# --- Email ---------------------------------------------------------------------------------


def _link(view_name: str, user, tokens: PortalLinkTokens) -> str:
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse(view_name, kwargs={"uidb64": uidb64, "token": tokens.make_token(user)})
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}"


def _portal_email(patient: Patient, *, subject: str, lines: list[str]) -> EmailMessage:
    signature = [settings.CLINIC_NAME, f"{settings.CLINIC_EMAIL} · {settings.CLINIC_PHONE}"]
    body = "\n".join([f"Hello {patient.first_name},", "", *lines, "", *signature])
    return EmailMessage(subject=subject, body=body, to=[patient.email])


def _send(message: EmailMessage, *, patient_id: int, kind: MessageKind) -> None:
    delivery = Delivery(sent=True)
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as error:
        # The address is the patient's: the log names the record, not the address.
        logger.warning("Portal email for patient %s not sent: %s", patient_id, error)
        delivery = Delivery(sent=False, detail=str(error))
    # The body carries a sign-in link that works once: only its hash is kept.
    record_message(
        channel=MessageChannel.EMAIL,
        kind=kind,
        recipient=message.to[0],
        subject=message.subject,
        body=message.body,
        delivery=delivery,
        sent_by=MessageKind(kind).label.lower(),
        patient_id=patient_id,
        keep_body=False,
    )
