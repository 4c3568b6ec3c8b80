"""Demo data for `make run`: staff logins, and one patient per flow of the refunds and
cancellations guide, named after the story their records tell ("Rita Refunded"), so each action
the guide describes can be tried on a record whose history makes sense.

Every record is reached the way production reaches it, never by writing a status: orders are
created and charged through the configured gateways (the local ones `make run` starts), intake
forms sent and submitted, refunds made through the refund flow, subscriptions started, renewed
and switched through their services. The partners' side (the prescriber's script, DispensePro's
shipment, NMI failing a refund) is played on their local fakes and reaches the app as their
webhooks do (`emr/management/demo_partners.py`). Idempotent: once the demo is there, a run only
prints the logins and the stories.
"""

from contextlib import suppress
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError

from billing import payments, policies
from billing.models import RefundPolicy
from billing.refunds import refund_order
from billing.states import Gateway
from emr.intake import reject_intake, send_intake_form, submit_intake
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import IntegrationFailed
from emr.management import demo_partners
from emr.models import IntakeResponse, Patient
from emr.staff_groups import BILLING_ADMIN, CS, MEDICAL_OPS
from integrations.beluga import services as beluga
from integrations.beluga.models import BelugaVisit
from integrations.gateways import registry
from integrations.pharmacy import services as pharmacy
from integrations.pharmacy.models import PharmacyOrder, ProductPharmacyRoute
from integrations.pharmacy.states import PharmacyType
from orders.models import Order, Product, ProductKind
from orders.services import OrderLine, change_status, create_order, record_fact
from orders.states import OrderStatus
from subscriptions import lifecycle
from subscriptions.billing_cycle import first_order_of, renew_subscription, start_subscription
from subscriptions.models import Plan, Subscription
from subscriptions.states import BillingInterval, SwitchTiming
from subscriptions.switching import switch_plan

# Demo logins for a local install only; printed at the end of every run.
STAFF = [
    ("admin", "demo-admin-pass", None, True),
    ("cs", "demo-cs-pass", CS, False),
    ("billing", "demo-billing-pass", BILLING_ADMIN, False),
    ("medops", "demo-medops-pass", MEDICAL_OPS, False),
]


@dataclass(frozen=True)
class Story:
    first_name: str
    last_name: str
    shows: str  # what CS can try on this patient's records

    @property
    def email(self) -> str:
        return f"{self.first_name}.{self.last_name}@example.com".lower()


# Fictional people (example.com addresses, 555-01xx numbers); no real patient data.
STORIES = {
    "paula": Story("Paula", "Pending", "unpaid order (PENDING): cancel closes its invoice"),
    "dan": Story("Dan", "Declined", "card declined: AWAITING_PAYMENT, invoice still open"),
    "pete": Story("Pete", "Paid", "paid consultation (PROCESSING): refund or cancel"),
    "ivy": Story("Ivy", "Intake", "intake form sent, not answered yet (AWAITING_REQUIREMENTS)"),
    "lara": Story("Lara", "Labs", "lab panel waiting for its requisition"),
    "rhea": Story("Rhea", "Results", "requisition sent, waiting for lab results"),
    "vera": Story("Vera", "Visit", "open Beluga visit (AWAITING_SCRIPT): cancel the visit"),
    "carmen": Story(
        "Carmen", "Cancelled-Visit", "Beluga visit cancelled, order still open (as expected)"
    ),
    "fran": Story(
        "Fran", "Fulfilment", "script written; own-pharmacy order not sent yet: record it sent"
    ),
    "owen": Story(
        "Owen", "Own-Pharmacy", "sent to the own pharmacy: no void, CS verifies with them"
    ),
    "dora": Story("Dora", "Dispensepro", "at DispensePro, not shipped: void the pharmacy order"),
    "sam": Story(
        "Sam", "Shipped", "subscription order shipped by DispensePro: too late to cancel or void"
    ),
    "della": Story("Della", "Delivered", "shipped and delivered (COMPLETED)"),
    "rory": Story("Rory", "Returned", "shipped, then returned (RETURNED): refund if due"),
    "vic": Story(
        "Vic", "Voided", "pharmacy order voided, order cancelled; still paid: refund separately"
    ),
    "carl": Story("Carl", "Cancelled", "unpaid order cancelled: created by mistake"),
    "rex": Story(
        "Rex",
        "Rejected",
        "intake rejected: order REJECTED, subscription and visit cancelled, still paid",
    ),
    "rita": Story("Rita", "Refunded", "refunded through Stripe: REFUNDED and locked"),
    "fern": Story(
        "Fern", "Failed-Refund", "NMI refund failed at the gateway: still paid, escalate"
    ),
    "nina": Story("Nina", "Nmi", "paid through NMI, Stripe active now: refunds go back to NMI"),
    "mia": Story("Mia", "Member", "active monthly membership: cancel or pause"),
    "paul": Story("Paul", "Paused", "membership paused by staff: resume"),
    "cleo": Story("Cleo", "Cancelled", "membership cancelled at her request: cannot reactivate"),
    "eve": Story("Eve", "Expired", "one-month plan ended (EXPIRED)"),
    "rob": Story("Rob", "Recovery", "renewal found no Stripe card: paused, recovery invoice open"),
    "fiona": Story("Fiona", "Financed", "financed plan, 5 of 6 payments left: cannot cancel yet"),
    "sid": Story("Sid", "Scheduled", "financed plan with a scheduled cancellation: withdraw it"),
    "skye": Story(
        "Skye", "Switch-Pending", "switch to monthly waits for the final financed payment"
    ),
    "sasha": Story("Sasha", "Switched", "switched plans: payoff and replacement billed separately"),
}
MARKER_EMAIL = STORIES["paula"].email
# Test card tokens the local gateway servers understand (never card numbers).
CARDS = {Gateway.STRIPE: "pm_card_visa", Gateway.NMI: "nmi_tok_visa"}
DECLINED_CARD = "pm_card_chargeDeclined"
INTAKE = "Weight care intake"
PRESCRIBER = "Dr. Demo Prescriber"
DEMO = Actor.system("seed-demo", door=Door.COMMAND)


