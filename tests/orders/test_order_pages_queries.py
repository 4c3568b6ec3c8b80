"""The order pages cost the same number of SQL queries however much data there is."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.refunds import refund_order

pytestmark = pytest.mark.django_db


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_order_page_does_not_grow_with_payments_or_history(
    paid_order, system, cs_user, admin_client_for
):
    quiet = paid_order("stripe", 3000)
    busy = paid_order("stripe", 9000)
    for _ in range(4):  # four partial refunds: more payments, attempts, history and events
        refund_order(order=busy, actor=system, reason="partial", amount_cents=1000)
    client = admin_client_for(cs_user)

    def page(order) -> str:
        return f"/admin/orders/order/{order.pk}/change/"

    _queries(client, page(quiet))  # warm per-session caches (content types, permissions)
    assert _queries(client, page(busy)) == _queries(client, page(quiet))


def test_the_order_list_does_not_grow_with_the_number_of_orders(
    paid_order, cs_user, admin_client_for
):
    client = admin_client_for(cs_user)
    paid_order("stripe", 1000)
    _queries(client, "/admin/orders/order/")
    few = _queries(client, "/admin/orders/order/")
    for cents in range(1100, 3000, 100):
        paid_order("stripe", cents)
    assert _queries(client, "/admin/orders/order/") == few
