from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from emr.kernel.admin_actions import reasoned_action
from emr.kernel.money import format_cents
from emr.support.links import escalation_url
from emr.support.preflight import subscription_cancel_preflight
from subscriptions import lifecycle, switching
from subscriptions.models import Plan, PlanSwitch, Subscription, SubscriptionCycle


@admin.register(Plan)
class PlanAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "product",
        "price_cents",
        "interval",
        "interval_count",
        "financed_cycles",
        "term_cycles",
        "payoff_switch_allowed",
        "active",
    ]
    list_filter = ["interval", "active"]
    list_select_related = ["product"]
    search_fields = ["name"]


def _cancel(subscription, *, actor, reason):
    lifecycle.cancel_subscription(subscription=subscription, actor=actor, reason=reason)


def _pause(subscription, *, actor, reason):
    lifecycle.pause_subscription(subscription=subscription, actor=actor, reason=reason)


def _resume(subscription, *, actor, reason):
    lifecycle.resume_subscription(subscription=subscription, actor=actor, reason=reason)


def _schedule_cancellation(subscription, *, actor, reason):
    lifecycle.schedule_cancellation(subscription=subscription, actor=actor, reason=reason)


def _withdraw_scheduled_cancellation(subscription, *, actor, reason):
    lifecycle.withdraw_scheduled_cancellation(subscription=subscription, actor=actor, reason=reason)


def _withdraw_scheduled_switch(subscription, *, actor, reason):
    switching.withdraw_scheduled_switch(subscription=subscription, actor=actor, reason=reason)


def _switch(subscription, *, actor, reason, target):
    plan = Plan.objects.get(pk=target)
    switching.switch_plan(subscription=subscription, plan=plan, actor=actor, reason=reason)


def _plans_on_sale():
    return [(str(plan.pk), str(plan)) for plan in Plan.objects.filter(active=True)]


class CycleInline(admin.TabularInline):
    model = SubscriptionCycle
    fields = ["number", "period_start", "order", "financed", "paid_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class SwitchInline(admin.TabularInline):
    model = PlanSwitch
    fk_name = "subscription"
    fields = ["status", "target_plan", "payoff_order", "replacement", "requested_by", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ScheduledCancellationFilter(admin.SimpleListFilter):
    title = "scheduled cancellation"
    parameter_name = "scheduled_cancellation"

    def lookups(self, request, model_admin):
        return [("yes", "Scheduled"), ("no", "None")]

    def queryset(self, request, queryset):
        if self.value() in {"yes", "no"}:
            return queryset.filter(cancellation_scheduled_at__isnull=self.value() == "no")
        return queryset


@admin.register(Subscription)
class SubscriptionAdmin(SimpleHistoryAdmin):
    list_display = [
        "__str__",
        "patient",
        "plan",
        "status",
        "next_billing_at",
        "recovery_balance",
        "cancellation_scheduled_at",
        "cancelled_at",
    ]
    list_filter = ["status", "awaiting_payment", ScheduledCancellationFilter, "plan"]
    list_select_related = ["patient", "plan"]
    search_fields = ["patient__email", "patient__last_name", "orders__number"]
    # What CS checks before cancelling (the guide): status, recovery balance, scheduled
    # cancellation notes, pending switch (inline), unpaid recovery invoices (the orders).
    readonly_fields = [
        "status",
        "awaiting_payment",
        "cycles_billed",
        "financed_cycles_paid",
        "recovery_balance",
        "cancellation_scheduled_at",
        "cancellation_scheduled_by",
        "cancellation_scheduled_reason",
        "cancelled_at",
        "cancellation_cause",
        "created_at",
        "updated_at",
    ]
    raw_id_fields = ["patient", "payment_method"]
    inlines = [SwitchInline, CycleInline]
    change_form_template = "admin/subscriptions/subscription/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = Subscription.objects.filter(pk=object_id).first()
        if subscription is not None:
            extra_context = {
                **(extra_context or {}),
                "escalate_url": escalation_url(subscription=subscription),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    actions = [
        reasoned_action(
            name="cancel",
            description="Cancel (stops future billing)…",
            run=_cancel,
            permission="subscriptions.change_subscription",
            checklist=subscription_cancel_preflight,
        ),
        reasoned_action(
            name="schedule_cancellation",
            description="Schedule cancellation after the final recovery payment…",
            run=_schedule_cancellation,
            permission="subscriptions.change_subscription",
        ),
        reasoned_action(
            name="withdraw_scheduled_cancellation",
            description="Withdraw the scheduled cancellation…",
            run=_withdraw_scheduled_cancellation,
            permission="subscriptions.change_subscription",
        ),
        reasoned_action(
            name="pause",
            description="Pause…",
            run=_pause,
            permission="subscriptions.change_subscription",
        ),
        reasoned_action(
            name="resume",
            description="Resume…",
            run=_resume,
            permission="subscriptions.change_subscription",
        ),
        reasoned_action(
            name="switch_plan",
            description="Switch plan (payoff and replacement, billed separately)…",
            run=_switch,
            permission="subscriptions.switch_plan",
            choices=_plans_on_sale,
            choice_label="New plan",
        ),
        reasoned_action(
            name="withdraw_scheduled_switch",
            description="Withdraw the scheduled plan switch…",
            run=_withdraw_scheduled_switch,
            permission="subscriptions.switch_plan",
        ),
    ]

    @admin.display(description="Recovery balance")
    def recovery_balance(self, subscription: Subscription) -> str:
        cycles = subscription.recovery_cycles_remaining
        if not cycles:
            return "none"
        amount = format_cents(subscription.recovery_balance_cents, subscription.plan.currency)
        return f"{amount} ({cycles} payment{'s' if cycles != 1 else ''})"


@admin.register(PlanSwitch)
class PlanSwitchAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "status", "payoff_order", "replacement", "requested_at"]
    list_filter = ["status"]
    list_select_related = ["subscription", "target_plan", "payoff_order", "replacement"]
    readonly_fields = [
        "subscription",
        "target_plan",
        "status",
        "payoff_order",
        "replacement",
        "requested_by",
        "reason",
        "failure_message",
        "requested_at",
        "completed_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # switches start from the API or the portal, through the service
