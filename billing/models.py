import uuid

from django.conf import settings
from django.db import models

from audit.models import audit_trail
from billing.states import (
    OPEN_DISPUTE_STATUSES,
    DisputeStatus,
    EvidenceStatus,
    Gateway,
    InvoiceStatus,
    PaymentKind,
    PaymentStatus,
    RefundAttemptStatus,
    dispute_transitions,
    invoice_transitions,
    payment_transitions,
)
from emr.kernel.money import format_cents
from emr.kernel.transitions import GuardedStatusModel
from emr.models import Patient
from integrations.inbox import InboundEvent
from orders.models import Order


class GatewaySettings(models.Model):
    """The clinic's one active gateway: it takes new charges and saves cards.

    Refunds ignore it: they go back through the gateway of the original payment.
    """

    active_gateway = models.CharField(
        max_length=10, choices=Gateway.choices, default=Gateway.STRIPE
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = audit_trail()

    class Meta:
        verbose_name = "gateway settings"
        verbose_name_plural = "gateway settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(active_gateway__in=Gateway.values), name="active_gateway_valid"
            ),
            models.CheckConstraint(condition=models.Q(id=1), name="gateway_settings_singleton"),
        ]

    def __str__(self) -> str:
        return f"Gateway settings ({self.get_active_gateway_display()} active)"

    @classmethod
    def load(cls) -> "GatewaySettings":
        settings, _ = cls.objects.get_or_create(id=1)
        return settings


