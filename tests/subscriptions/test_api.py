"""The API doors of API.md: plans, subscriptions (start, read, cancel, pause/resume, scheduled
cancellation, switch) and intake review. Each answers refusals as {"code", "detail"}."""

import pytest
from rest_framework.test import APIClient

from billing import payments
from billing.models import Payment
from billing.states import InvoiceStatus, PaymentStatus
from emr.workflows.models import WorkflowEvent
from orders.models import Order
from orders.states import OrderStatus
from subscriptions.models import Plan, Subscription
from subscriptions.states import CancellationCause, SubscriptionStatus
from tests.factories import PatientFactory, ProductFactory
from tests.subscriptions.conftest import DECLINING_STRIPE_CARD, make_plan, save_card

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def as_admin(billing_admin, gateways):
    return client_for(billing_admin)


@pytest.fixture
def as_cs(cs_user, gateways):
    return client_for(cs_user)


def test_billing_admins_create_plans(as_admin, as_cs):
    product = ProductFactory(price_cents=14900)
    body = {
        "name": "Semaglutide financed",
        "product": product.pk,
        "price_cents": 14900,
        "interval": "MONTH",
        "interval_count": 1,
        "financed_cycles": 6,
    }
    assert as_cs.post("/api/v1/plans/", body, format="json").status_code == 403

    response = as_admin.post("/api/v1/plans/", body, format="json")

    assert response.status_code == 201, response.json()
    plan = response.json()
    assert (plan["financed_cycles"], plan["term_cycles"], plan["payoff_switch_allowed"]) == (
        6,
        None,
        True,
    )


