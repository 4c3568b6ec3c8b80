"""An order's audit timeline: the order, its items, its invoice and its payments."""

from audit.timeline import TimelineEntry, entries_for, newest_first
from billing.models import Invoice, Payment
from orders.models import Order, OrderItem


def order_timeline(order: Order) -> list[TimelineEntry]:
    invoice_ids = list(Invoice.objects.filter(order=order).values_list("id", flat=True))
    return newest_first(
        entries_for(Order.history.filter(id=order.pk), label=lambda row: f"order {row.number}"),
        entries_for(
            OrderItem.history.filter(order_id=order.pk),
            label=lambda row: f"item {row.description}",
        ),
        entries_for(
            Invoice.history.filter(id__in=invoice_ids), label=lambda row: f"invoice {row.number}"
        ),
        entries_for(
            Payment.history.filter(invoice_id__in=invoice_ids),
            label=lambda row: f"{row.kind.lower()} payment #{row.id}",
        ),
    )
