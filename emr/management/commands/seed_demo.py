"""Demo data for a fresh install: staff logins per group, patients, products, plans, and orders
and subscriptions in every status, each reached through the same services staff use, with
money moved through the configured gateways (`make run` starts local ones). Idempotent."""

from contextlib import suppress
from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing import payments
from billing.order_status import transition_order
from billing.states import Gateway
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.models import IntakeResponse, IntakeStatus, Patient, Prescription
from emr.staff_groups import BILLING_ADMIN, CS, MEDICAL_OPS
from integrations.gateways import registry
from orders.models import Order, Product, ProductKind
from orders.services import OrderLine, create_order, recalculate_status, record_fact
from orders.states import OrderStatus
from subscriptions import lifecycle
from subscriptions.models import Plan, Subscription
from subscriptions.states import BillingInterval, SubscriptionStatus

# Demo logins for a local install only; printed at the end of every run.
STAFF = [
    ("admin", "demo-admin-pass", None, True),
    ("cs", "demo-cs-pass", CS, False),
    ("billing", "demo-billing-pass", BILLING_ADMIN, False),
    ("medops", "demo-medops-pass", MEDICAL_OPS, False),
]
# Fictional people; no real patient data.
PATIENTS = [
    ("Ada", "Quill"),
    ("Ben", "Harrow"),
    ("Cora", "Lind"),
    ("Dev", "Osei"),
    ("Eli", "Marsh"),
    ("Fay", "Okafor"),
    ("Gus", "Tran"),
    ("Hana", "Ruiz"),
]
# Test card tokens the local gateway servers understand (never card numbers).
DEMO_CARD = "pm_card_visa"
MARKER_EMAIL = "ada.quill@demo.example"
DEMO = Actor.system("seed-demo", door=Door.COMMAND)


