"""The audit records in the admin, for the people who may review the audit trail: the access
log, what staff were shown when they decided, and the chain's digests. Never to edit: the tables
are append-only."""

from django.contrib import admin
from django.utils.html import format_html_join

from audit.access import may_review_audit
from audit.models import AccessLogEntry, ChainDigest, DecisionRecord
from emr.kernel.admin_pages import ReadOnlyAdminMixin


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "user_label", "page", "record", "ip_address"]
    list_filter = ["page"]
    search_fields = ["user_label", "record", "patient__id"]
    date_hierarchy = "at"

    def has_view_permission(self, request, obj=None) -> bool:
        return may_review_audit(request.user)

    def has_module_permission(self, request) -> bool:
        return may_review_audit(request.user)


@admin.register(DecisionRecord)
class DecisionRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "action", "record_label", "actor", "door"]
    list_filter = ["action", "door"]
    search_fields = ["record_label", "actor", "reason"]
    date_hierarchy = "at"
    fields = [
        "at",
        "action",
        "record_label",
        "actor",
        "door",
        "reason",
        "heading",
        "checklist",
        "consequence",
        "does_not",
        "seen",
        "shown_sha256",
    ]
    readonly_fields = fields

    @admin.display(description="Checklist as shown")
    def checklist(self, record: DecisionRecord):
        return format_html_join(
            "\n",
            "<div><strong>{}</strong> {}: {}</div>",
            ((item["state"].upper(), item["label"], item["sentence"]) for item in record.items),
        )

    @admin.display(description="Said it does not automatically")
    def does_not(self, record: DecisionRecord):
        return format_html_join("\n", "<div>{}</div>", ((line,) for line in record.will_not_do))


@admin.register(ChainDigest)
class ChainDigestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["taken_at", "sequence", "chain_hash"]
    fields = list_display
    readonly_fields = fields
