from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from emr.admin_actions import reasoned_action
from subscriptions import services
from subscriptions.models import Plan, Subscription


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
        "active",
    ]
    list_filter = ["interval", "active"]
    list_select_related = ["product"]
    search_fields = ["name"]


def _cancel(subscription, *, actor, reason):
    services.cancel_subscription(subscription=subscription, actor=actor, reason=reason)


def _pause(subscription, *, actor, reason):
    services.pause_subscription(subscription=subscription, actor=actor, reason=reason)


def _resume(subscription, *, actor, reason):
    services.resume_subscription(subscription=subscription, actor=actor, reason=reason)


@admin.register(Subscription)
class SubscriptionAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "patient", "plan", "status", "next_billing_at", "cancelled_at"]
    list_filter = ["status", "plan"]
    list_select_related = ["patient", "plan"]
    search_fields = ["patient__email", "patient__last_name", "orders__number"]
    readonly_fields = ["status", "cycles_billed", "cancelled_at", "created_at", "updated_at"]
    raw_id_fields = ["patient", "payment_method"]
    actions = [
        reasoned_action(
            name="cancel",
            description="Cancel (stops future billing)…",
            run=_cancel,
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
    ]
