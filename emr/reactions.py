"""Every cross-app reaction, in one table: when one part of the house changes, what follows.

Read it top to bottom. Each reaction is a domain event (a frozen dataclass the publishing app
defines in its `events.py`) and the functions that answer it, in the order they run. They run
synchronously inside the publisher's transaction (`emr.kernel.events.publish`): they see the
change as it is being made, with the same row locks, and a refusal in any of them rolls the
whole change back. The publisher never imports the apps that react, which is what keeps the
lower layers from importing the higher ones.

The workflow outbox (`emr.workflows.outbox.emit`) is a different thing: events for the clinic's
own automations, delivered after commit by a worker.
"""

from billing.events import CardRemoved, InvoicePaid
from billing.packages import open_packages
from emr.documents import orders_waiting_for
from emr.events import DocumentSigned, IntakeRejected, IntakeSentBack, IntakeSubmitted
from emr.intake import order_kept_status
from emr.kernel import events
from emr.kernel.actors import Actor
from emr.support.escalations import open_escalation
from emr.support.states import EscalationRoute
from integrations.beluga.services import submit_visit_if_needed
from integrations.pharmacy.services import route_order_if_needed
from orders.events import OrderProgressed
from orders.models import Order
from orders.services import change_status, recalculate_status
from orders.states import ACTION_ONLY, OrderStatus
from subscriptions.billing_cycle import refuse_removing_a_card_in_use
from subscriptions.lifecycle import cancel_subscription, withdraw_pending_intakes
from subscriptions.models import Subscription
from subscriptions.recovery import reactivate_after_payment
from subscriptions.states import ENDED_STATUSES, CancellationCause

# --- A paid invoice (billing) ---------------------------------------------------------------


def take_subscription_out_of_recovery(event: InvoicePaid) -> None:
    """The guide's recovery: a paid cycle reactivates its subscription, counts a financed
    payment, runs a scheduled cancellation whose last payment this was, completes a switch."""
    reactivate_after_payment(order=event.order, actor=event.actor)


def open_session_packages(event: InvoicePaid) -> None:
    """A paid PACKAGE item opens its package of sessions, with the expiry its terms set."""
    open_packages(order=event.order, actor=event.actor)


def keep_a_card_a_live_subscription_uses(event: CardRemoved) -> None:
    """A card an active or paused subscription is charged to is not removed: the removal is
    refused and rolled back, with the subscription named."""
    refuse_removing_a_card_in_use(event.card)


# --- An order's calculated status moved (orders) --------------------------------------------


def request_telehealth_visit(event: OrderProgressed) -> None:
    """AWAITING_SCRIPT: the prescriber needs a Beluga visit (sent after commit)."""
    if event.order.status == OrderStatus.AWAITING_SCRIPT:
        submit_visit_if_needed(order=event.order, actor=event.actor)


def send_to_pharmacy(event: OrderProgressed) -> None:
    """AWAITING_FULFILLMENT: the prescription is written; the product's pharmacy fills it."""
    if event.order.status == OrderStatus.AWAITING_FULFILLMENT:
        route_order_if_needed(order=event.order, actor=event.actor)


# --- An intake submitted, or reviewed by medical staff (the chart) --------------------------


def move_order_on_with_intake(event: IntakeSubmitted) -> None:
    """The order is recalculated: with its intake in, it may await its script."""
    if event.intake.order is not None:
        recalculate_status(order=event.intake.order, actor=event.actor, reason="Intake submitted")


def reject_order_of_intake(event: IntakeRejected) -> None:
    """The order is REJECTED (its unpaid invoice closes; nothing paid is refunded). An order a
    staff action already closed keeps its status. One that went too far to be rejected (shipped,
    completed) keeps its status too, and medical operations get an escalation to decide what
    follows (a return, a refund): the rejection itself still stands."""
    order = event.intake.order
    if order is None or order.status in ACTION_ONLY:
        return
    if order.transitions.can(order.status, OrderStatus.REJECTED):
        change_status(
            order=order, target=OrderStatus.REJECTED, actor=event.actor, reason="Intake rejected"
        )
        return
    open_escalation(
        actor=Actor.system("intake-review", door=event.actor.door),
        order=order,
        route=EscalationRoute.MEDICAL,
        patient_reason=f"Intake rejected by {event.actor.label}: {event.note}",
        message=order_kept_status(event.intake),
    )


def cancel_subscription_of_intake(event: IntakeRejected) -> None:
    """The linked subscription is CANCELLED with its cancellation workflow; a financed balance
    does not block it (a medical decision)."""
    order = event.intake.order
    if order is None or order.subscription_id is None:
        return
    subscription = Subscription.objects.get(pk=order.subscription_id)
    if subscription.status in ENDED_STATUSES:
        return
    cancel_subscription(
        subscription=subscription,
        actor=event.actor,
        reason=f"Intake rejected: {event.note}"[:500],
        cause=CancellationCause.INTAKE_REJECTED,
    )


def withdraw_pending_intakes_of_order(event: IntakeRejected) -> None:
    """Unanswered intake forms of an order that will not go ahead are withdrawn."""
    order = event.intake.order
    if order is not None:
        withdraw_pending_intakes(orders=Order.objects.filter(pk=order.pk))


def wait_for_corrected_intake(event: IntakeSentBack) -> None:
    """The order is recalculated: it waits for the intake again. Nothing financial changes."""
    if event.intake.order is not None:
        recalculate_status(
            order=event.intake.order, actor=event.actor, reason="Intake needs correction"
        )


# --- A document signed (the chart) -----------------------------------------------------------


def move_orders_on_with_signature(event: DocumentSigned) -> None:
    """The patient's open orders that need this document are recalculated: with everything
    signed (and the intake in), they may move on."""
    template = event.signed.version.template
    for order in orders_waiting_for(event.signed):
        recalculate_status(order=order, actor=event.actor, reason=f"{template.name} signed")


# --- The table ------------------------------------------------------------------------------

REACTIONS = {
    InvoicePaid: [take_subscription_out_of_recovery, open_session_packages],
    CardRemoved: [keep_a_card_a_live_subscription_uses],
    OrderProgressed: [request_telehealth_visit, send_to_pharmacy],
    IntakeRejected: [
        reject_order_of_intake,
        cancel_subscription_of_intake,
        withdraw_pending_intakes_of_order,
    ],
    IntakeSentBack: [wait_for_corrected_intake],
    IntakeSubmitted: [move_order_on_with_intake],
    DocumentSigned: [move_orders_on_with_signature],
}


def install() -> None:
    events.install(REACTIONS)
