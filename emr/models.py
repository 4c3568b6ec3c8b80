"""The patient chart: who the patient is, what they answered, what was prescribed, and the
documents they signed (consents, treatment disclaimers, payment terms)."""

from django.conf import settings
from django.db import models

from audit.models import audit_trail
from emr.kernel.numbering import NumberSequence

__all__ = [
    "DeliveryStatus",
    "DocumentKind",
    "DocumentTemplate",
    "DocumentVersion",
    "IntakeResponse",
    "IntakeStatus",
    "MessageChannel",
    "MessageKind",
    "NumberSequence",
    "Patient",
    "Prescription",
    "SentMessage",
    "SignedDocument",
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


# --- Documents the patient signs ------------------------------------------------------------


class DocumentKind(models.TextChoices):
    CONSENT = "CONSENT", "Consent"
    DISCLAIMER = "DISCLAIMER", "Treatment disclaimer"
    PAYMENT_TERMS = "PAYMENT_TERMS", "Payment terms"


class DocumentTemplate(models.Model):
    """A document the clinic asks patients to sign ("Ketamine consent"). Its words live in
    versions, which never change: an edit is a new version (`emr.documents.revise_template`),
    and each signature keeps the version, and the exact text, the patient signed."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=DocumentKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=DocumentKind.values), name="document_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def current(self) -> "DocumentVersion":
        return self.versions.order_by("-version").first()


class DocumentVersion(models.Model):
    template = models.ForeignKey(
        DocumentTemplate, on_delete=models.PROTECT, related_name="versions"
    )
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    # The hash of `emr.documents.document_text(title, body)`: what a signature points at.
    text_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_label = models.CharField(max_length=150)

    history = audit_trail()

    class Meta:
        ordering = ["template", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="document_version_once"),
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A document version never changes; make a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("A document version is never deleted.")


class SignedDocument(models.Model):
    """A patient's signature of one document version: the exact text shown and its hash, when,
    from which address and browser, the typed name and (when drawn) the signature image, and
    the PDF rendered once at signing with its hash. Written once by `emr.documents.sign_document`
    and never changed or deleted."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="signed_documents")
    version = models.ForeignKey(
        DocumentVersion, on_delete=models.PROTECT, related_name="signatures"
    )
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64)
    typed_name = models.CharField(max_length=200)
    signature_png = models.BinaryField(null=True, blank=True, editable=False)
    signed_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    signed_by_label = models.CharField(max_length=150)
    pdf = models.BinaryField(editable=False)
    pdf_sha256 = models.CharField(max_length=64)

    # The history keeps the hashes, not a second copy of the PDF and the image: the audit chain
    # seals the hash, so a PDF altered in place no longer matches what was sealed.
    history = audit_trail(excluded_fields=["pdf", "signature_png"])

    class Meta:
        ordering = ["-signed_at", "-id"]
        indexes = [models.Index(fields=["patient", "version"], name="signed_document_patient")]

    def __str__(self) -> str:
        return f"{self.version} signed by {self.typed_name}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A signed document never changes.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("A signed document is never deleted.")


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
