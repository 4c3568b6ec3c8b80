"""The billing admin's timelines: one list per order, patient and subscription, newest first,
merging history diffs (in words and money), workflow events and gateway calls."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import trail
from audit.sources import order_scope, patient_scope

pytestmark = pytest.mark.django_db


def _order_trail(order, **filters):
    return trail.page(trail.TrailFilter(scope=order_scope(order), **filters))[1]


def _said(entry) -> str:
    changes = ", ".join(f"{c.field}: {c.old} → {c.new}" for c in entry.worded)
    return f"{entry.kind} | {entry.record} | {entry.action} | {changes}"


def test_a_refunded_orders_timeline_holds_its_history_events_and_gateway_calls_in_order(
    refunded_order,
):
    entries = _order_trail(refunded_order)
    number, invoice = refunded_order.number, refunded_order.invoice.number
    charge, refund = refunded_order.invoice.payments.order_by("id")
    attempt = refunded_order.refund_attempts.get()
    said = [_said(entry) for entry in entries]

    expected_newest_first = [
        f"workflow event | order {number} | event order.refunded | ",
        f"change | order {number} | changed | status: Processing → Refunded",
        f"change | invoice {invoice} | changed | status: Paid → Cancelled",
        f"gateway call | refund payment #{refund.pk} on {invoice} | "
        "refund of $120.00 through Stripe: refunded | ",
        f"refund attempt | refund attempt #{attempt.pk} on {number} | "
        "refund of $120.00 requested through Stripe: succeeded | ",
        f"change | order {number} | changed | status: Pending → Processing",
        f"change | invoice {invoice} | changed | status: Sent → Paid",
        f"gateway call | charge payment #{charge.pk} on {invoice} | "
        "charge of $120.00 through Stripe: succeeded | ",
        f"workflow event | order {number} | event order.created | ",
        f"change | order {number} | created | status: — → Pending, total: — → $120.00, "
        "refunded: — → $0.00",
    ]
    positions = []
    for expected in expected_newest_first:
        matches = [i for i, line in enumerate(said) if line.startswith(expected)]
        assert matches, f"missing: {expected}\n" + "\n".join(said)
        positions.append(matches[0])
    assert positions == sorted(positions), "\n".join(said)
    assert [entry.at for entry in entries] == sorted((e.at for e in entries), reverse=True)

    call = next(entry for entry in entries if entry.action.startswith("refund of"))
    assert (call.who, call.door, call.reason) == (
        "system job: billing-tests",
        "shell",
        "Patient cancelled within the window",
    )
    assert f"gateway transaction {refund.transaction_id}" in call.details


def test_filters_narrow_the_timeline(refunded_order):
    everything = _order_trail(refunded_order)

    status_changes = _order_trail(refunded_order, field="status")
    assert 0 < len(status_changes) < len(everything)
    assert all("status" in [change.field for change in entry.worded] for entry in status_changes)
    gateway_calls = _order_trail(refunded_order, kind="gateway call")
    assert [entry.action.split(" of ")[0] for entry in gateway_calls] == ["refund", "charge"]
    refunded_events = _order_trail(refunded_order, event_type="order.refunded")
    assert [entry.action for entry in refunded_events] == ["event order.refunded"]
    assert _order_trail(refunded_order, door="portal") == []
    assert len(_order_trail(refunded_order, actor="billing-tests")) < len(everything)
    day = refunded_order.created_at.date()
    assert len(_order_trail(refunded_order, since=day, until=day)) == len(everything)
    assert _order_trail(refunded_order, until=day.replace(year=day.year - 1)) == []


def test_a_patients_timeline_holds_their_chart_and_every_order(refunded_order, paid_order):
    other = paid_order("stripe", 5000)  # another patient's order stays out
    entries = trail.page(trail.TrailFilter(scope=patient_scope(refunded_order.patient)))[1]
    records = {entry.record for entry in entries}
    assert f"order {refunded_order.number}" in records
    assert f"order {other.number}" not in records
    assert any(record.startswith(f"patient #{refunded_order.patient_id} ") for record in records)
    assert any(record.startswith("card ") for record in records)


def test_the_timeline_page_costs_the_same_queries_however_long_the_trail(
    refunded_order, billing_admin, admin_client_for
):
    client = admin_client_for(billing_admin)
    url = f"/audit/orders/{refunded_order.number}/"
    client.get(url)  # content types and the session are cached from here on

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = queries()
    # Four hundred older changes of the order and its invoice: eight pages more of trail.
    for record in [refunded_order, refunded_order.invoice]:
        history = type(record).history.model
        first = record.history.earliest("history_id")
        copied = {"history_id", "history_type", "history_date"}
        columns = [f.attname for f in history._meta.concrete_fields if f.attname not in copied]
        history.objects.bulk_create(
            history(
                **{column: getattr(first, column) for column in columns},
                history_type="~",
                history_date=first.history_date - timedelta(days=400, seconds=step),
            )
            for step in range(200)
        )
    assert trail.trail(trail.TrailFilter(scope=order_scope(refunded_order))).count() > 400

    assert queries() == small
