"""Pharmacy fulfilment in the admin: routes are edited here; pharmacy orders change only through
the actions, which call the services."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from emr.kernel.admin_actions import reasoned_action
from emr.kernel.admin_pages import ReadOnlyAdminMixin
from integrations.pharmacy import services
from integrations.pharmacy.models import (
    FulfilmentCheck,
    PharmacyOrder,
    PharmacyWebhookEvent,
    ProductPharmacyRoute,
)
from integrations.pharmacy.states import FulfilmentFinding


def _void(pharmacy_order, *, actor, reason) -> str:
    services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=reason)
    return (
        f"{pharmacy_order.reference} ({pharmacy_order.order}) is voided at DispensePro. This is "
        "not a refund, and the order's status did not change."
    )


def _send(pharmacy_order, *, actor, reason) -> str:
    if pharmacy_order.pharmacy in services.API_PHARMACIES:
        services.send_to_dispensepro(pharmacy_order=pharmacy_order, actor=actor, reason=reason)
        return f"{pharmacy_order.reference} ({pharmacy_order.order}) is sent to DispensePro."
    services.record_sent_manually(pharmacy_order=pharmacy_order, actor=actor, reason=reason)
    return (
        f"{pharmacy_order.reference} ({pharmacy_order.order}) is recorded as sent to "
        f"{pharmacy_order.get_pharmacy_display()}."
    )


def _record_check(pharmacy_order, *, actor, reason, target) -> str:
    check = services.record_fulfilment_check(
        pharmacy_order=pharmacy_order, finding=target, note=reason, actor=actor
    )
    pharmacy_order.refresh_from_db()
    return (
        f"{pharmacy_order.reference} ({pharmacy_order.order}): recorded "
        f"“{check.get_finding_display()}”. Its status is now "
        f"“{pharmacy_order.get_status_display()}”."
    )


def _refresh(pharmacy_order, *, actor, reason) -> str:
    pharmacy_order = services.refresh_from_dispensepro(pharmacy_order=pharmacy_order, actor=actor)
    return (
        f"{pharmacy_order.reference} ({pharmacy_order.order}): refreshed from DispensePro. "
        f"Its status is “{pharmacy_order.get_status_display()}”."
    )


@admin.register(ProductPharmacyRoute)
class ProductPharmacyRouteAdmin(SimpleHistoryAdmin):
    list_display = ["product", "pharmacy"]
    list_filter = ["pharmacy"]
    list_select_related = ["product"]
    search_fields = ["product__name"]
    raw_id_fields = ["product"]


class FulfilmentCheckInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = FulfilmentCheck
    extra = 0
    fields = ["checked_at", "finding", "note", "checked_by"]
    readonly_fields = fields


@admin.register(PharmacyOrder)
class PharmacyOrderAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = [
        "reference",
        "order",
        "pharmacy",
        "status",
        "submitted_at",
        "shipped_at",
        "tracking_number",
    ]
    list_filter = ["pharmacy", "status"]
    list_select_related = ["order", "order__patient"]
    search_fields = [
        "reference",
        "external_id",
        "tracking_number",
        "order__number",
        "order__patient__email",
        "order__patient__last_name",
    ]
    readonly_fields = [
        "order",
        "pharmacy",
        "reference",
        "external_id",
        "status",
        "last_error",
        "submit_attempts",
        "submitted_at",
        "shipped_at",
        "carrier",
        "tracking_number",
        "voided_at",
        "cancelled_at",
        "created_at",
        "updated_at",
    ]
    inlines = [FulfilmentCheckInline]
    actions = [
        reasoned_action(
            name="void_pharmacy_order",
            description="Void pharmacy order… (DispensePro, before shipment; not a refund)",
            run=_void,
            permission="pharmacy.void_pharmacyorder",
        ),
        reasoned_action(
            name="record_fulfilment_check",
            description="Record what the pharmacy said (pharmacies without a void)…",
            run=_record_check,
            permission="pharmacy.record_fulfilment_check",
            choices=FulfilmentFinding.choices,
        ),
        reasoned_action(
            name="send_to_pharmacy",
            description="Send to DispensePro again, or record sent to another pharmacy…",
            run=_send,
            permission="pharmacy.submit_pharmacyorder",
        ),
        reasoned_action(
            name="refresh_from_dispensepro",
            description="Refresh from DispensePro…",
            run=_refresh,
            permission="pharmacy.submit_pharmacyorder",
        ),
    ]


@admin.register(PharmacyWebhookEvent)
class PharmacyWebhookEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "source", "event_type", "outcome", "deliveries"]
    list_filter = ["source", "event_type", "outcome"]
    list_select_related = ["pharmacy_order"]
    search_fields = ["event_id", "pharmacy_order__reference"]
