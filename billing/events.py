"""What billing tells the rest of the house (reactions in `emr/reactions.py`)."""

from dataclasses import dataclass

from billing.models import Invoice, PaymentMethod
from emr.kernel.actors import Actor
from orders.models import Order


@dataclass(frozen=True)
class InvoicePaid:
    """A charge of `invoice` succeeded: it is PAID and its order recalculated, the order's row
    still locked by the transaction that recorded the charge."""

    invoice: Invoice
    order: Order
    actor: Actor


@dataclass(frozen=True)
class CardRemoved:
    """Staff removed `card` (it is marked removed, not yet committed): a reaction may refuse,
    which rolls the removal back."""

    card: PaymentMethod
    actor: Actor
