"""The order tools' one status change: REFUNDED runs the refund flow (money first, then the
status); every other target is a staff move. Admin, API and tasks all come through here."""

from billing.refunds import refund_order
from emr.kernel.actors import Actor
from orders.models import Order
from orders.services import change_status
from orders.states import OrderStatus


def transition_order(*, order: Order, target: str, actor: Actor, reason: str) -> Order:
    # A refunded order answers `order.locked` to REFUNDED as to every target (the staff move
    # says so under the order's lock), not the refund flow's "nothing left to refund".
    if target == OrderStatus.REFUNDED and not Order.objects.get(pk=order.pk).is_locked:
        refund_order(order=order, actor=actor, reason=reason)
        return Order.objects.get(pk=order.pk)
    return change_status(order=order, target=target, actor=actor, reason=reason)