class Command(BaseCommand):
    help = "Create demo staff, patients, products, orders and subscriptions (idempotent)."

    def handle(self, *args, **options):
        self._staff()
        if Patient.objects.filter(email=MARKER_EMAIL).exists():
            self.stdout.write("Demo data already present; logins below.")
        else:
            missing = [g for g in Gateway.values if not registry.is_configured(g)]
            if missing:
                raise CommandError(
                    f"Demo payments go through the gateways, but {', '.join(missing)} "
                    "is not configured. Run `make run`, which starts local gateway servers."
                )
            self._data()
        self._print_logins()

    def _staff(self) -> None:
        for username, password, group, superuser in STAFF:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "is_staff": True,
                    "is_superuser": superuser,
                    "email": f"{username}@demo.example",
                },
            )
            if created:
                user.set_password(password)
                user.save()
            if group:
                user.groups.add(Group.objects.get(name=group))

    def _data(self) -> None:
        patients = [
            Patient.objects.create(
                first_name=first,
                last_name=last,
                email=f"{first.lower()}.{last.lower()}@demo.example",
            )
            for first, last in PATIENTS
        ]
        products = self._products()
        for patient in patients:
            payments.set_active_gateway(gateway="stripe", actor=DEMO, reason="Demo setup")
            payments.save_card(patient=patient, gateway="stripe", token=DEMO_CARD, actor=DEMO)
        self._orders(patients, products)
        self._subscriptions(patients, products)
        payments.set_active_gateway(gateway="stripe", actor=DEMO, reason="Demo setup")

    def _products(self) -> dict[str, Product]:
        specs = {
            "consult": dict(
                name="Telehealth consultation",
                kind=ProductKind.SERVICE,
                price_cents=7500,
                refund_policy="Refundable until the visit starts; non-refundable after booking.",
            ),
            "package": dict(
                name="6-session coaching package",
                kind=ProductKind.PACKAGE,
                price_cents=45000,
                refund_policy="Expires in 90 days, non-transferable, no partial refunds.",
            ),
            "membership": dict(
                name="Weight care membership",
                kind=ProductKind.MEMBERSHIP,
                price_cents=9900,
                refund_policy="Billed monthly; cancel anytime with 30 days' notice.",
            ),
            "medication": dict(
                name="Semaglutide 4-week supply",
                kind=ProductKind.MEDICATION,
                price_cents=29900,
                requires_intake=True,
                requires_prescription=True,
                refund_policy="Non-refundable once sent to the pharmacy.",
            ),
            "labs": dict(
                name="Metabolic lab panel",
                kind=ProductKind.SERVICE,
                price_cents=12000,
                requires_labs=True,
            ),
        }
        return {key: Product.objects.create(**spec) for key, spec in specs.items()}

    def _orders(self, patients, products) -> None:
        cycle = iter(patients * 4)

        def order(product_key: str, *, pay: bool = True, gateway: str = "stripe") -> Order:
            patient = next(cycle)
            created = create_order(
                patient=patient, lines=[OrderLine(products[product_key], 1)], actor=DEMO
            )
            if pay:
                token = DEMO_CARD if gateway == "stripe" else "nmi_tok_visa"
                payments.set_active_gateway(gateway=gateway, actor=DEMO, reason="Demo setup")
                payments.charge_invoice(
                    invoice=created.invoice,
                    one_off=payments.OneOffCard(gateway, token),
                    actor=DEMO,
                )
            return Order.objects.get(pk=created.pk)

        def move(order_: Order, target: str, reason: str) -> None:
            transition_order(order=order_, target=target, actor=DEMO, reason=reason)

        order("consult", pay=False)  # PENDING
        declined = order("consult", pay=False)
        with suppress(DomainError):  # the decline is the point: AWAITING_PAYMENT
            payments.charge_invoice(
                invoice=declined.invoice,
                one_off=payments.OneOffCard("stripe", "pm_card_chargeDeclined"),
                actor=DEMO,
            )
        order("consult")  # PROCESSING
        order("medication")  # AWAITING_REQUIREMENTS (no intake yet)
        order("labs")  # AWAITING_REQUISITION
        results = order("labs")
        record_fact(
            order=results, fact="lab_requisition_sent", actor=DEMO, reason="Requisition sent"
        )
        script = order("medication")
        self._intake(script, IntakeStatus.SUBMITTED)  # AWAITING_SCRIPT
        fulfilment = order("medication")
        self._intake(fulfilment, IntakeStatus.APPROVED)
        self._prescription(fulfilment)  # AWAITING_FULFILLMENT

        def at_pharmacy() -> Order:
            sent = order("medication")
            self._intake(sent, IntakeStatus.APPROVED)
            self._prescription(sent)
            record_fact(order=sent, fact="sent_to_pharmacy", actor=DEMO, reason="Sent to pharmacy")
            return sent

        at_pharmacy()  # AWAITING_SHIPMENT
        move(at_pharmacy(), OrderStatus.SHIPPED, "Carrier picked up the parcel")
        delivered = at_pharmacy()
        move(delivered, OrderStatus.SHIPPED, "Carrier picked up the parcel")
        move(delivered, OrderStatus.COMPLETED, "Delivered")
        returned = at_pharmacy()
        move(returned, OrderStatus.SHIPPED, "Carrier picked up the parcel")
        move(returned, OrderStatus.RETURNED, "Parcel returned to the pharmacy")
        move(order("package", pay=False), OrderStatus.CANCELLED, "Created by mistake")
        move(order("consult", pay=False), OrderStatus.REJECTED, "Not eligible for telehealth")
        move(
            order("package"),
            OrderStatus.REFUNDED,
            "Patient changed their mind within the policy window",
        )
        order("package", gateway="nmi")  # paid through NMI: refundable there after the switch back

    def _intake(self, order: Order, status: str) -> None:
        IntakeResponse.objects.create(
            patient=order.patient,
            order=order,
            questionnaire="Weight care intake",
            status=status,
            submitted_at=timezone.now(),
        )
        recalculate_status(order=order, actor=DEMO, reason="Intake submitted")

    def _prescription(self, order: Order) -> None:
        Prescription.objects.create(
            patient=order.patient,
            order=order,
            medication="Semaglutide 0.25 mg",
            prescriber="Dr. Demo",
            written_at=timezone.now(),
        )
        recalculate_status(order=order, actor=DEMO, reason="Prescription written")

    def _subscriptions(self, patients, products) -> None:
        monthly = Plan.objects.create(
            name="Weight care monthly",
            product=products["membership"],
            price_cents=9900,
            interval=BillingInterval.MONTH,
        )
        Plan.objects.create(
            name="Semaglutide financed (6 payments)",
            product=products["medication"],
            price_cents=14900,
            interval=BillingInterval.MONTH,
            financed_cycles=6,
        )
        now = timezone.now()
        for patient, status in zip(patients, SubscriptionStatus.values, strict=False):
            subscription = Subscription.objects.create(
                patient=patient,
                plan=monthly,
                started_at=now,
                next_billing_at=now + timedelta(days=30),
                payment_method=patient.payment_methods.first(),
            )
            reason = f"Demo: {status.lower()}"
            if status == SubscriptionStatus.PAUSED:
                lifecycle.pause_subscription(subscription=subscription, actor=DEMO, reason=reason)
            elif status == SubscriptionStatus.CANCELLED:
                lifecycle.cancel_subscription(subscription=subscription, actor=DEMO, reason=reason)
            elif status == SubscriptionStatus.EXPIRED:
                lifecycle.expire_subscription(subscription=subscription, actor=DEMO, reason=reason)

    def _print_logins(self) -> None:
        self.stdout.write("\nDemo logins (local demo only):")
        for username, password, group, _ in STAFF:
            self.stdout.write(f"  {username:<8} / {password:<18} {group or 'superuser'}")
