"""The refunds dashboard (/audit/dashboard/), read as a billing admin reads it: refunds made
through the real refund service against the gateway servers, their numbers in each chart's CSV,
the failed and pending ones listed, and the page refused to everyone else."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import payments
from billing.refunds import refund_order
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.support.escalations import open_escalation
from tests.factories import PatientFactory, ProductFactory, UserFactory, make_order
from tests.fixtures.gateways import NMI_CARD

pytestmark = pytest.mark.django_db

URL = "/audit/dashboard/"
# Thursday 2026-11-05 and Tuesday 2026-11-24: two Mondays apart (weeks of Nov 2 and Nov 23).
EARLY = datetime(2026, 11, 5, 15, 0, tzinfo=UTC)
LATE = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
RANGE = {"start": "2026-10-26", "end": "2026-11-29"}


def _csv(client, chart: str, **query) -> list[dict]:
    response = client.get(f"{URL}{chart}.csv", {**RANGE, **query})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _numbers(rows: list[dict], column: str) -> dict[str, tuple[int, str]]:
    return {row[column]: (int(row["refunds"]), row["amount"]) for row in rows}


def _two_product_nmi_order(system):
    payments.set_active_gateway(gateway="nmi", actor=system, reason="test setup")
    patient = PatientFactory()
    card = payments.save_card(patient=patient, gateway="nmi", token=NMI_CARD, actor=system)
    order = make_order(
        patient=patient,
        products=[
            ProductFactory(name="Weight-loss consult", price_cents=6000),
            ProductFactory(name="Lab panel", price_cents=2000),
        ],
    )
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
    return order


def test_the_dashboard_adds_up_the_refunds_the_refund_service_made(
    paid_order, gateways, cs_user, billing_admin, admin_client_for, system, time_machine
):
    cs = Actor.staff(cs_user, door=Door.ADMIN)
    admin = Actor.staff(billing_admin, door=Door.API)
    time_machine.move_to(EARLY)
    consult = paid_order("stripe", 12000)
    refund_order(order=consult, actor=cs, reason="Patient changed their mind")
    two_products = _two_product_nmi_order(system)
    refund_order(
        order=two_products, actor=admin, reason=" patient changed their MIND", amount_cents=4000
    )
    time_machine.move_to(LATE)
    duplicate = paid_order("stripe", 3000)
    refund_order(order=duplicate, actor=system, reason="Duplicate charge")
    declined = paid_order("stripe", 7000)
    gateways.stripe.next_refund("failed", failure_reason="expired_or_canceled_card")
    with pytest.raises(DomainError):
        refund_order(order=declined, actor=cs, reason="Duplicate charge")
    settling = paid_order("stripe", 6000)
    gateways.stripe.next_refund("pending")
    refund_order(order=settling, actor=cs, reason="Bank refund")
    escalation = open_escalation(actor=cs, patient_reason="Wants the lab fee back", order=declined)

    client = admin_client_for(billing_admin)
    by_week = _numbers(_csv(client, "by_week"), "Week")
    assert by_week == {
        "Week of Oct 26, 2026": (0, "$0.00"),
        "Week of Nov 2, 2026": (2, "$160.00"),
        "Week of Nov 9, 2026": (0, "$0.00"),
        "Week of Nov 16, 2026": (0, "$0.00"),
        "Week of Nov 23, 2026": (1, "$30.00"),
    }
    assert _numbers(_csv(client, "by_gateway"), "Gateway") == {
        "Stripe": (2, "$150.00"),
        "NMI": (1, "$40.00"),
    }
    assert _numbers(_csv(client, "by_staff"), "Staff member") == {
        "cs-agent": (1, "$120.00"),
        "billing-admin": (1, "$40.00"),
        "System job: billing-tests": (1, "$30.00"),
    }
    # One reason typed two ways is one reason; the declined and the settling refunds moved no
    # money yet, so their reasons do not count.
    assert _numbers(_csv(client, "by_reason"), "Reason") == {
        "Patient changed their mind": (2, "$160.00"),
        "Duplicate charge": (1, "$30.00"),
    }
    by_product = _numbers(_csv(client, "by_product"), "Product")
    assert by_product["Weight-loss consult"] == (1, "$30.00")  # 6000/8000 of the $40.00
    assert by_product["Lab panel"] == (1, "$10.00")

    page = client.get(URL, RANGE)
    assert page.status_code == 200
    html = page.content.decode()
    failed = html.split('id="failed"')[1].split("</section>")[0]
    assert declined.number in failed
    assert "The card has expired or was cancelled." in failed
    assert f"/admin/orders/order/{declined.pk}/change/" in failed
    pending = html.split('id="pending"')[1].split("</section>")[0]
    assert settling.number in pending and "$60.00" in pending
    assert "the gateway is settling it" in pending
    escalations = html.split('id="escalations"')[1].split("</section>")[0]
    assert escalation.number in escalations and "Wants the lab fee back" in escalations
    summary = html.split('id="summary"')[1].split('class="charts"')[0]
    assert "$190.00" in summary and "3 refunds" in summary
    assert "No refund went beyond its policy in this range." in html
    # Each chart is drawn with its title and its labels as text.
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 5
    assert '<title id="chart-by_gateway-title">Refunds by gateway' in html


def test_only_billing_admins_and_superusers_may_open_it(
    client, cs_user, medical_ops, billing_admin, admin_client_for
):
    for user in (cs_user, medical_ops):
        for url in (URL, f"{URL}by_week.csv"):
            refused = admin_client_for(user).get(url)
            assert refused.status_code == 403
            assert "This page is for billing admins" in refused.content.decode()
    signed_out = client.get(URL)
    assert signed_out.status_code == 302
    assert signed_out["Location"] == "/admin/login/?next=/audit/dashboard/"
    superuser = UserFactory(username="root", is_superuser=True)
    assert admin_client_for(superuser).get(URL).status_code == 200
    assert admin_client_for(billing_admin).get(f"{URL}by_week.csv").status_code == 200
    assert admin_client_for(billing_admin).get(f"{URL}nonsense.csv").status_code == 404


def test_a_range_it_cannot_show_says_why_and_shows_the_last_twelve_weeks(
    billing_admin, admin_client_for
):
    page = admin_client_for(billing_admin).get(URL, {"start": "2026-12-01", "end": "2026-11-01"})
    assert page.status_code == 200
    assert "The start date is after the end date." in page.content.decode()
    assert "Showing the last 12 weeks instead." in page.content.decode()


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    return len(captured)


def test_the_page_costs_the_same_queries_for_few_refunds_as_for_many(
    paid_order, gateways, cs_user, billing_admin, admin_client_for
):
    cs = Actor.staff(cs_user, door=Door.ADMIN)
    client = admin_client_for(billing_admin)

    def refunds(n: int, *, first: int) -> None:
        # Each amount once: NMI refuses the same card charged the same amount as a duplicate.
        for index in range(first, first + n):
            order = paid_order("stripe" if index % 2 else "nmi", 1000 + index)
            refund_order(order=order, actor=cs, reason=f"Reason {index}")
        failed = paid_order("stripe", 500)
        gateways.stripe.next_refund("failed", failure_reason="declined")
        with pytest.raises(DomainError):
            refund_order(order=failed, actor=cs, reason="x")
        gateways.stripe.next_refund("pending")
        refund_order(order=paid_order("stripe", 600), actor=cs, reason="y")
        open_escalation(actor=cs, patient_reason="Second opinion", order=failed)

    refunds(1, first=0)
    client.get(URL)  # the first request of a session also writes the session
    few = _queries(client)
    refunds(6, first=1)
    assert _queries(client) == few


def test_a_reason_typed_like_a_formula_stays_text_in_the_csv(
    paid_order, gateways, cs_user, billing_admin, admin_client_for
):
    order = paid_order("stripe", 2500)
    reason = '=HYPERLINK("http://example.test")'
    refund_order(order=order, actor=Actor.staff(cs_user, door=Door.ADMIN), reason=reason)
    today = str(order.created_at.date())
    rows = _csv(admin_client_for(billing_admin), "by_reason", start=today, end=today)
    assert [row["Reason"] for row in rows] == [f"'{reason}"]