def test_zero_financed_cycles_is_a_plan_without_financing(as_admin):
    body = {
        "name": "Monthly consult",
        "product": ProductFactory().pk,
        "price_cents": 9900,
        "interval": "MONTH",
        "financed_cycles": 0,
        "term_cycles": 3,
    }

    response = as_admin.post("/api/v1/plans/", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["financed_cycles"] is None
    assert Plan.objects.get(pk=response.json()["id"]).financed_cycles is None


def test_a_plan_form_with_zero_financed_cycles_validates_as_not_financed():
    # What the admin's form runs before saving: the model's validation, constraints included.
    plan = Plan(name="Monthly", product=ProductFactory(), price_cents=9900, interval="MONTH")
    plan.financed_cycles = 0

    plan.full_clean()
    plan.save()

    assert Plan.objects.get(pk=plan.pk).financed_cycles is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price_cents": "100"}, "price_cents"),
        ({"price_cents": 0}, "price_cents"),
        ({"interval": "DAY"}, "interval"),
        ({"financed_cycles": 6, "term_cycles": 3}, "term_cycles"),
        ({"financed_cycles": -1}, "financed_cycles"),
    ],
)
def test_bad_plans_are_refused_with_the_field_named(as_admin, change, field):
    body = {"name": "X", "product": ProductFactory().pk, "price_cents": 100, "interval": "MONTH"}
    response = as_admin.post("/api/v1/plans/", body | change, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["errors"]
    assert not Plan.objects.exists()


def test_starting_a_subscription_charges_the_first_order(clock, as_admin, as_cs):
    patient, plan = PatientFactory(), make_plan()
    card = save_card(patient)
    body = {"patient": patient.pk, "plan": plan.pk, "payment_method": card.pk}
    assert as_cs.post("/api/v1/subscriptions/", body, format="json").status_code == 403

    response = as_admin.post("/api/v1/subscriptions/", body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "ACTIVE"
    assert data["first_order"]["kind"] == "SUBSCRIPTION_FIRST"
    assert data["first_order"]["status"] == "PROCESSING"
    assert data["first_order"]["invoice"]["status"] == "PAID"
    assert data["next_billing_at"].startswith("2026-02-15T09:00:00")
    assert data["scheduled_cancellation"] is None and data["pending_switch"] is None


def test_a_declined_first_payment_starts_no_subscription(clock, as_admin):
    patient, plan = PatientFactory(), make_plan()
    card = save_card(patient, token=DECLINING_STRIPE_CARD)

    response = as_admin.post(
        "/api/v1/subscriptions/",
        {"patient": patient.pk, "plan": plan.pk, "payment_method": card.pk},
        format="json",
    )

    assert response.status_code == 402
    assert response.json()["code"] == "payment.declined"
    assert "No subscription was started" in response.json()["detail"]
    # Nothing active or billable is left behind; the declined attempt stays on record for CS.
    subscription = Subscription.objects.get()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.cancellation_cause == CancellationCause.NOT_STARTED
    assert subscription.next_billing_at is None
    order = Order.objects.get()
    assert order.status == OrderStatus.CANCELLED
    assert order.invoice.status == InvoiceStatus.CANCELLED
    assert Payment.objects.get().status == PaymentStatus.FAILED
    assert not WorkflowEvent.objects.filter(
        event_type__in=["subscription.created", "subscription.cancelled"]
    ).exists()


def test_a_card_of_the_other_gateway_starts_nothing(clock, as_admin, system):
    patient, plan = PatientFactory(), make_plan()
    card = save_card(patient)
    payments.set_active_gateway(gateway="nmi", actor=system, reason="Processor changed")

    response = as_admin.post(
        "/api/v1/subscriptions/",
        {"patient": patient.pk, "plan": plan.pk, "payment_method": card.pk},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "payment.gateway_mismatch"
    assert not Subscription.objects.exists() and not Order.objects.exists()


def test_reading_a_subscription(clock, subscribe, as_cs):
    subscription = subscribe(plan=make_plan(financed_cycles=4))
    data = as_cs.get(f"/api/v1/subscriptions/{subscription.pk}/").json()
    assert {key: data[key] for key in ["id", "status", "plan", "cancelled_at"]} == {
        "id": subscription.pk,
        "status": "ACTIVE",
        "plan": subscription.plan_id,
        "cancelled_at": None,
    }
    assert data["recovery_cycles_remaining"] == 3
    assert data["recovery_balance_cents"] == 3 * 9900
    assert data["next_billing_at"].startswith("2026-02-15")


def test_cancel_answers_409_the_second_time(clock, subscribe, as_cs):
    subscription = subscribe()
    url = f"/api/v1/subscriptions/{subscription.pk}/cancel/"

    first = as_cs.post(url, {"reason": "Patient asked"}, format="json")
    second = as_cs.post(url, {"reason": "Patient asked again"}, format="json")

    assert first.status_code == 200 and first.json()["status"] == "CANCELLED"
    assert first.json()["cancelled_at"] is not None
    assert second.status_code == 409
    assert second.json()["code"] == "subscription.already_cancelled"
    assert "cannot be reactivated" in second.json()["detail"]


def test_cancel_needs_a_reason(clock, subscribe, as_cs):
    subscription = subscribe()
    response = as_cs.post(f"/api/v1/subscriptions/{subscription.pk}/cancel/", {}, format="json")
    assert response.status_code == 400
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


def test_cs_is_refused_a_financed_cancellation_and_schedules_it(clock, subscribe, as_cs, as_admin):
    subscription = subscribe(plan=make_plan(financed_cycles=3))
    base = f"/api/v1/subscriptions/{subscription.pk}"

    refused = as_cs.post(f"{base}/cancel/", {"reason": "Patient asked"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "subscription.recovery_balance"
    assert as_cs.post(f"{base}/pause/", {"reason": "Break"}, format="json").status_code == 409

    scheduled = as_cs.post(
        f"{base}/schedule-cancellation/", {"reason": "Patient asked"}, format="json"
    )
    assert scheduled.status_code == 200
    assert scheduled.json()["scheduled_cancellation"]["requested_by"] == "cs-agent"
    assert scheduled.json()["scheduled_cancellation"]["reason"] == "Patient asked"
    assert scheduled.json()["status"] == "ACTIVE"

    withdrawn = as_cs.delete(f"{base}/schedule-cancellation/")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["scheduled_cancellation"] is None
    again = as_cs.delete(f"{base}/schedule-cancellation/")
    assert again.status_code == 409

    overridden = as_admin.post(
        f"{base}/cancel/", {"reason": "Billing review: waive balance"}, format="json"
    )
    assert overridden.status_code == 200 and overridden.json()["status"] == "CANCELLED"


def test_pause_and_resume(clock, subscribe, as_cs):
    subscription = subscribe()
    base = f"/api/v1/subscriptions/{subscription.pk}"
    assert as_cs.post(f"{base}/pause/", {"reason": "Trip"}, format="json").json()["status"] == (
        "PAUSED"
    )
    again = as_cs.post(f"{base}/pause/", {"reason": "Trip"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "subscription.invalid_transition"
    assert as_cs.post(f"{base}/resume/", {"reason": "Back"}, format="json").json()["status"] == (
        "ACTIVE"
    )


def test_switch_answers_201_with_payoff_and_replacement(clock, subscribe, as_admin, as_cs):
    subscription = subscribe(plan=make_plan(financed_cycles=3))
    target = make_plan(name="Maintenance", price_cents=4900)
    url = f"/api/v1/subscriptions/{subscription.pk}/switch/"
    assert as_cs.post(url, {"plan": target.pk}, format="json").status_code == 403

    response = as_admin.post(url, {"plan": target.pk}, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "COMPLETED"
    assert data["payoff_order"]["kind"] == "PAYOFF"
    assert data["payoff_order"]["invoice"]["amount_cents"] == 2 * 9900
    assert data["payoff_order"]["invoice"]["status"] == "PAID"
    assert data["replacement"]["status"] == "ACTIVE"
    assert data["replacement"]["plan"] == target.pk
    assert data["replacement_order"]["invoice"]["amount_cents"] == 4900
    assert data["replacement_order"]["invoice"]["status"] == "PAID"
    old = as_admin.get(f"/api/v1/subscriptions/{subscription.pk}/").json()
    assert old["status"] == "CANCELLED" and old["cancellation_cause"] == "SWITCHED"


def test_a_scheduled_switch_shows_as_pending(clock, subscribe, as_admin):
    subscription = subscribe(plan=make_plan(financed_cycles=3, payoff_switch_allowed=False))
    target = make_plan(name="Maintenance")
    response = as_admin.post(
        f"/api/v1/subscriptions/{subscription.pk}/switch/",
        {"plan": target.pk, "timing": "AFTER_RECOVERY"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["status"] == "SCHEDULED"
    data = as_admin.get(f"/api/v1/subscriptions/{subscription.pk}/").json()
    assert data["pending_switch"]["status"] == "SCHEDULED"
    assert data["pending_switch"]["target_plan"] == target.pk


def test_unknown_ids_answer_404(as_cs):
    response = as_cs.post("/api/v1/subscriptions/999999/cancel/", {"reason": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
