"""The in-progress order status, derived from facts (clinic-platform-notes.md, "Orders").

`derive_status` is pure so that every combination of facts can be checked without a database;
`orders.services.recalculate_status` gathers the facts and applies the result.
"""

from dataclasses import dataclass

from orders.states import OrderStatus


@dataclass(frozen=True)
class OrderFacts:
    paid: bool = False
    payment_failed: bool = False  # a charge failed or no usable card exists (payment recovery)
    intake_required: bool = False
    intake_complete: bool = False
    documents_required: bool = False  # a product needs a consent, disclaimer or terms signed
    documents_signed: bool = False
    labs_required: bool = False
    requisition_sent: bool = False
    results_received: bool = False
    prescription_required: bool = False
    prescription_written: bool = False
    sent_to_pharmacy: bool = False
    shipped: bool = False
    completed: bool = False


def derive_status(facts: OrderFacts) -> OrderStatus:
    if not facts.paid:
        return OrderStatus.AWAITING_PAYMENT if facts.payment_failed else OrderStatus.PENDING
    if facts.completed:
        return OrderStatus.COMPLETED
    if facts.shipped:
        return OrderStatus.SHIPPED
    if facts.sent_to_pharmacy:
        return OrderStatus.AWAITING_SHIPMENT
    if facts.intake_required and not facts.intake_complete:
        return OrderStatus.AWAITING_REQUIREMENTS
    if facts.documents_required and not facts.documents_signed:
        return OrderStatus.AWAITING_REQUIREMENTS
    if facts.labs_required and not facts.requisition_sent:
        return OrderStatus.AWAITING_REQUISITION
    if facts.labs_required and not facts.results_received:
        return OrderStatus.AWAITING_RESULTS
    if facts.prescription_required and not facts.prescription_written:
        return OrderStatus.AWAITING_SCRIPT
    if facts.prescription_written:
        return OrderStatus.AWAITING_FULFILLMENT
    # Paid, and nothing clinical to wait for.
    return OrderStatus.PROCESSING
