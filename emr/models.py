"""The patient chart: who the patient is, what they answered, what was prescribed."""

from django.conf import settings
from django.db import models

from audit.models import audit_trail
from emr.kernel.numbering import NumberSequence

__all__ = [
    "DeliveryStatus",
    "IntakeResponse",
    "IntakeStatus",
    "MessageChannel",
    "MessageKind",
    "NumberSequence",
    "Patient",
    "Prescription",
    "SentMessage",
]


class Patient(models.Model):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    phone = models.CharField(max_length=32, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    # The patient's portal login; staff never log in as a patient.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patient",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["last_name", "first_name", "id"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def full_name(self) -> str:
        return str(self)


class IntakeStatus(models.TextChoices):
    PENDING = "PENDING", "Pending (not submitted)"
    SUBMITTED = "SUBMITTED", "Submitted"
    APPROVED = "APPROVED", "Approved"
    NEEDS_CORRECTION = "NEEDS_CORRECTION", "Needs correction"
    REJECTED = "REJECTED", "Rejected"


class IntakeResponse(models.Model):
    """A patient's answers to the questionnaire an order's product requires."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="intakes")
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="intakes"
    )
    questionnaire = models.CharField(max_length=100)
    status = models.CharField(
        max_length=20, choices=IntakeStatus.choices, default=IntakeStatus.PENDING
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=IntakeStatus.values), name="intake_status_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.questionnaire} ({self.get_status_display()})"

    @property
    def is_complete(self) -> bool:
        return self.status in {IntakeStatus.SUBMITTED, IntakeStatus.APPROVED}


class Prescription(models.Model):
    """Written by the prescriber (Beluga's RX_WRITTEN): the boundary before fulfilment."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="prescriptions"
    )
    medication = models.CharField(max_length=200)
    prescriber = models.CharField(max_length=200, blank=True)
    written_at = models.DateTimeField()

    history = audit_trail()

    def __str__(self) -> str:
        return f"{self.medication} ({self.written_at:%Y-%m-%d})"


class MessageChannel(models.TextChoices):
    EMAIL = "EMAIL", "Email"
    SMS = "SMS", "SMS"


class MessageKind(models.TextChoices):
    WORKFLOW = "WORKFLOW", "Workflow message"
    PORTAL_INVITE = "PORTAL_INVITE", "Portal invitation"
    PASSWORD_RESET = "PASSWORD_RESET", "Portal password reset"


class DeliveryStatus(models.TextChoices):
    SENT = "SENT", "Sent"
    FAILED = "FAILED", "Not sent (the mail server or SMS provider refused)"


class SentMessage(models.Model):
    """The communication log: one row per message the app sent (or tried to send) to someone,
    with the SHA-256 of the exact body, so a clinic can show in a dispute what it told the
    patient and when, and that the words were not changed since.

    The body itself is kept for workflow messages (the clinic's own words, rendered); a portal
    invitation or password reset carries a sign-in link that works once, so only its hash is
    kept. `opened_at` is when the patient first opened it on the portal's messages page.
    """

    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="sent_messages"
    )
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sent_messages",
    )
    channel = models.CharField(max_length=10, choices=MessageChannel.choices)
    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    body_sha256 = models.CharField(max_length=64)
    body_length = models.PositiveIntegerField()
    # What sent it: "workflow “Receipt” step 2", "portal invitation".
    sent_by = models.CharField(max_length=200)
    # One message, however many times its step was attempted (the step's idempotency key).
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices)
    status_detail = models.CharField(max_length=300, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    sent_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = "communication log entry"
        verbose_name_plural = "communication log"
        indexes = [models.Index(fields=["patient", "-sent_at"], name="sent_message_patient")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channel__in=MessageChannel.values), name="message_channel_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values), name="message_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.recipient} ({self.sent_at:%Y-%m-%d})"
