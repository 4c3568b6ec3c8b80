"""Pending-intake cleanup when a subscription ends (or its order is rejected).

A PENDING intake is a questionnaire the patient has not answered yet: it holds no answers, and
while it exists the patient is asked (and reminded by `intake.pending` workflows) to fill it
in. When the order it belongs to will not go ahead, that request is withdrawn by deleting the
unanswered form. This is not a rejection (no one reviewed anything), so it is not marked
REJECTED and `intake.rejected` is not emitted; the deletion is kept in the intake's audit
history with who did it and why.

Which orders "will not go ahead": unpaid ones and ones closed by an action (cancelled,
rejected, returned, refunded). A paid order still in progress keeps its intake: cancelling a
subscription does not cancel paid orders already created, and that order still needs the
answers before the clinic can fulfil it.
"""

from django.db.models import Q, QuerySet

from billing.states import InvoiceStatus
from emr.models import IntakeResponse, IntakeStatus
from orders.models import Order
from orders.states import ACTION_ONLY


def withdraw_pending_intakes(*, orders: QuerySet[Order]) -> list[int]:
    """Delete the unanswered intake forms of `orders` that will not go ahead; returns their ids.

    Runs inside the caller's transaction and `acting(...)` block (the history rows carry them).
    """
    not_going_ahead = Q(order__status__in=ACTION_ONLY) | ~Q(
        order__invoice__status=InvoiceStatus.PAID
    )
    withdrawn = []
    pending = IntakeResponse.objects.select_for_update(of=("self",)).filter(
        not_going_ahead, order__in=orders, status=IntakeStatus.PENDING
    )
    for intake in pending:
        withdrawn.append(intake.pk)
        intake.delete()  # one by one, so each deletion gets its history row
    return withdrawn
