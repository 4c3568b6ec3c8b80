"""The failed payments list: orders waiting for payment, with their recovery state, filterable,
in a query count that does not grow with the list."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.states import OrderStatus, RecoveryStatus

pytestmark = pytest.mark.django_db

LIST = "admin:support_failedpayment_changelist"


def test_the_list_shows_orders_waiting_for_payment(failed_payment, paid_order, cs_user, client_for):
    declined = failed_payment(recovery=RecoveryStatus.CHARGE_FAILED, attempts=2)
    no_card = failed_payment(recovery=RecoveryStatus.NEEDS_PAYMENT_METHOD)
    one_off = failed_payment(recovery=RecoveryStatus.NONE, subscription=False)
    paid = paid_order("stripe")
    assert {declined.status, no_card.status, one_off.status} == {OrderStatus.AWAITING_PAYMENT}

    html = client_for(cs_user).get(reverse(LIST)).content.decode()
    for order in (declined, no_card, one_off):
        assert f">{order.number}</a>" in html
        assert order.invoice.number in html
        assert order.patient.email in html
    assert paid.number not in html
    assert "Charge failed" in html
    assert "Needs a payment method" in html
    assert f">{declined.subscription}</a>" in html
    assert "$50.00" in html
    assert "declined" in html.lower()  # the gateway's last failure message

    def listed(status: str) -> set[str]:
        page = client_for(cs_user).get(reverse(LIST), {"recovery_status": status})
        found = page.content.decode()
        return {o.number for o in (declined, no_card, one_off) if f">{o.number}</a>" in found}

    assert listed("NEEDS_PAYMENT_METHOD") == {no_card.number}
    assert listed("CHARGE_FAILED") == {declined.number}
    assert listed("none") == {one_off.number}


def test_the_query_count_does_not_grow_with_the_list(failed_payment, cs_user, client_for):
    client = client_for(cs_user)
    failed_payment()
    client.get(reverse(LIST))  # warm-up: the session and permission caches
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse(LIST))
        assert response.status_code == 200
        counts.append(len(queries))
        for _ in range(9):
            failed_payment(recovery=RecoveryStatus.NEEDS_PAYMENT_METHOD)
    assert response.content.decode().count('class="field-order_link"') == 10
    assert counts[0] == counts[1], counts


def test_a_role_that_may_not_see_orders_is_refused(db, nobody, client_for):
    refused = client_for(nobody).get(reverse(LIST))
    assert refused.status_code == 403
    assert "Your role may not see orders, invoices and subscriptions" in (refused.content.decode())


def _row(html: str, number: str) -> str:
    return next(row for row in html.split("<tr") if f">{number}</a>" in row)


def test_the_list_counts_the_failed_charges_themselves(failed_payment, cs_user, client_for):
    # A one-off charge declined once: no recovery retry was ever scheduled, but it was tried.
    one_off = failed_payment(recovery=RecoveryStatus.NONE, subscription=False)
    no_card = failed_payment(recovery=RecoveryStatus.NEEDS_PAYMENT_METHOD, attempts=3)

    html = client_for(cs_user).get(reverse(LIST)).content.decode()

    assert "Failed charges" in html
    assert '<td class="field-failed_charge_count">1</td>' in _row(html, one_off.number)
    # Nothing was charged without a card, whatever the retry counter says.
    assert '<td class="field-failed_charge_count">0</td>' in _row(html, no_card.number)
