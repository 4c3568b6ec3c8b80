"""Which saved card a subscription is charged to.

A card belongs to one gateway's vault and can only be charged there, so a subscription can be
charged only with a card of the clinic's active gateway. The subscription's own card comes first;
if it cannot be used (removed, or saved with the other gateway), the patient's default usable
card is used instead, so a patient who saved a new card in the portal is charged with it.
"""

from billing.models import PaymentMethod
from billing.payments import active_gateway
from subscriptions.models import Subscription


def billing_card_for(subscription: Subscription) -> PaymentMethod | None:
    """The card to charge now, or None: no compatible payment method (NEEDS_PAYMENT_METHOD)."""
    gateway = active_gateway()
    card = subscription.payment_method
    if card is not None and is_chargeable(
        card, patient_id=subscription.patient_id, gateway=gateway
    ):
        return card
    return (
        PaymentMethod.objects.filter(
            patient_id=subscription.patient_id, gateway=gateway, removed_at__isnull=True
        )
        .order_by("-is_default", "-created_at", "-id")
        .first()
    )


def is_chargeable(card: PaymentMethod, *, patient_id: int, gateway: str) -> bool:
    return card.patient_id == patient_id and card.removed_at is None and card.gateway == gateway
