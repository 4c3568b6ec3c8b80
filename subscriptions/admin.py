"""Subscriptions and plans in the admin.

A subscription's page is read-only for every role: its patient, plan, card and dates are never
rewritten by a form. Each change is a tool on the page (subscriptions/admin_tools.py) calling
the lifecycle, card or switch service. A plan in use keeps its money terms: renewals read the
plan's price, financing and interval live, so changing them would change what every existing
subscriber pays or owes.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from simple_history.admin import SimpleHistoryAdmin

from emr.kernel.admin_actions import reasoned_action
from emr.kernel.admin_pages import ReadOnlyAdminMixin, RecordToolsMixin
from emr.kernel.errors import DomainError
from emr.kernel.money import format_cents, money_column
from emr.support.links import escalation_url
from emr.support.preflight import subscription_cancel_preflight
from subscriptions.admin_tools import (
    LIVE_STATUSES,
    SUBSCRIPTION_TOOLS,
    day,
    open_switch,
    plan_terms,
    recovery_balance_text,
    scheduled_cancellation_request,
    scheduled_cancellation_text,
)
from subscriptions.billing_cycle import billing_card_for
from subscriptions.models import Plan, PlanSwitch, Subscription, SubscriptionCycle
from subscriptions.scheduled import UNPAID_FINANCED_CYCLES
from subscriptions.states import SwitchTiming


@admin.register(Plan)
class PlanAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "product",
        money_column("price_cents", "Price"),
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

    def get_fields(self, request, obj=None):
        if _in_use(obj):
            terms = [field for field in Plan.TERMS if field != "price_cents"]
            return ["name", "active", "in_use", "price", *terms, "created_at"]
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if _in_use(obj):
            return ["in_use", "price", *Plan.TERMS, "created_at"]
        return ["created_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        active = form.base_fields.get("active")
        if active is not None and _in_use(obj):
            active.help_text = "Untick to stop new subscriptions; existing subscribers keep it."
        return form

    def has_delete_permission(self, request, obj=None) -> bool:
        # A plan is retired (active unticked), never deleted: its history explains old orders.
        return False

    @admin.display(description="In use")
    def in_use(self, plan: Plan) -> str:
        count = plan.subscriptions.count()
        users = (
            f"{count} subscription{' uses' if count == 1 else 's use'}"
            if count
            else "A scheduled plan switch leads to"
        )
        return (
            f"{users} this plan, so its price and terms are fixed: a new price is a new plan "
            "(add it, then untick Active here)."
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refused:
            # A subscription started on the plan while its form was open: Plan.save() refused.
            messages.error(request, refused.detail)
            return HttpResponseRedirect(request.path)

    @admin.display(description="Price per billing cycle")
    def price(self, plan: Plan) -> str:
        return format_cents(plan.price_cents, plan.currency)


def _in_use(plan: Plan | None) -> bool:
    return plan is not None and plan.in_use


TOOLS = {tool.name: tool for tool in SUBSCRIPTION_TOOLS}


def _list_action(tool_name: str):
    """The list's dropdown action doing what the page tool of that name does."""
    run = TOOLS[tool_name].run

    def action_run(subscription, *, actor, reason) -> str:
        return run(subscription, actor=actor, reason=reason, data={})

    return action_run


def _switch(subscription, *, actor, reason, target) -> str:
    data = {"plan": Plan.objects.get(pk=target), "timing": SwitchTiming.NOW}
    return TOOLS["switch"].run(subscription, actor=actor, reason=reason, data=data)


def _plans_on_sale():
    return [(str(plan.pk), str(plan)) for plan in Plan.objects.filter(active=True)]


class CycleInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SubscriptionCycle
    fields = ["number", "period_start", "order", "financed", "paid_at"]
    readonly_fields = fields
    extra = 0
    ordering = ["-number"]
    verbose_name_plural = "billing cycles"


class SwitchInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PlanSwitch
    fk_name = "subscription"
    fields = ["status", "target_plan", "payoff_order", "replacement", "requested_by", "reason"]
    readonly_fields = fields
    extra = 0


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
class SubscriptionAdmin(ReadOnlyAdminMixin, RecordToolsMixin, SimpleHistoryAdmin):
    list_display = [
        "__str__",
        "patient",
        "plan",
        "status",
        "next_billing",
        "recovery_balance",
        "cancellation_runs_on",
        "cancelled_on",
    ]
    list_filter = ["status", "awaiting_payment", ScheduledCancellationFilter, "plan"]
    list_select_related = ["patient", "plan"]
    search_fields = ["patient__email", "patient__last_name", "orders__number"]
    # What CS checks before cancelling (the guide): status, recovery balance, scheduled
    # cancellation notes, pending switch, unpaid recovery invoices (the cycles' orders).
    fieldsets = [
        (
            "Subscription",
            {
                "fields": [
                    "patient",
                    "plan_terms",
                    "card",
                    "started_at",
                    "next_billing_at",
                    "cycles_billed",
                    "financed_cycles_paid",
                    "recovery_balance",
                ]
            },
        ),
        (
            "Cancellation",
            {
                "fields": [
                    "scheduled_cancellation_runs",
                    "scheduled_cancellation_asked",
                    "cancelled_at",
                    "cancellation_cause",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    inlines = [SwitchInline, CycleInline]
    change_form_template = "admin/subscriptions/subscription/change_form.html"
    record_tools = SUBSCRIPTION_TOOLS

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("plan", "patient", "payment_method")
            .annotate(unpaid_financed_cycles=UNPAID_FINANCED_CYCLES)
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = self.get_object(request, object_id)
        if subscription is not None:
            charged_next = billing_card_for(subscription)
            running = subscription.status in LIVE_STATUSES
            extra_context = {
                **(extra_context or {}),
                "subscription": subscription,
                "balance": recovery_balance_text(subscription),
                "runs": scheduled_cancellation_text(
                    subscription, unpaid_financed=subscription.unpaid_financed_cycles
                ),
                "asked": scheduled_cancellation_request(subscription),
                "switch": open_switch(subscription),
                "charged_next": charged_next,
                "card_not_chargeable": running and charged_next != subscription.payment_method,
                "no_card": running and charged_next is None,
                "escalate_url": escalation_url(subscription=subscription),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    actions = [
        reasoned_action(
            name="cancel",
            description="Cancel (stops future billing)…",
            run=_list_action("cancel"),
            permission="subscriptions.change_subscription",
            checklist=subscription_cancel_preflight,
        ),
        reasoned_action(
            name="schedule_cancellation",
            description="Schedule cancellation after the final recovery payment…",
            run=_list_action("schedule_cancellation"),
            permission="subscriptions.change_subscription",
            checklist=subscription_cancel_preflight,
        ),
        reasoned_action(
            name="withdraw_scheduled_cancellation",
            description="Withdraw the scheduled cancellation…",
            run=_list_action("withdraw_scheduled_cancellation"),
            permission="subscriptions.change_subscription",
        ),
        reasoned_action(
            name="pause",
            description="Pause…",
            run=_list_action("pause"),
            permission="subscriptions.change_subscription",
        ),
        reasoned_action(
            name="resume",
            description="Resume…",
            run=_list_action("resume"),
            permission="subscriptions.change_subscription",
        ),
        reasoned_action(
            name="switch_plan",
            description="Switch plan now (payoff and replacement, billed separately)…",
            run=_switch,
            permission="subscriptions.switch_plan",
            choices=_plans_on_sale,
            choice_label="New plan",
        ),
        reasoned_action(
            name="withdraw_scheduled_switch",
            description="Withdraw the scheduled plan switch…",
            run=_list_action("withdraw_scheduled_switch"),
            permission="subscriptions.switch_plan",
        ),
    ]

    @admin.display(description="Plan")
    def plan_terms(self, subscription: Subscription) -> str:
        return plan_terms(subscription.plan)

    @admin.display(description="Card on the subscription")
    def card(self, subscription: Subscription) -> str:
        return str(subscription.payment_method or "none")

    @admin.display(description="Recovery balance")
    def recovery_balance(self, subscription: Subscription) -> str:
        return recovery_balance_text(subscription)

    @admin.display(description="Scheduled cancellation runs")
    def scheduled_cancellation_runs(self, subscription: Subscription) -> str:
        text = scheduled_cancellation_text(
            subscription, unpaid_financed=subscription.unpaid_financed_cycles
        )
        return text or "none scheduled"

    @admin.display(description="Scheduled cancellation runs")
    def cancellation_runs_on(self, subscription: Subscription) -> str | None:
        text = scheduled_cancellation_text(
            subscription, unpaid_financed=subscription.unpaid_financed_cycles, short=True
        )
        return text or None

    @admin.display(description="Next billing", ordering="next_billing_at")
    def next_billing(self, subscription: Subscription) -> str | None:
        return day(subscription.next_billing_at) if subscription.next_billing_at else None

    @admin.display(description="Cancelled", ordering="cancelled_at")
    def cancelled_on(self, subscription: Subscription) -> str | None:
        return day(subscription.cancelled_at) if subscription.cancelled_at else None

    @admin.display(description="Scheduled cancellation asked for")
    def scheduled_cancellation_asked(self, subscription: Subscription) -> str:
        return scheduled_cancellation_request(subscription) or self.get_empty_value_display()


@admin.register(PlanSwitch)
class PlanSwitchAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """Switches start from the subscription page, the API or the portal, through the service."""

    list_display = ["__str__", "status", "payoff_order", "replacement", "requested_at"]
    list_filter = ["status"]
    list_select_related = ["subscription", "target_plan", "payoff_order", "replacement"]
    fields = [
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
    readonly_fields = fields