class PaymentMethod(models.Model):
    """A card saved in one gateway's vault; it can only be charged there."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="payment_methods")
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    # The gateway's vault reference. Never shown to staff or patients, never logged.
    gateway_token = models.CharField(max_length=255)
    merchant_account = models.CharField(max_length=100, blank=True)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    is_default = models.BooleanField(default=False)
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail(excluded_fields=["gateway_token"])

    class Meta:
        ordering = ["-is_default", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(gateway__in=Gateway.values), name="payment_method_gateway_valid"
            ),
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(is_default=True, removed_at__isnull=True),
                name="one_default_card_per_patient",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand.title()} ····{self.last4} ({self.get_gateway_display()})"


class Invoice(GuardedStatusModel):
    transitions = invoice_transitions

    number = models.CharField(max_length=20, unique=True, editable=False)
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="invoice")
    status = models.CharField(
        max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.SENT, editable=False
    )
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    issued_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    history = audit_trail()

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=InvoiceStatus.values), name="invoice_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_cents__gte=0), name="invoice_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Payment(GuardedStatusModel):
    """One money movement at a gateway: a charge, or a refund of a charge."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=10, choices=PaymentKind.choices)
    status = models.CharField(max_length=10, choices=PaymentStatus.choices, editable=False)
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    # Which merchant account took it, so a refund after the credentials moved to another account
    # is refused instead of being sent to the wrong one.
    merchant_account = models.CharField(max_length=100, blank=True)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    transaction_id = models.CharField(max_length=100, blank=True, db_index=True)
    # Our idempotency key at the gateway for the charge this row records.
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    refund_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    # What staff may see of the card: brand and last four, never the number.
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # The issuer's address and security-code checks, where the gateway reported them.
    avs_result = models.CharField(max_length=100, blank=True)
    cvv_result = models.CharField(max_length=20, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    # Set when the gateway reported something the app did not do itself (a refund made in the
    # gateway's dashboard, a refund that failed after settling): CS must look at it.
    needs_review = models.BooleanField(default=False)
    review_note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PaymentStatus.values), name="payment_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=PaymentKind.values), name="payment_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(gateway__in=Gateway.values), name="payment_gateway_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_cents__gt=0), name="payment_amount_positive"
            ),
            # A refund always points at the charge it returns money from; a charge never does.
            models.CheckConstraint(
                condition=(
                    models.Q(kind=PaymentKind.REFUND, refund_of__isnull=False)
                    | models.Q(kind=PaymentKind.CHARGE, refund_of__isnull=True)
                ),
                name="payment_refund_points_at_charge",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {format_cents(self.amount_cents, self.currency)}"

    def check_status_transition(self, current: str, target: str) -> None:
        payment_transitions[self.kind].check(current, target)


class RefundAttempt(models.Model):
    """One request to return money, committed before the gateway is called.

    Its `reference` is the gateway idempotency key, so a retry or the reconciler can never move
    the money twice; an attempt left PENDING by a crash or timeout is resolved by asking the
    gateway what happened to that reference.
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refund_attempts")
    charge = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refund_attempts")
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=10, choices=RefundAttemptStatus.choices, default=RefundAttemptStatus.PENDING
    )
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=150)
    door = models.CharField(max_length=20)
    refund_payment = models.OneToOneField(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="refund_attempt"
    )
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    # What the refund policy allowed when this was asked, and why staff went beyond it.
    policy_quote_cents = models.BigIntegerField(null=True, blank=True)
    policy_override_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    history = audit_trail()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RefundAttemptStatus.values),
                name="refund_attempt_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(amount_cents__gt=0), name="refund_attempt_amount_positive"
            ),
            # The database itself refuses a second refund in flight for one order.
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(status=RefundAttemptStatus.PENDING),
                name="one_pending_refund_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund of {format_cents(self.amount_cents, self.currency)} ({self.status})"


class GatewayEvent(InboundEvent):
    """An event a gateway pushed to us, stored before it is processed, with the outcome
    (integrations/inbox.py), so a billing admin can see why a payment changed. The unique
    (gateway, event_id) makes a redelivered event harmless.
    """

    class Outcome(models.TextChoices):
        # RECEIVED, IGNORED and FAILED as in integrations.inbox.Outcome; processed events are
        # APPLIED or NEEDS_REVIEW.
        RECEIVED = "RECEIVED", "Received (not processed yet)"
        APPLIED = "APPLIED", "Applied"
        NEEDS_REVIEW = "NEEDS_REVIEW", "Recorded; CS must review"
        IGNORED = "IGNORED", "Ignored"
        FAILED = "FAILED", "Processing failed"

    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    payload = models.JSONField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED)

    class Meta(InboundEvent.Meta):
        constraints = [
            models.UniqueConstraint(fields=["gateway", "event_id"], name="gateway_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_type} {self.event_id}"


class RefundPolicy(models.Model):
    """A clinic's named refund terms. Its rules live in versions, which never change: an edit
    is a new version, and each order item keeps the version it was sold under."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "refund policies"

    def __str__(self) -> str:
        return self.name

    @property
    def current(self) -> "RefundPolicyVersion":
        return self.versions.order_by("-version").first()


class RefundPolicyVersion(models.Model):
    policy = models.ForeignKey(RefundPolicy, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    rules = models.JSONField()
    # Generated from the rules (billing/policy_rules.py); the hash is what an acknowledgement
    # points at, so a patient's "I agreed" names exactly these words.
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_label = models.CharField(max_length=150)

    history = audit_trail()

    class Meta:
        ordering = ["policy", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "version"], name="policy_version_once"),
        ]

    def __str__(self) -> str:
        return f"{self.policy} v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A refund-policy version never changes; make a new version.")
        super().save(*args, **kwargs)


class AcknowledgementChannel(models.TextChoices):
    PORTAL = "portal", "Patient portal"
    PHONE = "phone", "Phone (attested by staff)"
    IN_PERSON = "in_person", "In person (attested by staff)"


class PolicyAcknowledgement(models.Model):
    """A patient's acceptance of the refund terms an order was sold under: which version, the
    hash of the text shown, who recorded it through which channel, when, from where. Never
    edited."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="acknowledgements")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    policy_version = models.ForeignKey(
        RefundPolicyVersion, on_delete=models.PROTECT, related_name="acknowledgements"
    )
    text_sha256 = models.CharField(max_length=64)
    channel = models.CharField(max_length=10, choices=AcknowledgementChannel.choices)
    recorded_by_label = models.CharField(max_length=150)
    acknowledged_at = models.DateTimeField(auto_now_add=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    history = audit_trail()

    class Meta:
        ordering = ["-acknowledged_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channel__in=AcknowledgementChannel.values),
                name="acknowledgement_channel_valid",
            ),
            models.UniqueConstraint(
                fields=["order", "policy_version"], name="acknowledged_once_per_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order} accepted {self.policy_version} ({self.channel})"


class SessionPackage(models.Model):
    """The sessions a paid PACKAGE item grants, and until when; its redemptions are the usage
    log a clinic shows when a patient says "I only used two"."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="packages")
    order_item = models.OneToOneField(
        "orders.OrderItem", on_delete=models.PROTECT, related_name="package"
    )
    sessions_total = models.PositiveIntegerField()
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    expiring_announced_at = models.DateTimeField(null=True, blank=True, editable=False)
    expired_announced_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = audit_trail()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sessions_total__gte=1), name="package_has_sessions"
            ),
        ]

    def __str__(self) -> str:
        return f"Package {self.pk}: {self.sessions_total} sessions"


class SessionRedemption(models.Model):
    """One session used: when, by which provider, for which appointment, with the chart note."""

    package = models.ForeignKey(
        SessionPackage, on_delete=models.PROTECT, related_name="redemptions"
    )
    redeemed_at = models.DateTimeField()
    provider = models.CharField(max_length=150)
    appointment_ref = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)
    recorded_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["redeemed_at", "id"]

    def __str__(self) -> str:
        return f"Session of package {self.package_id} on {self.redeemed_at:%Y-%m-%d}"


class Dispute(GuardedStatusModel):
    """A chargeback (or an inquiry before one) on a charge: Stripe's reported by its webhooks,
    NMI's entered by a billing admin from the processor's notice. The packet of evidence is
    built per order (billing/evidence_packet.py) and, for Stripe, submitted once
    (`EvidenceSubmission`)."""

    transitions = dispute_transitions

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    # Stripe's dp_… id; for NMI the processor's case number.
    gateway_dispute_id = models.CharField(max_length=100)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    reason = models.CharField(max_length=100)
    status = models.CharField(max_length=30, choices=DisputeStatus.choices, editable=False)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    entered_by_label = models.CharField(max_length=150)
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audit_trail()

    class Meta:
        ordering = [models.F("evidence_due_by").asc(nulls_last=True), "-opened_at", "-id"]
        permissions = [("submit_evidence", "Can submit a dispute's evidence to the gateway")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DisputeStatus.values), name="dispute_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(gateway__in=Gateway.values), name="dispute_gateway_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_cents__gt=0), name="dispute_amount_positive"
            ),
            models.UniqueConstraint(
                fields=["gateway", "gateway_dispute_id"], name="dispute_once_per_gateway_id"
            ),
        ]

    def __str__(self) -> str:
        return f"Dispute {self.gateway_dispute_id} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_DISPUTE_STATUSES

    # The order and patient it concerns (a decision record on a dispute names them).
    @property
    def order(self) -> Order:
        return self.payment.invoice.order

    @property
    def order_id(self) -> int:
        return self.payment.invoice.order_id

    @property
    def patient_id(self) -> int:
        return self.payment.invoice.order.patient_id


class EvidenceSubmission(models.Model):
    """The one submission of a Stripe dispute's evidence. Committed, with the exact packet, before
    the first gateway call; its `reference` makes both calls (the file upload and the dispute
    update) idempotent at Stripe, so a retry after a lost answer, by staff or by the janitor
    (`billing.resume_evidence_submissions`), repeats the same requests and Stripe replays its
    answers instead of acting twice."""

    dispute = models.OneToOneField(Dispute, on_delete=models.PROTECT, related_name="submission")
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=10, choices=EvidenceStatus.choices, default=EvidenceStatus.PENDING
    )
    packet = models.BinaryField()
    packet_sha256 = models.CharField(max_length=64)
    evidence = models.JSONField(default=dict)  # the text fields sent with the file
    file_id = models.CharField(max_length=100, blank=True)
    requested_by_label = models.CharField(max_length=150)
    door = models.CharField(max_length=20)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=EvidenceStatus.values),
                name="evidence_submission_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Evidence for {self.dispute} ({self.get_status_display()})"
