"""Refund policies the system enforces: versioned terms that travel with the purchase, the
patient's acceptance before paying, session packages with a usage log, and the refund quote
CS defends a decision with. Payments and refunds go through the local gateway servers."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing import payments
from billing.models import Payment, RefundAttempt, SessionPackage
from billing.packages import announce_expiry
from billing.states import PaymentKind, PaymentStatus
from emr.workflows.models import WorkflowEvent
from orders.models import Order, ProductKind
from orders.states import OrderStatus
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import NMI_CARD

pytestmark = pytest.mark.django_db

PRO_RATA = {
    "refund_window_days": 90,
    "partial_refunds": "pro_rata_unused",
    "package_expires_days": 90,
}
NO_PARTIAL = {"partial_refunds": "none", "package_expires_days": 90}


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def admin_api(billing_admin):
    return _api(billing_admin)


@pytest.fixture
def cs_api(cs_user):
    return _api(cs_user)


def _policy(admin_api, name, rules) -> dict:
    response = admin_api.post(
        "/api/v1/refund-policies/", {"name": name, "rules": rules}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _paid_package_order(gateways, system, policy_id, *, sessions=6, price=36000) -> Order:
    payments.set_active_gateway(gateway="nmi", actor=system, reason="test setup")
    patient = PatientFactory()
    card = payments.save_card(patient=patient, gateway="nmi", token=NMI_CARD, actor=system)
    product = ProductFactory(
        kind=ProductKind.PACKAGE, price_cents=price, sessions=sessions, refund_policy_id=policy_id
    )
    order = make_order(patient=patient, products=[product])
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
    return Order.objects.get(pk=order.pk)


def _redeem(cs_api, package_id, at=None, **extra):
    return cs_api.post(
        f"/api/v1/packages/{package_id}/redemptions/",
        {
            "at": (at or timezone.now()).isoformat(),
            "provider": "Dr. Lee",
            "appointment_ref": "APT-1",
            "note": "Session done",
            **extra,
        },
        format="json",
    )


def test_a_policy_edit_makes_version_2_while_an_earlier_order_keeps_version_1(admin_api, cs_api):
    policy = _policy(admin_api, "Sessions", PRO_RATA)
    assert policy["version"] == 1
    assert "Unused sessions are refunded pro rata within 90 days of purchase." in policy["text"]
    product = ProductFactory(refund_policy_id=policy["id"])
    earlier = make_order(products=[product])

    revised = admin_api.put(
        f"/api/v1/refund-policies/{policy['id']}/",
        {"name": "Sessions", "rules": NO_PARTIAL},
        format="json",
    )
    assert revised.status_code == 200, revised.json()
    assert revised.json()["version"] == 2
    assert [v["version"] for v in revised.json()["versions"]] == [2, 1]
    later = make_order(products=[product])

    earlier_item = cs_api.get(f"/api/v1/orders/{earlier.pk}/").json()["items"][0]
    later_item = cs_api.get(f"/api/v1/orders/{later.pk}/").json()["items"][0]
    assert earlier_item["refund_policy"]["version"] == 1
    assert "pro rata" in earlier_item["refund_policy"]["text"]
    assert later_item["refund_policy"]["version"] == 2
    assert "No partial refunds." in later_item["refund_policy"]["text"]


def test_bad_rules_are_refused_and_cs_may_not_write_policies(admin_api, cs_api):
    unknown = admin_api.post(
        "/api/v1/refund-policies/", {"name": "X", "rules": {"refund_days": 3}}, format="json"
    )
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "policy.unknown_rule"
    assert "refund_days" in unknown.json()["detail"]
    bad_days = admin_api.post(
        "/api/v1/refund-policies/",
        {"name": "X", "rules": {"refund_window_days": -1}},
        format="json",
    )
    assert bad_days.json()["code"] == "policy.invalid_rules"
    refused = cs_api.post("/api/v1/refund-policies/", {"name": "X", "rules": {}}, format="json")
    assert refused.status_code == 403
    assert cs_api.get("/api/v1/refund-policies/").json()["count"] == 0


def test_an_acknowledgement_records_version_hash_channel_address_and_browser(
    admin_api, cs_api, cs_user
):
    policy = _policy(admin_api, "Intake", {"acknowledgement_required": True})
    order = make_order(products=[ProductFactory(refund_policy_id=policy["id"])])

    response = cs_api.post(
        f"/api/v1/orders/{order.pk}/acknowledgements/",
        {"channel": "phone"},
        format="json",
        HTTP_USER_AGENT="CS console",
        REMOTE_ADDR="203.0.113.7",
    )

    assert response.status_code == 201, response.json()
    [ack] = cs_api.get(f"/api/v1/orders/{order.pk}/").json()["acknowledgements"]
    version = order.items.get().refund_policy_version
    assert ack["policy"] == policy["id"] and ack["version"] == 1
    assert ack["text_sha256"] == version.text_sha256
    assert ack["channel"] == "phone"
    assert ack["recorded_by_label"] == cs_user.username
    assert ack["ip_address"] == "203.0.113.7"
    assert ack["user_agent"] == "CS console"


def test_a_charge_without_a_required_acknowledgement_is_refused_and_changes_nothing(
    admin_api, cs_api, gateways, system
):
    policy = _policy(admin_api, "Intake", {"acknowledgement_required": True})
    payments.set_active_gateway(gateway="nmi", actor=system, reason="test setup")
    patient = PatientFactory()
    card = payments.save_card(patient=patient, gateway="nmi", token=NMI_CARD, actor=system)
    order = make_order(patient=patient, products=[ProductFactory(refund_policy_id=policy["id"])])
    charges_before = len(gateways.nmi.transactions())

    refused = cs_api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/", {"payment_method": card.pk}, format="json"
    )

    assert refused.status_code == 409
    assert refused.json()["code"] == "payment.policy_not_acknowledged"
    assert "record their acceptance" in refused.json()["detail"]
    assert not Payment.objects.filter(invoice=order.invoice).exists()
    assert len(gateways.nmi.transactions()) == charges_before
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING

    cs_api.post(f"/api/v1/orders/{order.pk}/acknowledgements/", {"channel": "in_person"})
    paid = cs_api.post(
        f"/api/v1/invoices/{order.invoice.pk}/pay/", {"payment_method": card.pk}, format="json"
    )
    assert paid.status_code == 201, paid.json()


@pytest.mark.parametrize(("rules", "quoted"), [(PRO_RATA, 24000), (NO_PARTIAL, 0)])
def test_a_six_session_package_with_two_redemptions_quotes_by_its_policy(
    admin_api, cs_api, gateways, system, rules, quoted
):
    policy = _policy(admin_api, "Package terms", rules)
    order = _paid_package_order(gateways, system, policy["id"])
    package = SessionPackage.objects.get(order_item__order=order)
    assert package.sessions_total == 6
    assert package.expires_at > timezone.now() + timedelta(days=89)
    for _ in range(2):
        assert _redeem(cs_api, package.pk).status_code == 201

    ledger = cs_api.get(f"/api/v1/packages/{package.pk}/").json()
    assert (ledger["total"], ledger["used"], ledger["remaining"]) == (6, 2, 4)
    assert [r["provider"] for r in ledger["redemptions"]] == ["Dr. Lee", "Dr. Lee"]

    quote = cs_api.get(f"/api/v1/orders/{order.pk}/refund-quote/").json()
    assert quote["refundable_cents"] == quoted
    assert quote["items"][0]["sessions_used"] == 2
    assert "4 of 6 sessions unused" in quote["explanation"][0]
    assert ("$240.00" if quoted else "$0.00") in quote["explanation"][0]


def test_a_redemption_after_expiry_or_beyond_the_balance_is_refused(
    admin_api, cs_api, gateways, system
):
    policy = _policy(admin_api, "Short", {"package_expires_days": 30})
    order = _paid_package_order(gateways, system, policy["id"], sessions=1, price=5000)
    package = SessionPackage.objects.get(order_item__order=order)

    late = _redeem(cs_api, package.pk, at=timezone.now() + timedelta(days=31))
    assert late.status_code == 409
    assert late.json()["code"] == "package.expired"
    assert _redeem(cs_api, package.pk).status_code == 201
    exhausted = _redeem(cs_api, package.pk)
    assert exhausted.status_code == 409
    assert exhausted.json()["code"] == "package.exhausted"
    assert package.redemptions.count() == 1


def test_a_refund_above_the_quote_needs_an_override_reason_and_is_flagged(
    admin_api, cs_api, gateways, system, billing_admin, admin_client_for
):
    policy = _policy(admin_api, "Package terms", NO_PARTIAL)
    order = _paid_package_order(gateways, system, policy["id"])
    package = SessionPackage.objects.get(order_item__order=order)
    _redeem(cs_api, package.pk)
    refunds_before = len(gateways.nmi.transactions())

    refused = cs_api.post(
        f"/api/v1/orders/{order.pk}/refund/", {"reason": "Patient moved away"}, format="json"
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "refund.exceeds_policy"
    assert refused.json()["quote"]["refundable_cents"] == 0
    assert "no partial refunds" in refused.json()["detail"]
    assert len(gateways.nmi.transactions()) == refunds_before
    assert not RefundAttempt.objects.filter(order=order).exists()

    done = cs_api.post(
        f"/api/v1/orders/{order.pk}/refund/",
        {"reason": "Patient moved away", "override_reason": "Manager approved: relocation"},
        format="json",
    )
    assert done.status_code == 201, done.json()
    attempt = RefundAttempt.objects.get(order=order)
    assert attempt.policy_quote_cents == 0
    assert attempt.policy_override_reason == "Manager approved: relocation"
    assert Payment.objects.get(kind=PaymentKind.REFUND).status == PaymentStatus.REFUNDED
    # Billing admins see it counted on the refunds dashboard, with the quote and the reason.
    html = admin_client_for(billing_admin).get("/audit/dashboard/").content.decode()
    overrides = html.split('id="overrides"')[1].split("</section>")[0]
    assert "Refund-policy overrides (1)" in overrides
    assert order.number in overrides and "Manager approved: relocation" in overrides
    assert "$360.00" in overrides and "$0.00" in overrides


def test_orders_without_a_policy_refund_as_before(paid_order, cs_api):
    order = paid_order("nmi", 12000)
    quote = cs_api.get(f"/api/v1/orders/{order.pk}/refund-quote/").json()
    assert quote["governed"] is False and quote["refundable_cents"] == 12000
    response = cs_api.post(f"/api/v1/orders/{order.pk}/refund/", {"reason": "Changed mind"})
    assert response.status_code == 201
    assert RefundAttempt.objects.get(order=order).policy_quote_cents is None


def test_packages_announce_expiring_then_expired_once_each(admin_api, gateways, system):
    policy = _policy(admin_api, "Short", {"package_expires_days": 10})
    order = _paid_package_order(gateways, system, policy["id"], sessions=2, price=5000)
    package = SessionPackage.objects.get(order_item__order=order)

    assert announce_expiry() == 1  # within the 14-day notice
    assert announce_expiry() == 0
    assert announce_expiry(now=package.expires_at + timedelta(minutes=1)) == 1
    assert announce_expiry(now=package.expires_at + timedelta(days=1)) == 0
    events = WorkflowEvent.objects.filter(subject_key=f"package:{package.pk}")
    assert list(events.order_by("id").values_list("event_type", flat=True)) == [
        "package.expiring",
        "package.expired",
    ]
    assert events.first().payload["package"]["sessionsRemaining"] == 2
