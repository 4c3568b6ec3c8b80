"""The "Failed payments" list (clinic-platform-notes.md, "Payment recovery": where failed
payments show): every order waiting for payment, with its recovery state.

One query for the whole page: patient, invoice, subscription and plan are joined in; the
latest gateway failure message and the number of failed charges are subqueries. That number is
counted from the payments themselves: a one-off charge that failed was an attempt too, though
no recovery retry was ever scheduled for it.
"""

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from billing.models import Payment
from billing.states import PaymentKind, PaymentStatus
from emr.support.models import FailedPayment
from orders.states import OrderStatus


def failed_payments() -> QuerySet[FailedPayment]:
    # Orders whose one-off charge failed wait for payment too (with no recovery status): they
    # are failed payments CS must see as well, so the list is not limited to subscriptions.
    failed = Payment.objects.filter(
        invoice__order=OuterRef("pk"), kind=PaymentKind.CHARGE, status=PaymentStatus.FAILED
    )
    latest_failure = failed.order_by("-created_at", "-id").values("failure_message")[:1]
    failed_count = failed.order_by().values("invoice").annotate(n=Count("id")).values("n")
    return (
        FailedPayment.objects.filter(status=OrderStatus.AWAITING_PAYMENT)
        .select_related("patient", "invoice", "subscription__plan")
        .annotate(
            last_failure=Subquery(latest_failure),
            failed_charges=Coalesce(Subquery(failed_count, output_field=IntegerField()), 0),
        )
    )
