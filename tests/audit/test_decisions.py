"""What staff saw when they decided: the confirmation page's checklist is stored with the
change, exactly as rendered; when the facts changed before the click, the page is shown again
and nothing is done."""

import re
from html import unescape

import pytest
from django.urls import reverse

from audit import trail
from audit.decisions import decisions_for
from audit.models import DecisionRecord
from audit.sources import order_scope
from billing.refunds import refund_order
from emr.models import IntakeResponse, IntakeStatus
from orders.models import Order
from orders.states import OrderStatus
from tests.admin_tools import SHOWN
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

ROW = re.compile(
    r'<tr class="preflight-(\w+)"><td><strong>\w+</strong></td><td>(.*?)</td><td>(.*?)</td></tr>',
    re.S,
)


def rendered_items(html: str) -> list[dict]:
    """The checklist as the confirmation page shows it."""
    return [
        {"state": state, "label": unescape(label), "sentence": unescape(sentence)}
        for state, label, sentence in ROW.findall(html)
    ]


def stored_items(record: DecisionRecord) -> list[dict]:
    return [{k: item[k] for k in ("state", "label", "sentence")} for item in record.items]


def open_and_confirm(client, url, data):
    page = client.get(url).content.decode()
    signed = SHOWN.search(page).group(1)
    return page, client.post(url, {**data, "shown": signed}, follow=True).content.decode()


def test_a_refund_stores_the_checklist_exactly_as_rendered(paid_order, cs_user, admin_client_for):
    order = paid_order("stripe", 12000)
    url = reverse("admin:orders_order_tool", args=[order.pk, "refund"])

    page, done = open_and_confirm(
        admin_client_for(cs_user), url, {"reason": "Patient changed their mind", "amount": ""}
    )

    assert "refunded $120.00 through Stripe" in done
    record = DecisionRecord.objects.get()
    shown = rendered_items(page)
    assert len(shown) > 5 and stored_items(record) == shown
    assert record.heading == f"Before you refund {order.number}"
    assert (record.action, record.actor, record.door) == (
        "orders.order.refund",
        cs_user.username,
        "admin",
    )
    [entry] = decisions_for(order=order)
    assert entry.reason == "Patient changed their mind" and entry.items == record.items
    assert decisions_for(patient=order.patient)[0].shown_sha256 == record.shown_sha256

    # The order's audit timeline shows what CS read beside the refund it led to.
    entries = trail.page(trail.TrailFilter(scope=order_scope(order)))[1]
    kinds = [entry.kind for entry in entries]
    decision = entries[kinds.index("decision")]
    assert decision.reason == "Patient changed their mind" and decision.who == cs_user.username
    assert any(shown[0]["sentence"] in line for line in decision.details)
    assert "refund attempt" in kinds[kinds.index("decision") - 3 : kinds.index("decision") + 3]


def test_facts_that_changed_since_the_page_opened_are_shown_again(
    paid_order, cs_user, admin_client_for, system
):
    order = paid_order("stripe", 12000)
    url = reverse("admin:orders_order_tool", args=[order.pk, "refund"])
    client = admin_client_for(cs_user)
    signed = SHOWN.search(client.get(url).content.decode()).group(1)
    refund_order(order=order, actor=system, reason="Refunded by phone meanwhile", amount_cents=2000)

    again = client.post(url, {"reason": "Refund", "amount": "", "shown": signed}).content.decode()

    assert "The facts below changed since you opened this page, so nothing was done" in again
    assert "$100.00" in again  # what remains now
    assert Order.objects.get(pk=order.pk).refunded_cents == 2000
    assert not DecisionRecord.objects.exists()


def test_a_cancel_stores_its_checklist(paid_order, cs_user, admin_client_for):
    order = paid_order("stripe", 5000)
    url = reverse("admin:orders_order_tool", args=[order.pk, "cancel"])

    page, _ = open_and_confirm(admin_client_for(cs_user), url, {"reason": "Duplicate order"})

    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    [entry] = decisions_for(order=order)
    assert entry.action == "orders.order.cancel"
    assert stored_items(DecisionRecord.objects.get()) == rendered_items(page)


def test_an_intake_rejection_stores_its_checklist(paid_order, medical_ops, admin_client_for):
    order = paid_order("stripe", 9900)
    order.subscription = SubscriptionFactory(patient=order.patient)
    order.save()
    intake = IntakeResponse.objects.create(
        patient=order.patient, order=order, questionnaire="GLP-1 intake", status="SUBMITTED"
    )
    url = reverse("admin:emr_intakeresponse_tool", args=[intake.pk, "reject"])

    page, _ = open_and_confirm(admin_client_for(medical_ops), url, {"reason": "Contraindicated"})

    assert IntakeResponse.objects.get(pk=intake.pk).status == IntakeStatus.REJECTED
    [entry] = decisions_for(subscription=order.subscription)
    assert entry.action == "emr.intakeresponse.reject" and entry.record == str(intake)
    assert [item["state"] for item in entry.items] == ["ok", "warn", "warn"]
    assert stored_items(DecisionRecord.objects.get()) == rendered_items(page)
    assert decisions_for(order=order)[0].shown_sha256 == entry.shown_sha256


def test_an_api_refund_stores_the_checklist_the_client_read(paid_order, api, system):
    order = paid_order("stripe", 12000)
    read = api.get(f"/api/v1/orders/{order.pk}/preflight/?action=refund").json()
    refund_order(order=order, actor=system, reason="Refunded by phone meanwhile", amount_cents=2000)
    url = f"/api/v1/orders/{order.pk}/refund/"
    body = {"reason": "Duplicate charge", "amount_cents": 1000}

    stale = api.post(url, {**body, "preflight_digest": read["digest"]}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "preflight.changed"
    assert not DecisionRecord.objects.exists()

    fresh = api.get(f"/api/v1/orders/{order.pk}/preflight/?action=refund").json()
    done = api.post(url, {**body, "preflight_digest": fresh["digest"]}, format="json")
    assert done.status_code == 201
    [entry] = decisions_for(order=order)
    assert (entry.door, entry.seen, entry.shown_sha256) == ("api", True, fresh["digest"])
    assert [item["sentence"] for item in entry.items] == [
        item["sentence"] for item in fresh["items"]
    ]