class Command(BaseCommand):
    help = "Create demo staff and one patient per refund/cancellation story (idempotent)."

    def handle(self, *args, **options):
        self._staff()
        if Patient.objects.filter(email=MARKER_EMAIL).exists():
            self.stdout.write(
                "Demo data already present. The local gateway and partner servers start empty "
                "on each `make run`, so refunds and voids of these records reach servers that "
                "no longer know them; for a fresh demo remove var/emr.sqlite3 (or the database)."
            )
        else:
            self._require_partners()
            self._data()
        self._print_stories()
        self._print_logins()

    def _staff(self) -> None:
        for username, password, group, superuser in STAFF:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "is_staff": True,
                    "is_superuser": superuser,
                    "email": f"{username}@example.com",
                },
            )
            if created:
                user.set_password(password)
                user.save()
            if group:
                user.groups.add(Group.objects.get(name=group))

    def _require_partners(self) -> None:
        missing = [Gateway(g).label for g in Gateway.values if not registry.is_configured(g)]
        if not beluga.is_configured():
            missing.append("Beluga")
        if not (settings.DISPENSEPRO_API_URL and settings.DISPENSEPRO_API_KEY):
            missing.append("DispensePro")
        if missing:
            raise CommandError(
                f"The demo goes through the gateways and partners, but {', '.join(missing)} "
                "is not configured. Run `make run`, which starts local servers for them."
            )

    def _data(self) -> None:
        self.products = self._products()
        self.patients = {
            key: Patient.objects.create(
                first_name=story.first_name,
                last_name=story.last_name,
                email=story.email,
                phone=f"555-01{number:02d}",
            )
            for number, (key, story) in enumerate(STORIES.items())
        }
        self._use_gateway(Gateway.STRIPE)
        for key, patient in self.patients.items():
            if key != "rob":  # Rob's only card is in the NMI vault
                payments.save_card(
                    patient=patient, gateway=Gateway.STRIPE, token=CARDS[Gateway.STRIPE], actor=DEMO
                )
        self._orders()
        self._pharmacy_orders()
        self._refunds()
        self._subscriptions()
        self._use_gateway(Gateway.STRIPE)

    def _policy(self, name: str, rules: dict) -> RefundPolicy:
        return policies.create_policy(name=name, rules=rules, actor=DEMO)

    def _products(self) -> dict[str, Product]:
        medication_terms = self._policy(
            "Medication terms", {"additional_terms": "Non-refundable once sent to the pharmacy."}
        )
        specs = {
            "consult": dict(
                name="Telehealth consultation",
                kind=ProductKind.SERVICE,
                price_cents=7500,
                refund_policy=self._policy("Consultation terms", {"refund_window_days": 14}),
            ),
            "package": dict(
                name="6-session coaching package",
                kind=ProductKind.PACKAGE,
                price_cents=45000,
                sessions=6,
                refund_policy=self._policy(
                    "Coaching package terms",
                    {
                        "refund_window_days": 90,
                        "partial_refunds": "pro_rata_unused",
                        "package_expires_days": 90,
                        "acknowledgement_required": True,
                    },
                ),
            ),
            "membership": dict(
                name="Weight care membership",
                kind=ProductKind.MEMBERSHIP,
                price_cents=9900,
                refund_policy=self._policy("Membership terms", {"cancel_notice_days": 30}),
            ),
            "program": dict(
                name="Weight care program (treatment up front)",
                kind=ProductKind.PACKAGE,
                price_cents=89400,
                refund_policy=self._policy(
                    "Program terms",
                    {
                        "additional_terms": (
                            "Financed over 6 monthly payments; the balance remains due."
                        )
                    },
                ),
            ),
            "semaglutide": dict(
                name="Semaglutide 4-week supply",
                kind=ProductKind.MEDICATION,
                price_cents=29900,
                requires_intake=True,
                requires_prescription=True,
                refund_policy=medication_terms,
            ),
            "tirzepatide": dict(
                name="Tirzepatide 4-week supply (own pharmacy)",
                kind=ProductKind.MEDICATION,
                price_cents=39900,
                requires_intake=True,
                requires_prescription=True,
                refund_policy=medication_terms,
            ),
            "labs": dict(
                name="Metabolic lab panel",
                kind=ProductKind.SERVICE,
                price_cents=12000,
                requires_labs=True,
            ),
        }
        products = {key: Product.objects.create(**spec) for key, spec in specs.items()}
        for key, pharmacy_type in [
            ("semaglutide", PharmacyType.DISPENSE_PRO),
            ("tirzepatide", PharmacyType.OWN),
        ]:
            ProductPharmacyRoute.objects.create(product=products[key], pharmacy=pharmacy_type)
        # What the prescriber writes for each medication.
        self.prescribed = {
            products["semaglutide"].pk: "Semaglutide 0.25 mg weekly injection",
            products["tirzepatide"].pk: "Tirzepatide 2.5 mg weekly injection",
        }
        return products

    # --- Orders ---------------------------------------------------------------------------

    def _orders(self) -> None:
        self._order("paula", "consult")
        declined = self._order("dan", "consult")
        with suppress(payments.PaymentRequired):  # the decline is the story
            payments.charge_invoice(
                invoice=declined.invoice,
                one_off=payments.OneOffCard(Gateway.STRIPE, DECLINED_CARD),
                actor=DEMO,
            )
        self._expect(declined, OrderStatus.AWAITING_PAYMENT)
        self._expect(self._paid("pete", "consult"), OrderStatus.PROCESSING)
        unanswered = self._paid("ivy", "semaglutide")
        send_intake_form(order=unanswered, questionnaire=INTAKE, actor=DEMO)
        self._expect(unanswered, OrderStatus.AWAITING_REQUIREMENTS)
        self._expect(self._paid("lara", "labs"), OrderStatus.AWAITING_REQUISITION)
        results = self._paid("rhea", "labs")
        record_fact(
            order=results, fact="lab_requisition_sent", actor=DEMO, reason="Requisition faxed"
        )
        self._expect(results, OrderStatus.AWAITING_RESULTS)
        self._expect(
            self._awaiting_script(self._paid("vera", "semaglutide")).order,
            OrderStatus.AWAITING_SCRIPT,
        )
        visit = self._awaiting_script(self._paid("carmen", "semaglutide"))
        beluga.cancel_visit(
            visit=visit, actor=DEMO, reason="Patient wants to wait; the order is kept open"
        )
        self._expect(visit.order, OrderStatus.AWAITING_SCRIPT)
        unpaid = self._order("carl", "package")
        change_status(
            order=unpaid, target=OrderStatus.CANCELLED, actor=DEMO, reason="Created by mistake"
        )

    def _pharmacy_orders(self) -> None:
        self._expect(
            self._prescribed(self._paid("fran", "tirzepatide")).order,
            OrderStatus.AWAITING_FULFILLMENT,
        )
        self._expect(
            self._at_pharmacy(self._paid("owen", "tirzepatide")).order,
            OrderStatus.AWAITING_SHIPMENT,
        )
        self._expect(
            self._at_pharmacy(self._paid("dora", "semaglutide")).order,
            OrderStatus.AWAITING_SHIPMENT,
        )
        delivered = self._shipped(self._paid("della", "semaglutide"))
        change_status(
            order=delivered,
            target=OrderStatus.COMPLETED,
            actor=DEMO,
            reason="Carrier confirmed delivery",
        )
        returned = self._shipped(self._paid("rory", "semaglutide"))
        change_status(
            order=returned,
            target=OrderStatus.RETURNED,
            actor=DEMO,
            reason="Parcel refused by the patient and returned to the pharmacy",
        )
        voided = self._at_pharmacy(self._paid("vic", "semaglutide"))
        reason = "Patient cancelled before shipment"
        pharmacy.void_pharmacy_order(pharmacy_order=voided, actor=DEMO, reason=reason)
        change_status(order=voided.order, target=OrderStatus.CANCELLED, actor=DEMO, reason=reason)

    def _refunds(self) -> None:
        refunded = self._paid("rita", "package")
        refund_order(order=refunded, actor=DEMO, reason="Changed her mind within the policy window")
        self._expect(refunded, OrderStatus.REFUNDED)
        failed = self._paid("fern", "package", gateway=Gateway.NMI)
        demo_partners.nmi_fails_next_refund()
        with suppress(IntegrationFailed):  # the failure is the story
            refund_order(order=failed, actor=DEMO, reason="Moving away before the first session")
        self._expect(failed, OrderStatus.PROCESSING)
        self._paid("nina", "consult", gateway=Gateway.NMI)

    def _order(self, key: str, product: str) -> Order:
        return create_order(
            patient=self.patients[key],
            lines=[OrderLine(self.products[product], 1)],
            actor=DEMO,
            reason=f"Demo: {STORIES[key].shows}",
        )

    def _paid(self, key: str, product: str, *, gateway: str = Gateway.STRIPE) -> Order:
        """An order charged to the patient's saved Stripe card, or a one-off NMI card; terms
        that must be accepted first were read to the patient in the clinic."""
        order = self._order(key, product)
        if policies.unacknowledged_versions(order):
            policies.acknowledge_order(order=order, channel="in_person", actor=DEMO)
        if gateway == Gateway.STRIPE:
            card = self.patients[key].payment_methods.get(is_default=True)
            payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=DEMO)
        else:
            self._use_gateway(gateway)
            payments.charge_invoice(
                invoice=order.invoice,
                one_off=payments.OneOffCard(gateway, CARDS[gateway]),
                actor=DEMO,
            )
            self._use_gateway(Gateway.STRIPE)
        return Order.objects.get(pk=order.pk)

    # --- The clinical path: intake, Beluga visit, prescription, pharmacy, shipment ---------

    def _awaiting_script(self, order: Order) -> BelugaVisit:
        """The patient answers the intake; the visit it asks for is submitted to Beluga."""
        intake = send_intake_form(order=order, questionnaire=INTAKE, actor=DEMO)
        submit_intake(intake=intake, actor=DEMO)
        visit = BelugaVisit.objects.get(order=order)
        return beluga.submit_visit(visit=visit, actor=DEMO)

    def _prescribed(self, order: Order) -> PharmacyOrder:
        """Beluga's prescriber writes the script and concludes the visit: the order is routed to
        its product's pharmacy."""
        visit = self._awaiting_script(order)
        demo_partners.prescriber_writes(
            visit, medication=self.prescribed[order.items.get().product_id], prescriber=PRESCRIBER
        )
        demo_partners.prescriber_concludes(visit)
        return pharmacy.open_pharmacy_order(order)

    def _at_pharmacy(self, order: Order) -> PharmacyOrder:
        routed = self._prescribed(order)
        if routed.pharmacy in pharmacy.API_PHARMACIES:
            return pharmacy.send_to_dispensepro(pharmacy_order=routed, actor=DEMO)
        return pharmacy.record_sent_manually(
            pharmacy_order=routed, actor=DEMO, reason="Sent to the clinic's own pharmacy by fax"
        )

    def _shipped(self, order: Order) -> Order:
        sent = self._at_pharmacy(order)
        demo_partners.pharmacy_ships(sent, carrier="UPS", tracking_number=f"1ZDEMO{order.pk:08d}")
        return self._expect(order, OrderStatus.SHIPPED)

    # --- Subscriptions --------------------------------------------------------------------

    def _subscriptions(self) -> None:
        membership, starter, semaglutide, financed = self._plans()
        self._subscribe("mia", membership)
        lifecycle.pause_subscription(
            subscription=self._subscribe("paul", membership),
            actor=DEMO,
            reason="Travelling for two months",
        )
        lifecycle.cancel_subscription(
            subscription=self._subscribe("cleo", membership),
            actor=DEMO,
            reason="Asked to stop; past orders are not refunded",
        )
        ended = self._subscribe("eve", starter)
        # The renewal sweep on her end date (run now: demo time does not pass).
        renew_subscription(subscription_id=ended.pk, due_at=ended.next_billing_at, actor=DEMO)
        self._recovery(membership)
        self._shipped(first_order_of(self._subscribe("sam", semaglutide)))
        rejected = first_order_of(self._subscribe("rex", semaglutide))
        visit = self._awaiting_script(rejected)
        note = "Contraindicated: history of pancreatitis reported in the intake"
        reject_intake(intake=IntakeResponse.objects.get(order=rejected), actor=DEMO, note=note)
        # Rejecting the intake leaves the visit alone: medical ops close it at Beluga too.
        beluga.cancel_visit(visit=visit, actor=DEMO, reason=f"Intake rejected: {note}")
        self._expect(rejected, OrderStatus.REJECTED)
        self._subscribe("fiona", financed)
        lifecycle.schedule_cancellation(
            subscription=self._subscribe("sid", financed),
            actor=DEMO,
            reason="Wants to stop; the remaining financed payments come first",
        )
        switch_plan(
            subscription=self._subscribe("skye", financed),
            plan=membership,
            timing=SwitchTiming.AFTER_RECOVERY,
            actor=DEMO,
            reason="Moves to the monthly membership after the last financed payment",
        )
        switch_plan(
            subscription=self._subscribe("sasha", financed),
            plan=membership,
            timing=SwitchTiming.NOW,
            actor=DEMO,
            reason="Pays off the financed balance to move to the monthly membership now",
        )

    def _plans(self) -> tuple[Plan, Plan, Plan, Plan]:
        product = self.products
        monthly = {"interval": BillingInterval.MONTH}
        return (
            Plan.objects.create(
                name="Weight care membership, monthly",
                product=product["membership"],
                price_cents=9900,
                **monthly,
            ),
            Plan.objects.create(
                name="Weight care starter month (one month only)",
                product=product["membership"],
                price_cents=9900,
                term_cycles=1,
                **monthly,
            ),
            Plan.objects.create(
                name="Semaglutide monthly",
                product=product["semaglutide"],
                price_cents=29900,
                **monthly,
            ),
            Plan.objects.create(
                name="Weight care program, financed (6 monthly payments)",
                product=product["program"],
                price_cents=14900,
                financed_cycles=6,
                **monthly,
            ),
        )

    def _subscribe(self, key: str, plan: Plan) -> Subscription:
        patient = self.patients[key]
        return start_subscription(
            patient=patient,
            plan=plan,
            payment_method=patient.payment_methods.get(is_default=True),
            actor=DEMO,
        )

    def _recovery(self, membership: Plan) -> None:
        """Rob subscribed with a card in the NMI vault; the clinic then moved to Stripe, so his
        renewal finds no compatible card (NEEDS_PAYMENT_METHOD)."""
        patient = self.patients["rob"]
        self._use_gateway(Gateway.NMI)
        card = payments.save_card(
            patient=patient, gateway=Gateway.NMI, token=CARDS[Gateway.NMI], actor=DEMO
        )
        subscription = start_subscription(
            patient=patient, plan=membership, payment_method=card, actor=DEMO
        )
        self._use_gateway(Gateway.STRIPE)
        renew_subscription(
            subscription_id=subscription.pk, due_at=subscription.next_billing_at, actor=DEMO
        )

    # --- Helpers ----------------------------------------------------------------------------

    def _use_gateway(self, gateway: str) -> None:
        if payments.active_gateway() != gateway:
            payments.set_active_gateway(gateway=gateway, actor=DEMO, reason="Demo setup")

    def _expect(self, order: Order, status: str) -> Order:
        """The story's step landed where it should; if a service changed, say so loudly."""
        order = Order.objects.get(pk=order.pk)
        if order.status != status:
            raise CommandError(
                f"The demo story went off script: {order.number} ({order.patient}) is "
                f"{order.status}, not {status}."
            )
        return order

    def _print_stories(self) -> None:
        self.stdout.write("\nDemo patients (search the admin by name), one story each:")
        for story in STORIES.values():
            self.stdout.write(f"  {story.first_name} {story.last_name:<16} {story.shows}")

    def _print_logins(self) -> None:
        self.stdout.write("\nDemo logins (local demo only):")
        for username, password, group, _ in STAFF:
            self.stdout.write(f"  {username:<8} / {password:<18} {group or 'superuser'}")
