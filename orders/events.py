"""What orders tell the rest of the house (reactions in `emr/reactions.py`)."""

from dataclasses import dataclass

from emr.kernel.actors import Actor
from orders.models import Order


@dataclass(frozen=True)
class OrderProgressed:
    """Recalculation moved `order` to a new in-progress status (it is saved and locked)."""

    order: Order
    previous_status: str
    actor: Actor
