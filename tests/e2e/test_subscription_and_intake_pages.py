"""In a real browser: a CS agent pauses, resumes and cancels a subscription from its page and
reads what happened; the page has nothing to type a patient, plan or date into; medical
operations reject an intake from its page with a note. Screenshots of each page visited land in
test-output/screenshots/."""

from datetime import timedelta

import pytest
from django.utils import timezone

from emr.models import IntakeResponse, IntakeStatus
from orders.states import OrderStatus
from subscriptions.models import Subscription
from subscriptions.states import SubscriptionStatus
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import SubscriptionFactory, make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def subscription_page(live_server, subscription) -> str:
    return f"{live_server.url}/admin/subscriptions/subscription/{subscription.pk}/change/"


def use_tool(page, tool: str, reason: str, screenshot: str | None = None) -> str:
    page.click(f"#subscription-tools a[data-tool={tool}]")
    if screenshot:
        shot(page, screenshot)
    page.fill("#id_reason", reason)
    page.click("#confirm-tool input[type=submit]")
    return page.wait_for_selector(".messagelist .success").inner_text()


def test_cs_pauses_resumes_and_cancels_from_the_subscription_page(
    page, live_server, log_in, cs_user
):
    subscription = SubscriptionFactory(next_billing_at=timezone.now() + timedelta(days=20))
    log_in(page, cs_user)
    page.goto(subscription_page(live_server, subscription))
    shot(page, "subscription-page-cs")
    assert page.inner_text("#subscription-status") == "Active"

    paused = use_tool(page, "pause", "Patient travelling for a month", "subscription-pause")
    assert paused.startswith(f"{subscription} paused; nothing is billed until it is resumed")
    assert page.inner_text("#subscription-status") == "Paused"

    resumed = use_tool(page, "resume", "Patient is back")
    assert resumed.startswith(f"{subscription} resumed; next billing ")
    assert page.inner_text("#subscription-status") == "Active"

    cancelled = use_tool(page, "cancel", "Patient moving abroad", "subscription-cancel")
    shot(page, "subscription-cancelled")
    assert cancelled == (
        f"{subscription} cancelled; future billing stopped; nothing had been charged."
    )
    assert page.inner_text("#subscription-status") == "Cancelled"
    assert page.locator("#subscription-tools a[data-tool]").count() == 0
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert [row.history_change_reason for row in subscription.history.order_by("history_id")][
        -3:
    ] == ["Patient travelling for a month", "Patient is back", "Patient moving abroad"]


def test_the_subscription_page_has_nothing_to_type_a_patient_plan_or_date_into(
    page, live_server, log_in, billing_admin
):
    subscription = SubscriptionFactory()
    log_in(page, billing_admin)
    page.goto(subscription_page(live_server, subscription))

    form = page.locator("#subscription_form")
    for name in ["patient", "plan", "payment_method", "started_at", "next_billing_at"]:
        assert form.locator(f"[name^={name}]").count() == 0, name
    editable = form.locator("input:not([type=hidden]), select, textarea")
    assert editable.count() == 0
    assert page.locator("input[name=_save]").count() == 0
    assert Subscription.objects.get(pk=subscription.pk).patient_id == subscription.patient_id


def test_medical_ops_reject_an_intake_from_its_page(page, live_server, log_in, medical_ops):
    order = make_order()
    order.subscription = SubscriptionFactory(patient=order.patient)
    order.save()
    intake = IntakeResponse.objects.create(
        patient=order.patient,
        order=order,
        questionnaire="GLP-1 intake",
        status=IntakeStatus.SUBMITTED,
    )
    log_in(page, medical_ops)
    page.goto(f"{live_server.url}/admin/emr/intakeresponse/{intake.pk}/change/")
    shot(page, "intake-page-medops")
    assert page.inner_text("#intake-status") == "Submitted"

    page.click("a[data-tool=reject]")
    checklist = page.inner_text("#preflight")
    assert f"{order.number} (Pending) will be REJECTED." in checklist
    assert "will be cancelled" in checklist
    shot(page, "intake-reject-confirm")
    page.fill("#id_reason", "Contraindicated: history of pancreatitis")
    page.click("#confirm-tool input[type=submit]")

    result = page.wait_for_selector(".messagelist .success").inner_text()
    shot(page, "intake-rejected")
    assert result == (
        "GLP-1 intake: rejected. "
        f"{order.number} rejected; its unpaid invoice was closed. "
        f"{order.subscription} cancelled; future billing stopped."
    )
    assert page.inner_text("#intake-status") == "Rejected"
    assert "history of pancreatitis" in page.inner_text("#intake-review-note")
    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED
