"""The subscription page's tools: each opens a confirmation page (what will happen, the guide's
checklist where it has one, a required reason), calls the same service as the API and the
portal, and says what happened in words built from the record's new state.

A rule the service would apply to the person acting (a financed balance only a billing admin
may override, a switch only billing admins make) is a separate tool behind that permission, so
no role is offered a button the service would then refuse.
"""

from django import forms
from django.utils import timezone

from billing.models import Payment, PaymentMethod
from billing.payments import active_gateway
from billing.states import PaymentKind, PaymentStatus
from emr.kernel.admin_actions import ReasonForm
from emr.kernel.admin_pages import RecordTool
from emr.kernel.money import format_cents
from emr.support.preflight import subscription_cancel_preflight
from subscriptions import lifecycle, switching
from subscriptions.billing_cycle import billing_card_for, change_card
from subscriptions.models import Plan, PlanSwitch, Subscription
from subscriptions.scheduled import scheduled_cancellation_due_at, unpaid_financed_cycles
from subscriptions.states import (
    LIVE_STATUSES,
    OPEN_SWITCH_STATUSES,
    SubscriptionStatus,
    SwitchStatus,
    SwitchTiming,
)

S = SubscriptionStatus
CHANGE = "subscriptions.change_subscription"


def day(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d}"


def plan_terms(plan: Plan) -> str:
    """ "Weight care, $99.00 every month" (and its financing), as staff read it."""
    every = plan.get_interval_display().lower()
    if plan.interval_count > 1:
        every = f"{plan.interval_count} {every}s"
    terms = f"{plan.name}, {format_cents(plan.price_cents, plan.currency)} every {every}"
    if plan.financed_cycles:
        terms += f", financed over {plan.financed_cycles} payments"
    return terms


def recovery_balance_text(subscription: Subscription) -> str:
    cycles = subscription.recovery_cycles_remaining
    if not cycles:
        return "none"
    amount = format_cents(subscription.recovery_balance_cents, subscription.plan.currency)
    return f"{amount} ({cycles} payment{'s' if cycles != 1 else ''})"


def scheduled_cancellation_text(
    subscription: Subscription, *, unpaid_financed: int, short: bool = False
) -> str:
    """When the scheduled cancellation will run (not when it was asked for), or ""."""
    if not subscription.has_scheduled_cancellation:
        return ""
    due = scheduled_cancellation_due_at(subscription, unpaid_financed_cycles=unpaid_financed)
    if due is None:
        if short:
            return "when the open invoice is paid"
        return "Runs as soon as the open recovery invoice is paid (the last required payment)"
    if short:
        return f"{day(due)}, after the final payment"
    return f"Runs {day(due)}, after the final recovery payment (if it is paid on time)"


def scheduled_cancellation_request(subscription: Subscription) -> str:
    if not subscription.has_scheduled_cancellation:
        return ""
    return (
        f"Asked for on {day(subscription.cancellation_scheduled_at)} by "
        f"{subscription.cancellation_scheduled_by}: {subscription.cancellation_scheduled_reason}"
    )


def open_switch(subscription: Subscription) -> PlanSwitch | None:
    return (
        PlanSwitch.objects.select_related("target_plan")
        .filter(subscription=subscription, status__in=OPEN_SWITCH_STATUSES)
        .first()
    )


# --- Cancel, and schedule or withdraw a cancellation -----------------------------------------


