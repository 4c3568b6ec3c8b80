"""Starting a subscription: create it with its first order, then charge the first payment.

The subscription is created PAUSED, waiting for its first payment, so that nothing bills it
while the charge is in flight (or if its outcome is lost: it activates when billing reconciles
the payment). The successful charge activates it (`subscription.created`, through
`recovery.reactivate_after_payment`).

A declined first payment means the subscription never started: it is closed (CANCELLED, cause
NOT_STARTED, no cancellation workflow since the patient had nothing to lose), its unpaid order
and invoice are cancelled, and the FAILED payment stays on record for CS. A clinic does not keep
an active subscription nobody paid for, nor a "subscription" the patient never had.
"""

from django.utils import timezone

from billing.models import PaymentMethod
from billing.payments import active_gateway
from billing.states import Gateway
from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError, InvalidInput, StateConflict
from emr.kernel.services import service_transaction
from emr.models import Patient
from orders.models import Order
from orders.services import change_status
from orders.states import OrderStatus
from subscriptions.cards import is_chargeable
from subscriptions.charging import Outcome, charge_order
from subscriptions.cycles import open_next_cycle
from subscriptions.models import Plan, Subscription
from subscriptions.services import close_subscription, lock_subscription
from subscriptions.states import CancellationCause, SubscriptionStatus

NEVER_STARTED = "First payment failed: the subscription never started"


def start_subscription(
    *, patient: Patient, plan: Plan, payment_method: PaymentMethod, actor: Actor
) -> Subscription:
    """A new subscription, ACTIVE with its first order and invoice paid.

    Raises the charge's error (402 `payment.declined`, 409 `payment.gateway_mismatch`, 502 …)
    when the first payment fails; the subscription is then closed as never started.
    """
    check_plan_available(plan)
    check_card_usable(payment_method, patient=patient)
    subscription = create_awaiting_first_payment(
        patient=patient, plan=plan, payment_method=payment_method, actor=actor
    )
    first_order = first_order_of(subscription)
    attempt = charge_order(
        order=first_order, card=payment_method, actor=actor, reason="First subscription payment"
    )
    if attempt.outcome in {Outcome.PAID, Outcome.ALREADY_HANDLED}:
        return Subscription.objects.select_related("plan").get(pk=subscription.pk)
    if attempt.outcome == Outcome.UNKNOWN:
        # Left PAUSED: it activates when billing learns the charge succeeded.
        raise attempt.error
    close_never_started(subscription, actor=actor, detail=attempt.message)
    raise with_sentence(attempt.error, "No subscription was started.")


def check_plan_available(plan: Plan) -> None:
    if not plan.active or not plan.product.active:
        raise InvalidInput(
            f"{plan.name} is no longer offered: choose an active plan.", code="plan.inactive"
        )


def check_card_usable(card: PaymentMethod, *, patient: Patient) -> None:
    if card.patient_id != patient.pk or card.removed_at is not None:
        raise InvalidInput(
            "That saved card does not belong to this patient (or was removed).",
            code="payment.card_not_found",
        )
    gateway = active_gateway()
    if not is_chargeable(card, patient_id=patient.pk, gateway=gateway):
        raise StateConflict(
            f"This card is saved in the {card.get_gateway_display()} vault, but the clinic now "
            f"charges through {Gateway(gateway).label}: no compatible payment method. Save the "
            "card again with the active gateway.",
            code="payment.gateway_mismatch",
        )


def create_awaiting_first_payment(
    *, patient: Patient, plan: Plan, payment_method: PaymentMethod, actor: Actor
) -> Subscription:
    """The subscription (PAUSED, awaiting its first payment) and its first order, committed."""
    with (
        service_transaction(actor, reason=f"Subscription to {plan.name} started"),
    ):
        now = timezone.now()
        subscription = Subscription.objects.create(
            patient=patient,
            plan=plan,
            payment_method=payment_method,
            status=SubscriptionStatus.PAUSED,
            awaiting_payment=True,
            started_at=now,
        )
        open_next_cycle(subscription, period_start=now, actor=actor)
    return subscription


def first_order_of(subscription: Subscription) -> Order:
    return (
        Order.objects.select_related("invoice")
        .filter(subscription_cycle__subscription=subscription, subscription_cycle__number=1)
        .get()
    )


def close_never_started(subscription: Subscription, *, actor: Actor, detail: str) -> None:
    """Its first payment failed: close the unpaid first order and the subscription."""
    reason = f"{NEVER_STARTED}. {detail}".strip()[:500]
    with service_transaction(actor, reason=reason):
        order = first_order_of(subscription)
        if order.status in {OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT}:
            change_status(order=order, target=OrderStatus.CANCELLED, actor=actor, reason=reason)
        subscription = lock_subscription(subscription.pk)
        if subscription.status != SubscriptionStatus.CANCELLED:
            close_subscription(subscription, cause=CancellationCause.NOT_STARTED, actor=actor)


def with_sentence(error: DomainError, sentence: str) -> DomainError:
    """The same refusal (type, code, HTTP status) with one more sentence for the reader."""
    return type(error)(f"{error.detail} {sentence}", code=error.code)
