"""EMR -> Orders -> Beluga Telehealth, and EMR -> Beluga Logs (the guide's two places to cancel a
visit from). Everything here is read-only. Cancelling a visit opens the order page's
"Cancel Beluga visit…" tool, whose confirmation page has the guide's checklist (payment,
prescription, fulfilment, subscription), so the visit is cancelled one way from every page."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from emr.kernel.admin_actions import reasoned_action
from emr.kernel.admin_pages import ReadOnlyAdminMixin
from integrations.beluga import services
from integrations.beluga.models import BelugaLog, BelugaMessage, BelugaVisit, BelugaWebhookEvent
from integrations.beluga.states import OPEN_VISIT_STATUSES


def _retry_submission(visit: BelugaVisit, *, actor, reason) -> str:
    visit = services.retry_submission(visit=visit, actor=actor, reason=reason)
    return f"The Beluga visit of {visit.order} is {visit.get_submit_status_display().lower()}."


def cancel_link(visit: BelugaVisit | None):
    if visit is None or visit.status not in OPEN_VISIT_STATUSES:
        return "-"
    url = reverse("admin:orders_order_tool", args=[visit.order_id, "cancel_visit"])
    return format_html('<a href="{}" class="cancel-visit">Cancel visit…</a>', url)


class BelugaLogInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = BelugaLog
    extra = 0
    fields = ["created_at", "direction", "operation", "http_status", "error", "duration_ms"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    show_change_link = True


class BelugaMessageInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = BelugaMessage
    extra = 0
    fields = ["sent_at", "channel", "sender", "body"]
    readonly_fields = fields


@admin.register(BelugaVisit)
class BelugaVisitAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = [
        "master_id",
        "order",
        "status",
        "cancel",
        "submit_status",
        "resolved_status",
        "submitted_at",
        "cancelled_at",
    ]
    list_filter = ["submit_status", "status", "resolved_status"]
    list_select_related = ["order", "order__patient"]
    search_fields = [
        "master_id",
        "order__number",
        "order__patient__email",
        "order__patient__last_name",
    ]
    readonly_fields = [
        "order",
        "cancel",
        "master_id",
        "submit_status",
        "submit_error",
        "submit_attempts",
        "submitted_at",
        "status",
        "resolved_status",
        "cancelled_at",
        "created_at",
        "updated_at",
    ]
    inlines = [BelugaMessageInline, BelugaLogInline]
    actions = [
        reasoned_action(
            name="retry_beluga_submission",
            description="Retry Beluga submission…",
            run=_retry_submission,
            permission="beluga.submit_belugavisit",
        ),
    ]

    @admin.display(description="Cancel")
    def cancel(self, visit: BelugaVisit):
        return cancel_link(visit)


@admin.register(BelugaLog)
class BelugaLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "direction",
        "operation",
        "master_id",
        "cancel",
        "http_status",
        "error",
        "duration_ms",
    ]
    list_filter = ["direction", "operation", "http_status"]
    list_select_related = ["visit"]
    search_fields = ["master_id", "visit__order__number"]
    date_hierarchy = "created_at"

    @admin.display(description="Cancel")
    def cancel(self, log: BelugaLog):
        return cancel_link(log.visit)


@admin.register(BelugaMessage)
class BelugaMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["sent_at", "channel", "sender", "visit"]
    list_filter = ["channel"]
    list_select_related = ["visit"]
    search_fields = ["visit__master_id", "visit__order__number", "external_id"]


@admin.register(BelugaWebhookEvent)
class BelugaWebhookEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "event_type", "master_id", "outcome", "deliveries"]
    list_filter = ["event_type", "outcome"]
    search_fields = ["event_id", "master_id"]
