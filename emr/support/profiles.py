"""The patient profile: one page with everything CS checks about a patient.

`load_profile` reads each kind of record in one query of its own (related rows joined in), so
the page costs the same number of queries for a patient with one order as for one with fifty.
Saved cards are read without their gateway token: it never leaves the database for this page.
"""

from dataclasses import dataclass

from billing.models import Invoice, Payment, PaymentMethod, RefundAttempt
from emr.models import IntakeResponse, Patient, Prescription
from emr.support.models import Escalation
from integrations.beluga.models import BelugaMessage, BelugaVisit
from integrations.beluga.states import MessageChannel
from integrations.pharmacy.models import PharmacyOrder
from orders.models import Order
from subscriptions.models import Subscription


@dataclass(frozen=True)
class Profile:
    patient: Patient
    orders: list[Order]
    payments: list[Payment]
    refund_attempts: list[RefundAttempt]
    subscriptions: list[Subscription]
    cards: list[PaymentMethod]
    beluga_visits: list[BelugaVisit]
    pharmacy_orders: list[PharmacyOrder]
    intakes: list[IntakeResponse]
    prescriptions: list[Prescription]
    # Doctor <-> patient: what the patient reads in their inbox.
    patient_messages: list[BelugaMessage]
    # CS <-> Beluga admin: internal, never shown to the patient.
    internal_messages: list[BelugaMessage]
    escalations: list[Escalation]

    @property
    def invoices(self) -> list[Invoice]:
        return [order.invoice for order in self.orders if _invoice(order) is not None]


def _invoice(order: Order) -> Invoice | None:
    # A missing reverse one-to-one raises a subclass of AttributeError: getattr's default applies.
    return getattr(order, "invoice", None)


def load_profile(patient_id: int) -> Profile:
    """Raises Patient.DoesNotExist for an unknown id."""
    patient = Patient.objects.get(pk=patient_id)
    messages = list(
        BelugaMessage.objects.filter(visit__order__patient=patient).select_related("visit__order")
    )
    return Profile(
        patient=patient,
        orders=list(
            patient.orders.select_related("invoice", "subscription").order_by("-created_at", "-id")
        ),
        payments=list(
            Payment.objects.filter(invoice__order__patient=patient)
            .select_related("invoice__order")
            .order_by("-created_at", "-id")
        ),
        refund_attempts=list(
            RefundAttempt.objects.filter(order__patient=patient).select_related("order")
        ),
        subscriptions=list(patient.subscriptions.select_related("plan")),
        cards=list(patient.payment_methods.defer("gateway_token")),
        beluga_visits=list(
            BelugaVisit.objects.filter(order__patient=patient).select_related("order")
        ),
        pharmacy_orders=list(
            PharmacyOrder.objects.filter(order__patient=patient).select_related("order")
        ),
        intakes=list(patient.intakes.select_related("order").order_by("-created_at", "-id")),
        prescriptions=list(patient.prescriptions.select_related("order").order_by("-written_at")),
        patient_messages=[m for m in messages if m.channel == MessageChannel.DOCTOR_PATIENT],
        internal_messages=[m for m in messages if m.channel == MessageChannel.CS_ADMIN],
        escalations=list(patient.escalations.select_related("order", "subscription")),
    )
