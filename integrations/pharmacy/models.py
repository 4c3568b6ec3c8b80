"""Pharmacy fulfilment: which pharmacy a product goes to, each order's fulfilment there, what
CS verified with pharmacies that have no API, and the webhook events pharmacies sent."""

from django.db import models

from audit.models import audit_trail
from emr.kernel.transitions import GuardedStatusModel
from integrations.inbox import InboundEvent, Outcome
from integrations.pharmacy.states import (
    CLOSED_STATUSES,
    FulfilmentFinding,
    PharmacyOrderStatus,
    PharmacyType,
    WebhookSource,
    pharmacy_order_transitions,
)


class ProductPharmacyRoute(models.Model):
    """A product's default pharmacy: where its orders go once the prescription is written.
    Products without a route go to the clinic's own pharmacy (states.DEFAULT_PHARMACY)."""

    product = models.OneToOneField(
        "orders.Product", on_delete=models.CASCADE, related_name="pharmacy_route"
    )
    pharmacy = models.CharField(max_length=20, choices=PharmacyType.choices)

    history = audit_trail()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(pharmacy__in=PharmacyType.values),
                name="product_pharmacy_route_pharmacy_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} -> {self.get_pharmacy_display()}"


class PharmacyOrder(GuardedStatusModel):
    """An order's fulfilment at one pharmacy. `status` is the pharmacy integration's state only:
    it never refunds, cancels the order or touches the subscription."""

    transitions = pharmacy_order_transitions

    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="pharmacy_orders"
    )
    pharmacy = models.CharField(max_length=20, choices=PharmacyType.choices, editable=False)
    # Ours, sent to the pharmacy: DispensePro's idempotency key, and what a partner quotes back.
    reference = models.CharField(max_length=40, unique=True, editable=False)
    # The pharmacy's id for it (DispensePro's order id); empty for pharmacies without an API.
    external_id = models.CharField(max_length=100, blank=True, db_index=True, editable=False)
    status = models.CharField(
        max_length=10,
        choices=PharmacyOrderStatus.choices,
        default=PharmacyOrderStatus.PENDING,
        editable=False,
    )
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    submit_attempts = models.PositiveIntegerField(default=0, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    shipped_at = models.DateTimeField(null=True, blank=True, editable=False)
    carrier = models.CharField(max_length=50, blank=True, editable=False)
    tracking_number = models.CharField(max_length=100, blank=True, editable=False)
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audit_trail()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PharmacyOrderStatus.values),
                name="pharmacy_order_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(pharmacy__in=PharmacyType.values),
                name="pharmacy_order_pharmacy_valid",
            ),
            # One fulfilment in flight per order; a voided or cancelled one may be replaced.
            models.UniqueConstraint(
                fields=["order"],
                condition=~models.Q(status__in=sorted(CLOSED_STATUSES)),
                name="one_open_pharmacy_order_per_order",
            ),
        ]
        permissions = [
            ("void_pharmacyorder", "Can void a pharmacy order (DispensePro, before shipment)"),
            ("submit_pharmacyorder", "Can send an order to its pharmacy, or record it sent"),
            ("record_fulfilment_check", "Can record what a pharmacy said about a fulfilment"),
        ]

    def __str__(self) -> str:
        return f"{self.get_pharmacy_display()} {self.reference}"


class FulfilmentCheck(models.Model):
    """What CS verified with a pharmacy that has no void in its API, before promising anything.

    Append-only: each check is its own row, written with who checked and when.
    """

    pharmacy_order = models.ForeignKey(
        PharmacyOrder, on_delete=models.PROTECT, related_name="fulfilment_checks"
    )
    finding = models.CharField(max_length=30, choices=FulfilmentFinding.choices)
    note = models.TextField()  # who at the pharmacy said what, and when
    checked_by = models.CharField(max_length=150)  # the actor's label
    checked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(finding__in=FulfilmentFinding.values),
                name="fulfilment_check_finding_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_finding_display()} ({self.checked_by})"


class PharmacyWebhookEvent(InboundEvent):
    """Each webhook event a pharmacy sent, stored before it is processed, with the outcome
    (integrations/inbox.py). The unique (source, event id) makes a replay harmless."""

    source = models.CharField(max_length=20, choices=WebhookSource.choices)
    pharmacy_order = models.ForeignKey(
        PharmacyOrder, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(InboundEvent.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"], name="pharmacy_webhook_event_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(outcome__in=Outcome.values),
                name="pharmacy_webhook_outcome_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.event_type} {self.event_id}"