def _last_charge(subscription: Subscription) -> str:
    charge = (
        Payment.objects.select_related("invoice")
        .filter(
            invoice__order__subscription=subscription,
            kind=PaymentKind.CHARGE,
            status=PaymentStatus.SUCCEEDED,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if charge is None:
        return "nothing had been charged"
    return (
        f"last charge not refunded ({format_cents(charge.amount_cents, charge.currency)}, "
        f"{charge.invoice.number}, {day(charge.created_at)})"
    )


def _open_invoices(subscription: Subscription) -> str:
    numbers = [invoice.number for invoice in lifecycle.open_cycle_invoices(subscription)]
    if not numbers:
        return ""
    return f" {', '.join(numbers)} stays open: close its order if the patient should not pay it."


def _cancel(subscription, *, actor, reason, data) -> str:
    subscription = lifecycle.cancel_subscription(
        subscription=subscription, actor=actor, reason=reason
    )
    return (
        f"{subscription} cancelled; future billing stopped; {_last_charge(subscription)}."
        f"{_open_invoices(subscription)}"
    )


def _schedule_cancellation(subscription, *, actor, reason, data) -> str:
    subscription = lifecycle.schedule_cancellation(
        subscription=subscription, actor=actor, reason=reason
    )
    runs = scheduled_cancellation_text(
        subscription, unpaid_financed=unpaid_financed_cycles(subscription)
    )
    return (
        f"{subscription}: cancellation scheduled. {runs}. Billing continues until then: "
        f"{recovery_balance_text(subscription)} still to pay."
    )


def _withdraw_scheduled_cancellation(subscription, *, actor, reason, data) -> str:
    subscription = lifecycle.withdraw_scheduled_cancellation(
        subscription=subscription, actor=actor, reason=reason
    )
    return (
        f"{subscription}: the scheduled cancellation was withdrawn. It stays "
        f"{subscription.get_status_display().lower()}{_next_billing(subscription)}."
    )


def _has_balance(subscription) -> bool:
    return subscription.recovery_cycles_remaining > 0


def _may_schedule_cancellation(subscription) -> bool:
    return (
        subscription.status in LIVE_STATUSES
        and _has_balance(subscription)
        and not subscription.has_scheduled_cancellation
        and open_switch(subscription) is None
    )


# --- Pause and resume ---------------------------------------------------------------------


def _next_billing(subscription: Subscription) -> str:
    if subscription.next_billing_at is None:
        return "; nothing more will be billed"
    return f"; next billing {day(subscription.next_billing_at)}"


def _pause(subscription, *, actor, reason, data) -> str:
    due = subscription.next_billing_at
    subscription = lifecycle.pause_subscription(
        subscription=subscription, actor=actor, reason=reason
    )
    was_due = f" (it was due {day(due)})" if due else ""
    return f"{subscription} paused; nothing is billed until it is resumed{was_due}."


def _resume(subscription, *, actor, reason, data) -> str:
    subscription = lifecycle.resume_subscription(
        subscription=subscription, actor=actor, reason=reason
    )
    return f"{subscription} resumed{_next_billing(subscription)}; the paused time is not billed."


# --- The card it is charged to -------------------------------------------------------------


def other_cards(subscription: Subscription):
    """The patient's other saved cards the clinic can charge now (the active gateway's)."""
    return PaymentMethod.objects.filter(
        patient_id=subscription.patient_id, gateway=active_gateway(), removed_at__isnull=True
    ).exclude(pk=subscription.payment_method_id)


class CardForm(ReasonForm):
    card = forms.ModelChoiceField(
        queryset=PaymentMethod.objects.none(),
        empty_label=None,
        label="New card",
    )
    field_order = ["card", "reason"]
    CARD_HELP = "Only this patient's saved cards that the clinic can charge now are listed."

    def __init__(self, *args, subscription: Subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["card"].queryset = other_cards(subscription)
        current = subscription.payment_method or "no card"
        self.fields["card"].help_text = f"Charged now to {current}. {self.CARD_HELP}"
        self.fields["card"].label_from_instance = lambda card: (
            f"{card}, expires {card.exp_month:02d}/{card.exp_year}"
        )


def _change_card(subscription, *, actor, reason, data) -> str:
    subscription = change_card(
        subscription=subscription, card=data["card"], actor=actor, reason=reason
    )
    when = subscription.next_billing_at
    next_charge = f" (next billing {day(when)})" if when else ""
    return (
        f"{subscription} will be charged to {subscription.payment_method} from its next "
        f"charge{next_charge}; nothing was charged now."
    )


# --- Switch plans (billing admins) ----------------------------------------------------------


def switch_timings(subscription: Subscription) -> list[SwitchTiming]:
    """The timings the switch service would accept for this subscription as it is now."""
    timings = []
    balance = _has_balance(subscription)
    if (
        subscription.status == S.ACTIVE
        and not lifecycle.open_cycle_invoices(subscription)
        and (not balance or subscription.plan.payoff_switch_allowed)
        and billing_card_for(subscription) is not None
    ):
        timings.append(SwitchTiming.NOW)
    if balance:
        timings.append(SwitchTiming.AFTER_RECOVERY)
    return timings


def plans_to_switch_to(subscription: Subscription):
    return Plan.objects.filter(active=True, product__active=True).exclude(pk=subscription.plan_id)


class SwitchForm(ReasonForm):
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), empty_label=None, label="New plan")
    timing = forms.ChoiceField(label="When")
    field_order = ["plan", "timing", "reason"]

    def __init__(self, *args, subscription: Subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plans_to_switch_to(subscription).select_related("product")
        self.fields["plan"].label_from_instance = plan_terms
        self.fields["timing"].choices = [
            (timing.value, timing.label) for timing in switch_timings(subscription)
        ]


def _may_switch(subscription) -> bool:
    return (
        subscription.status in LIVE_STATUSES
        and not subscription.has_scheduled_cancellation
        and open_switch(subscription) is None
        and bool(switch_timings(subscription))
        and plans_to_switch_to(subscription).exists()
    )


def _switch(subscription, *, actor, reason, data) -> str:
    switch = switching.switch_plan(
        subscription=subscription,
        plan=data["plan"],
        timing=SwitchTiming(data["timing"]),
        actor=actor,
        reason=reason,
    )
    plan = switch.target_plan.name
    if switch.status == SwitchStatus.SCHEDULED:
        return (
            f"Switch of {subscription} to {plan} scheduled: it starts after the final recovery "
            f"payment ({recovery_balance_text(subscription)} still to pay). {subscription} is "
            "billed as before until then."
        )
    payoff = ""
    if switch.payoff_order is not None:
        payoff = (
            f" The remaining balance was billed separately as {switch.payoff_order.number} "
            f"({format_cents(switch.payoff_order.total_cents, switch.payoff_order.currency)})."
        )
    if switch.status == SwitchStatus.COMPLETED:
        return (
            f"{subscription} switched to {plan}: {switch.replacement} is active and its first "
            f"payment was charged; {subscription} is cancelled.{payoff}"
        )
    return (
        f"Switch of {subscription} to {plan} is in progress: the gateway has not confirmed a "
        f"charge yet. {subscription} stays as it is until {switch.replacement} is paid.{payoff}"
    )


def _withdraw_scheduled_switch(subscription, *, actor, reason, data) -> str:
    switch = switching.withdraw_scheduled_switch(
        subscription=subscription, actor=actor, reason=reason
    )
    return (
        f"The scheduled switch of {subscription} to {switch.target_plan.name} was withdrawn; "
        f"{subscription} stays on {subscription.plan.name}."
    )


def _has_scheduled_switch(subscription) -> bool:
    switch = open_switch(subscription)
    return switch is not None and switch.status == SwitchStatus.SCHEDULED


def _subscription_form(subscription) -> dict:
    return {"subscription": subscription}


SUBSCRIPTION_TOOLS = (
    RecordTool(
        "cancel",
        "Cancel subscription…",
        CHANGE,
        "The subscription becomes CANCELLED now and future billing stops. Nothing is refunded, "
        "paid orders stay as they are, and a shipment already on its way is not stopped. "
        "Cancelled is final: it cannot be reactivated.",
        _cancel,
        offered=lambda sub: sub.status in LIVE_STATUSES and not _has_balance(sub),
        checklist=subscription_cancel_preflight,
    ),
    RecordTool(
        "schedule_cancellation",
        "Schedule cancellation…",
        CHANGE,
        "The subscription keeps billing the remaining financed payments, then cancels by itself "
        "after the final one. Until then nothing changes for the patient.",
        _schedule_cancellation,
        offered=_may_schedule_cancellation,
        checklist=subscription_cancel_preflight,
    ),
    RecordTool(
        "cancel_despite_balance",
        "Cancel now despite the balance…",
        lifecycle.OVERRIDE_RECOVERY_BALANCE,
        "The subscription becomes CANCELLED now although financed payments remain: they will "
        "not be billed. Nothing is refunded, paid orders stay as they are. Cancelled is final.",
        _cancel,
        offered=lambda sub: sub.status in LIVE_STATUSES and _has_balance(sub),
        checklist=subscription_cancel_preflight,
    ),
    RecordTool(
        "withdraw_scheduled_cancellation",
        "Withdraw scheduled cancellation…",
        CHANGE,
        "The scheduled cancellation is removed: the subscription goes on billing as usual after "
        "the final recovery payment. The request stays in the history.",
        _withdraw_scheduled_cancellation,
        offered=lambda sub: sub.status in LIVE_STATUSES and sub.has_scheduled_cancellation,
    ),
    RecordTool(
        "pause",
        "Pause…",
        CHANGE,
        "The subscription becomes PAUSED: nothing is billed until it is resumed. Orders already "
        "created are not affected.",
        _pause,
        offered=lambda sub: sub.status == S.ACTIVE and not _has_balance(sub),
    ),
    RecordTool(
        "pause_despite_balance",
        "Pause despite the balance…",
        lifecycle.OVERRIDE_RECOVERY_BALANCE,
        "The subscription becomes PAUSED although financed payments remain: they wait until it "
        "is resumed.",
        _pause,
        offered=lambda sub: sub.status == S.ACTIVE and _has_balance(sub),
    ),
    RecordTool(
        "resume",
        "Resume…",
        CHANGE,
        "The subscription becomes ACTIVE again; billing restarts from today (the paused time is "
        "never billed).",
        _resume,
        offered=lambda sub: sub.status == S.PAUSED and not sub.awaiting_payment,
    ),
    RecordTool(
        "resume_without_payment",
        "Resume without the open payment…",
        lifecycle.OVERRIDE_RECOVERY_BALANCE,
        "The subscription was paused because a payment failed; it becomes ACTIVE again before "
        "the open recovery invoice is paid. The invoice stays open.",
        _resume,
        offered=lambda sub: sub.status == S.PAUSED and sub.awaiting_payment,
    ),
    RecordTool(
        "change_card",
        "Change card…",
        CHANGE,
        "Future charges (renewals and payment-recovery retries) go to the card you choose, one "
        "of this patient's own saved cards. Nothing is charged now.",
        _change_card,
        form_class=CardForm,
        form_kwargs=_subscription_form,
        offered=lambda sub: sub.status in LIVE_STATUSES and other_cards(sub).exists(),
    ),
    RecordTool(
        "switch",
        "Switch plan…",
        lifecycle.SWITCH_PLAN,
        "A new subscription on the chosen plan is created and charged its first payment; a "
        "remaining financed balance is billed separately as a payoff. This subscription is "
        "cancelled only once the new one's first payment succeeded; if a charge fails it stays "
        "as it is. A switch after the final recovery payment waits until then.",
        _switch,
        form_class=SwitchForm,
        form_kwargs=_subscription_form,
        offered=_may_switch,
    ),
    RecordTool(
        "withdraw_scheduled_switch",
        "Withdraw scheduled switch…",
        lifecycle.SWITCH_PLAN,
        "The switch waiting for the final recovery payment is withdrawn; the subscription stays "
        "on its plan.",
        _withdraw_scheduled_switch,
        offered=_has_scheduled_switch,
    ),
)
