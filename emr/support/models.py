"""CS escalations, and two admin-only views of existing tables (proxies, no tables of their own).

An `Escalation` keeps the packet exactly as it was when CS handed the case off: the structured
facts (`packet`) and the copyable text (`packet_text`) are written once, at creation, and never
rebuilt, so the team reading it later sees what CS saw.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from audit.models import audit_trail
from emr.kernel.transitions import GuardedStatusModel
from emr.models import Patient
from emr.support.states import EscalationRoute, EscalationStatus, escalation_transitions
from orders.models import Order


class Escalation(GuardedStatusModel):
    transitions = escalation_transitions

    number = models.CharField(max_length=20, unique=True, editable=False)
    route = models.CharField(max_length=20, choices=EscalationRoute.choices)
    # What the guide's checklist suggested, and the checklist line that matched; CS may choose
    # another route, and the difference is worth seeing later.
    suggested_route = models.CharField(max_length=20, choices=EscalationRoute.choices)
    suggestion_reason = models.CharField(max_length=300)
    status = models.CharField(
        max_length=10,
        choices=EscalationStatus.choices,
        default=EscalationStatus.OPEN,
        editable=False,
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="escalations")
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="escalations"
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="escalations",
    )
    patient_reason = models.TextField(
        help_text="Why the patient is requesting a refund or cancellation."
    )
    message = models.TextField(
        blank=True, help_text="The exact patient- or staff-facing message, word for word."
    )
    packet = models.JSONField(
        encoder=DjangoJSONEncoder, help_text="The packet's facts as they were at creation."
    )
    packet_text = models.TextField(help_text="The packet as copyable text, as it was at creation.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by_label = models.CharField(max_length=150, blank=True)
    resolution_note = models.TextField(blank=True)

    history = audit_trail()

    class Meta:
        ordering = ["-created_at", "-id"]
        # Escalations change only through the service (resolve); no generic change or delete.
        default_permissions = ("add", "view")
        permissions = [
            ("resolve_billing_escalation", "Can resolve escalations routed to billing/admin"),
            ("resolve_fulfilment_escalation", "Can resolve escalations routed to fulfilment"),
            ("resolve_medical_escalation", "Can resolve escalations routed to medical ops"),
        ]
        indexes = [models.Index(fields=["status", "route"], name="escalation_queue_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=EscalationStatus.values),
                name="escalation_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(route__in=EscalationRoute.values)
                & models.Q(suggested_route__in=EscalationRoute.values),
                name="escalation_route_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(order__isnull=False) | models.Q(subscription__isnull=False),
                name="escalation_has_order_or_subscription",
            ),
            # A resolved escalation always says when and how it was resolved.
            models.CheckConstraint(
                condition=models.Q(status=EscalationStatus.OPEN)
                | (models.Q(resolved_at__isnull=False) & ~models.Q(resolution_note="")),
                name="resolved_escalation_has_note",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_open(self) -> bool:
        return self.status == EscalationStatus.OPEN


class PatientProfile(Patient):
    """The patient search and one-page profile in the admin (a view of `emr.Patient`)."""

    class Meta:
        proxy = True
        # Access follows the permissions on the records the pages show (see admin.py).
        default_permissions = ()
        verbose_name = "patient profile"
        verbose_name_plural = "patient search"


class FailedPayment(Order):
    """Orders waiting for payment, as the "Failed payments" list shows them."""

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = "failed payment"
        verbose_name_plural = "failed payments"
