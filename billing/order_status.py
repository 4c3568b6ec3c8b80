"""The order tools' one status change: REFUNDED runs the refund flow (money first, then the
status); every other target is a staff move. Admin, API and tasks all come through here."""

from billing.refunds import refund_order
from emr.kernel.actors import Actor
from orders.models import Order
from orders.services import change_status
from orders.states import OrderStatus


def transition_order(*, order: Order, target: str, actor: Actor, reason: str) -> Order:
    if target == OrderStatus.REFUNDED:
        refund_order(order=order, actor=actor, reason=reason)
        return Order.objects.get(pk=order.pk)
    return change_status(order=order, target=target, actor=actor, reason=reason)
