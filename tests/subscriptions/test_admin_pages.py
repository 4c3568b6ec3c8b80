"""The subscription page: a record nobody rewrites by hand, with tools that call the services
and say what happened. Plans in use keep their money terms."""

from datetime import timedelta

import pytest
from django.urls import reverse

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import StateConflict
from subscriptions.billing_cycle import run_billing_cycle
from subscriptions.models import Plan, PlanSwitch, Subscription
from subscriptions.states import SubscriptionStatus, SwitchStatus, SwitchTiming
from subscriptions.switching import switch_plan
from tests.admin_tools import confirm_tool
from tests.factories import PatientFactory, SubscriptionFactory, UserFactory
from tests.subscriptions.conftest import START, make_plan, remove_card, save_card

pytestmark = pytest.mark.django_db


def page_url(subscription) -> str:
    return reverse("admin:subscriptions_subscription_change", args=[subscription.pk])


def tool_url(subscription, tool: str) -> str:
    return reverse("admin:subscriptions_subscription_tool", args=[subscription.pk, tool])


def use_tool(client, subscription, tool: str, **data) -> str:
    """Confirm `tool` with a reason; the subscription page it lands on, as text."""
    response = confirm_tool(
        client, tool_url(subscription, tool), {"reason": "Patient called", **data}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def offered(client, subscription) -> set[str]:
    html = client.get(page_url(subscription)).content.decode()
    return {tool for tool in TOOL_NAMES if f'data-tool="{tool}"' in html}


TOOL_NAMES = [
    "cancel",
    "schedule_cancellation",
    "cancel_despite_balance",
    "withdraw_scheduled_cancellation",
    "pause",
    "pause_despite_balance",
    "resume",
    "resume_without_payment",
    "change_card",
    "switch",
    "withdraw_scheduled_switch",
]


@pytest.fixture
def financed(subscribe):
    return lambda: subscribe(plan=make_plan(name="Semaglutide (3 payments)", financed_cycles=3))


# --- Nobody rewrites the record by hand --------------------------------------------------------


@pytest.mark.parametrize("role", ["cs_user", "billing_admin", "superuser"])
def test_the_page_rewrites_no_patient_plan_or_date(
    request, role, clock, subscribe, admin_client_for, roles
):
    """The issue's report: patient changed (card still the first one's), plan switched to a
    financed one (a recovery balance without a payoff), billing date backdated, no reason."""
    user = (
        UserFactory(username="root", is_superuser=True, is_staff=True)
        if role == "superuser"
        else request.getfixturevalue(role)
    )
    subscription = subscribe()
    other_patient = PatientFactory()
    financed_plan = make_plan(price_cents=29800, financed_cycles=4)
    before = Subscription.objects.values().get(pk=subscription.pk)
    client = admin_client_for(user)

    html = client.get(page_url(subscription)).content.decode()
    response = client.post(
        page_url(subscription),
        {
            "patient": other_patient.pk,
            "plan": financed_plan.pk,
            "payment_method": subscription.payment_method_id,
            "started_at_0": "2025-01-01",
            "started_at_1": "00:00:00",
            "next_billing_at_0": "2025-01-01",
            "next_billing_at_1": "00:00:00",
            "_save": "Save",
        },
    )

    for field in ["patient", "plan", "payment_method", "started_at", "next_billing_at"]:
        assert f'name="{field}' not in html
    assert response.status_code == 403
    assert Subscription.objects.values().get(pk=subscription.pk) == before
    assert client.get(
        reverse("admin:subscriptions_subscription_delete", args=[subscription.pk])
    ).status_code in {302, 403}
    assert Subscription.objects.filter(pk=subscription.pk).exists()


# --- Tools on the page, with sentences ---------------------------------------------------------


def test_cs_cancels_from_the_page_and_reads_what_happened(
    clock, subscribe, cs_user, admin_client_for
):
    subscription = subscribe()
    client = admin_client_for(cs_user)

    confirm = client.get(tool_url(subscription, "cancel")).content.decode()
    assert "No financed balance" in confirm  # the guide's checklist
    assert "refund past orders" in confirm
    html = use_tool(client, subscription, "cancel")

    invoice = subscription.orders.get().invoice
    assert (
        f"{subscription} cancelled; future billing stopped; last charge not refunded "
        f"($99.00, {invoice.number}, 2026-01-15)."
    ) in html
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.history.latest("history_id").history_change_reason == "Patient called"
    assert offered(client, subscription) == set()


def test_a_reason_is_required(clock, subscribe, cs_user, admin_client_for):
    subscription = subscribe()
    response = confirm_tool(
        admin_client_for(cs_user), tool_url(subscription, "cancel"), {"reason": " "}
    )
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


def test_cs_pauses_and_resumes_from_the_page(clock, subscribe, cs_user, admin_client_for):
    subscription = subscribe()
    client = admin_client_for(cs_user)
    assert offered(client, subscription) == {"cancel", "pause"}

    paused = use_tool(client, subscription, "pause")
    assert (
        f"{subscription} paused; nothing is billed until it is resumed (it was due 2026-02-15)."
    ) in paused
    assert offered(client, subscription) == {"cancel", "resume"}

    clock.move_to(START + timedelta(days=45))
    resumed = use_tool(admin_client_for(cs_user), subscription, "resume")  # a new session
    assert (
        f"{subscription} resumed; next billing 2026-03-01; the paused time is not billed."
    ) in resumed
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


def test_a_financed_balance_shows_cs_only_what_they_may_do(
    clock, financed, cs_user, billing_admin, admin_client_for
):
    subscription = financed()
    make_plan(name="Maintenance")  # something to switch to
    assert offered(admin_client_for(cs_user), subscription) == {"schedule_cancellation"}
    assert offered(admin_client_for(billing_admin), subscription) == {
        "schedule_cancellation",
        "cancel_despite_balance",
        "pause_despite_balance",
        "switch",
    }
    # A tool the page did not offer is refused before the service runs.
    html = use_tool(admin_client_for(cs_user), subscription, "cancel_despite_balance")
    assert "Your role does not allow this" in html
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


def test_scheduled_cancellation_shows_when_it_runs_not_when_it_was_asked(
    clock, financed, cs_user, admin_client_for
):
    subscription = financed()  # paid 1 of 3 on Jan 15; the last payment is billed Mar 15
    client = admin_client_for(cs_user)

    html = use_tool(client, subscription, "schedule_cancellation")

    runs = "Runs 2026-03-15, after the final recovery payment"
    assert f"{subscription}: cancellation scheduled. {runs}" in html
    assert "$198.00 (2 payments) still to pay" in html
    assert runs in html.split('id="scheduled-cancellation"')[1]
    assert "Asked for on 2026-01-15 by cs-agent: Patient called" in html
    listing = client.get(reverse("admin:subscriptions_subscription_changelist")).content.decode()
    assert "2026-03-15, after the final payment" in listing
    assert "Scheduled cancellation runs" in listing
    assert offered(client, subscription) == {"withdraw_scheduled_cancellation"}

    withdrawn = use_tool(client, subscription, "withdraw_scheduled_cancellation")
    assert (
        f"{subscription}: the scheduled cancellation was withdrawn. It stays active; next "
        "billing 2026-02-15."
    ) in withdrawn
    assert not Subscription.objects.get(pk=subscription.pk).has_scheduled_cancellation


def test_a_cancellation_waiting_only_for_an_open_invoice_runs_when_it_is_paid(
    clock, subscribe, cs_user, admin_client_for
):
    subscription = subscribe(plan=make_plan(financed_cycles=2))
    remove_card(subscription.payment_method)  # the renewal finds no card: its invoice stays open
    clock.move_to(START + timedelta(days=31))
    run_billing_cycle()

    html = use_tool(admin_client_for(cs_user), subscription, "schedule_cancellation")
    assert "Runs as soon as the open recovery invoice is paid" in html


def test_the_card_changes_only_to_another_card_of_the_same_patient(
    clock, subscribe, cs_user, admin_client_for
):
    subscription = subscribe()
    patient = subscription.patient
    second = save_card(patient)
    stranger_card = save_card(PatientFactory())
    client = admin_client_for(cs_user)

    form = client.get(tool_url(subscription, "change_card")).content.decode()
    assert f'value="{second.pk}"' in form
    assert f'value="{stranger_card.pk}"' not in form
    assert f'value="{subscription.payment_method_id}"' not in form

    refused = confirm_tool(
        client, tool_url(subscription, "change_card"), {"card": stranger_card.pk, "reason": "Asked"}
    )
    assert "Select a valid choice" in refused.content.decode()
    assert Subscription.objects.get(pk=subscription.pk).payment_method_id != stranger_card.pk

    html = use_tool(client, subscription, "change_card", card=second.pk)
    assert (
        f"{subscription} will be charged to {second} from its next charge (next billing "
        "2026-02-15); nothing was charged now."
    ) in html
    assert Subscription.objects.get(pk=subscription.pk).payment_method_id == second.pk


def test_no_change_card_tool_without_another_usable_card(
    clock, subscribe, cs_user, admin_client_for
):
    subscription = subscribe()
    remove_card(save_card(subscription.patient))
    assert "change_card" not in offered(admin_client_for(cs_user), subscription)


def test_billing_admin_switches_from_the_page(clock, subscribe, billing_admin, admin_client_for):
    old = subscribe()
    new_plan = make_plan(price_cents=4900, name="Weekly care")
    client = admin_client_for(billing_admin)

    html = use_tool(client, old, "switch", plan=new_plan.pk, timing="NOW")

    replacement = Subscription.objects.exclude(pk=old.pk).get(patient=old.patient)
    assert (
        f"{old} switched to Weekly care: {replacement} is active and its first payment was "
        f"charged; {old} is cancelled."
    ) in html
    assert Subscription.objects.get(pk=old.pk).status == SubscriptionStatus.CANCELLED


def test_billing_admin_schedules_and_withdraws_a_switch(
    clock, financed, billing_admin, admin_client_for
):
    old = financed()
    target = make_plan(name="Maintenance")
    client = admin_client_for(billing_admin)
    form = client.get(tool_url(old, "switch")).content.decode()
    assert 'value="NOW"' in form and 'value="AFTER_RECOVERY"' in form

    html = use_tool(client, old, "switch", plan=target.pk, timing="AFTER_RECOVERY")
    assert f"Switch of {old} to Maintenance scheduled: it starts after the final recovery" in html
    assert "withdraw_scheduled_switch" in offered(client, old)

    withdrawn = use_tool(client, old, "withdraw_scheduled_switch")
    assert f"The scheduled switch of {old} to Maintenance was withdrawn" in withdrawn
    assert PlanSwitch.objects.get().status == SwitchStatus.WITHDRAWN


def test_cs_is_never_offered_a_switch(clock, subscribe, cs_user, admin_client_for):
    subscription = subscribe()
    make_plan(name="Another")
    client = admin_client_for(cs_user)
    assert "switch" not in offered(client, subscription)
    assert "Your role does not allow this" in use_tool(client, subscription, "switch")
    assert Subscription.objects.count() == 1


# --- The patient profile offers the same tools -------------------------------------------------


def test_the_profile_links_each_subscription_to_its_tools(
    clock, subscribe, cs_user, admin_client_for
):
    subscription = subscribe()
    html = (
        admin_client_for(cs_user)
        .get(reverse("admin:support_patientprofile_profile", args=[subscription.patient_id]))
        .content.decode()
    )
    row = html.split(f'id="subscription-{subscription.pk}"')[1].split("</tr>")[0]
    assert f'href="{tool_url(subscription, "cancel")}"' in row
    assert f'href="{tool_url(subscription, "pause")}"' in row
    assert 'data-tool="switch"' not in row


# --- Plans in use keep their money terms -------------------------------------------------------


def _plan_form(plan: Plan, **changes) -> dict:
    data = {
        "name": plan.name,
        "product": plan.product_id,
        "price_cents": plan.price_cents,
        "currency": plan.currency,
        "interval": plan.interval,
        "interval_count": plan.interval_count,
        "financed_cycles": plan.financed_cycles or "",
        "term_cycles": plan.term_cycles or "",
        "payoff_switch_allowed": "on" if plan.payoff_switch_allowed else "",
        "active": "on" if plan.active else "",
    }
    return {key: value for key, value in (data | changes).items() if value != ""}


def test_a_plan_in_use_keeps_its_price_and_financing(
    clock, subscribe, billing_admin, admin_client_for
):
    subscription = subscribe()
    plan = subscription.plan
    url = reverse("admin:subscriptions_plan_change", args=[plan.pk])
    client = admin_client_for(billing_admin)

    client.post(
        url,
        _plan_form(plan, name="Renamed", price_cents=1, financed_cycles=6, active=""),
    )

    plan.refresh_from_db()
    assert (plan.name, plan.active) == ("Renamed", False)  # renamed and retired
    assert (plan.price_cents, plan.financed_cycles) == (9900, None)
    assert subscription.recovery_balance_cents == 0


def test_a_plan_nobody_uses_yet_can_be_corrected(db, billing_admin, admin_client_for):
    plan = make_plan(price_cents=9900)
    url = reverse("admin:subscriptions_plan_change", args=[plan.pk])
    admin_client_for(billing_admin).post(url, _plan_form(plan, price_cents=8900))
    assert Plan.objects.get(pk=plan.pk).price_cents == 8900


def test_save_refuses_to_change_a_plan_in_use_whoever_calls_it(db):
    """The second wall behind the read-only page: a form opened before the first subscription
    and sent after it, a shell script or a bug cannot reprice what subscribers pay."""
    plan = SubscriptionFactory(plan=make_plan(price_cents=9900)).plan
    plan.price_cents = 100
    with pytest.raises(StateConflict) as refused:
        plan.save()
    assert refused.value.code == "plan.in_use"
    assert Plan.objects.get(pk=plan.pk).price_cents == 9900

    plan.refresh_from_db()
    plan.name, plan.active = "Renamed", False  # renaming and retiring it stay allowed
    plan.save()
    assert Plan.objects.filter(pk=plan.pk, name="Renamed", active=False).exists()


def test_a_plan_a_scheduled_switch_leads_to_keeps_its_terms(
    clock, subscribe, billing_admin, admin_client_for
):
    """The patient agreed to the target plan's price: it is billed when the switch runs."""
    old = subscribe(plan=make_plan(financed_cycles=3))
    target = make_plan(name="Maintenance", price_cents=4900)
    switch_plan(
        subscription=old,
        plan=target,
        timing=SwitchTiming.AFTER_RECOVERY,
        actor=Actor.staff(billing_admin, door=Door.ADMIN),
        reason="Patient moves to maintenance",
    )
    url = reverse("admin:subscriptions_plan_change", args=[target.pk])
    client = admin_client_for(billing_admin)

    assert "A scheduled plan switch leads to this plan" in client.get(url).content.decode()
    client.post(url, _plan_form(target, price_cents=9900))
    assert Plan.objects.get(pk=target.pk).price_cents == 4900
