from django.conf import settings
from django.db import models

from audit.models import audit_trail
from emr.kernel.transitions import GuardedStatusModel
from emr.models import Patient
from orders.states import OrderKind, OrderStatus, RecoveryStatus, order_transitions


class ProductKind(models.TextChoices):
    SERVICE = "SERVICE", "Service"
    PACKAGE = "PACKAGE", "Session package"
    MEMBERSHIP = "MEMBERSHIP", "Membership"
    MEDICATION = "MEDICATION", "Medication"


class Product(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=ProductKind.choices)
    price_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    active = models.BooleanField(default=True)
    requires_intake = models.BooleanField(default=False)
    requires_labs = models.BooleanField(default=False)
    requires_prescription = models.BooleanField(default=False)
    # The terms the patient sees and accepts at purchase; items sold keep the version in force.
    refund_policy = models.ForeignKey(
        "billing.RefundPolicy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="products",
    )
    # The documents a patient signs before an order of this product goes on (a consent, a
    # treatment disclaimer): unsigned, a paid order waits in AWAITING_REQUIREMENTS.
    required_documents = models.ManyToManyField(
        "emr.DocumentTemplate", blank=True, related_name="products"
    )
    # What a PACKAGE grants: paying its order opens a package of this many sessions.
    sessions = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_cents__gte=0), name="product_price_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=ProductKind.values), name="product_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Order(GuardedStatusModel):
    transitions = order_transitions

    number = models.CharField(max_length=20, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="orders")
    kind = models.CharField(max_length=20, choices=OrderKind.choices, default=OrderKind.MANUAL)
    status = models.CharField(
        max_length=30, choices=OrderStatus.choices, default=OrderStatus.PENDING, editable=False
    )
    currency = models.CharField(max_length=3, default="usd")
    total_cents = models.BigIntegerField(default=0)
    refunded_cents = models.BigIntegerField(default=0)
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )
    # Fulfilment facts the status is recalculated from (intake and prescriptions live in the chart).
    lab_requisition_sent_at = models.DateTimeField(null=True, blank=True)
    lab_results_received_at = models.DateTimeField(null=True, blank=True)
    sent_to_pharmacy_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Payment recovery: why the order waits for payment, how often it was retried, and when next.
    recovery_status = models.CharField(
        max_length=30, choices=RecoveryStatus.choices, default=RecoveryStatus.NONE, blank=True
    )
    recovery_attempts = models.PositiveIntegerField(default=0)
    recovery_next_retry_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audit_trail()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=OrderStatus.values), name="order_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=OrderKind.values), name="order_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(recovery_status__in=RecoveryStatus.values),
                name="order_recovery_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(total_cents__gte=0), name="order_total_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(refunded_cents__gte=0)
                & models.Q(refunded_cents__lte=models.F("total_cents")),
                name="order_refunded_within_total",
            ),
        ]
        permissions = [
            ("refund_order", "Can refund an order through its gateway"),
            ("change_order_status", "Can move an order along its status table"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_locked(self) -> bool:
        return self.status == OrderStatus.REFUNDED


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=200)  # the product name when it was sold
    quantity = models.PositiveIntegerField()
    unit_price_cents = models.BigIntegerField()
    total_cents = models.BigIntegerField()
    # The product's refund terms when this was ordered: a later edit of the policy is a new
    # version and never changes what this patient bought under.
    refund_policy_version = models.ForeignKey(
        "billing.RefundPolicyVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    history = audit_trail()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="item_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(unit_price_cents__gte=0), name="item_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.description}"
