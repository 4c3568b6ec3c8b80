"""The "Failed payments" list (clinic-platform-notes.md, "Payment recovery": where failed
payments show): every order waiting for payment, with its recovery state.

One query for the whole page: patient, invoice, subscription and plan are joined in, and the
latest gateway failure message is a subquery.
"""

from django.db.models import OuterRef, QuerySet, Subquery

from billing.models import Payment
from billing.states import PaymentKind, PaymentStatus
from emr.support.models import FailedPayment
from orders.states import OrderStatus


def failed_payments() -> QuerySet[FailedPayment]:
    # Orders whose one-off charge failed wait for payment too (with no recovery status): they
    # are failed payments CS must see as well, so the list is not limited to subscriptions.
    latest_failure = (
        Payment.objects.filter(
            invoice__order=OuterRef("pk"), kind=PaymentKind.CHARGE, status=PaymentStatus.FAILED
        )
        .order_by("-created_at", "-id")
        .values("failure_message")[:1]
    )
    return (
        FailedPayment.objects.filter(status=OrderStatus.AWAITING_PAYMENT)
        .select_related("patient", "invoice", "subscription__plan")
        .annotate(last_failure=Subquery(latest_failure))
    )
