"""Invoice status changes. Callers hold the order's row lock (see orders.services)."""

from django.utils import timezone

from billing.models import Invoice
from billing.states import InvoiceStatus


def set_invoice_status(invoice: Invoice, target: InvoiceStatus) -> Invoice:
    invoice.transitions.check(invoice.status, target)
    invoice.status = target
    now = timezone.now()
    if target == InvoiceStatus.PAID:
        invoice.paid_at = now
    elif target == InvoiceStatus.CANCELLED:
        invoice.cancelled_at = now
    invoice.save(update_fields=["status", "paid_at", "cancelled_at"])
    return invoice
