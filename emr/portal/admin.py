"""What patients confirmed in the portal, for billing admins to read (never to edit)."""

from django.contrib import admin

from emr.kernel.admin_pages import ReadOnlyAdminMixin
from emr.portal.models import ConsequencesAcknowledgement


@admin.register(ConsequencesAcknowledgement)
class ConsequencesAcknowledgementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["confirmed_at", "subscription", "change", "patient", "ip_address"]
    list_filter = ["change"]
    list_select_related = ["subscription", "patient"]
    search_fields = ["patient__email", "patient__last_name"]
    date_hierarchy = "confirmed_at"
    fields = [
        "patient",
        "subscription",
        "change",
        "confirmed_at",
        "ip_address",
        "user_agent",
        "shown_sha256",
        "shown_text",
    ]
    readonly_fields = fields
