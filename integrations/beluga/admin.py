"""EMR -> Orders -> Beluga Telehealth, and EMR -> Beluga Logs (the guide's two places to cancel a
visit from). Everything here is read-only but the actions, which call the services."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from emr.kernel.admin_actions import reasoned_action
from emr.kernel.admin_pages import ReadOnlyAdminMixin
from emr.kernel.errors import NotFound
from integrations.beluga import services
from integrations.beluga.models import BelugaLog, BelugaMessage, BelugaVisit, BelugaWebhookEvent


def _cancel_visit(visit: BelugaVisit, *, actor, reason) -> None:
    services.cancel_visit(visit=visit, actor=actor, reason=reason)


def _retry_submission(visit: BelugaVisit, *, actor, reason) -> None:
    services.retry_submission(visit=visit, actor=actor, reason=reason)


def _cancel_logged_visit(log: BelugaLog, *, actor, reason) -> None:
    if log.visit is None:
        raise NotFound("This log row belongs to no visit here.", code="beluga.no_visit")
    services.cancel_visit(visit=log.visit, actor=actor, reason=reason)


CANCEL_DESCRIPTION = "Cancel Beluga visit… (the visit only: no refund, order stays as it is)"


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
        "submit_status",
        "status",
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
            name="cancel_beluga_visit",
            description=CANCEL_DESCRIPTION,
            run=_cancel_visit,
            permission="beluga.cancel_belugavisit",
        ),
        reasoned_action(
            name="retry_beluga_submission",
            description="Retry Beluga submission…",
            run=_retry_submission,
            permission="beluga.submit_belugavisit",
        ),
    ]


@admin.register(BelugaLog)
class BelugaLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "direction",
        "operation",
        "master_id",
        "http_status",
        "error",
        "duration_ms",
    ]
    list_filter = ["direction", "operation", "http_status"]
    list_select_related = ["visit"]
    search_fields = ["master_id", "visit__order__number"]
    date_hierarchy = "created_at"
    actions = [
        reasoned_action(
            name="cancel_logged_beluga_visit",
            description=CANCEL_DESCRIPTION,
            run=_cancel_logged_visit,
            permission="beluga.cancel_belugavisit",
        )
    ]


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
