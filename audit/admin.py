"""The access log in the admin: read-only, for the people who may review the audit trail."""

from django.contrib import admin

from audit.access import may_review_audit
from audit.models import AccessLogEntry
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
