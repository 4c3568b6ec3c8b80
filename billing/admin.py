from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from billing.models import (
    GatewayEvent,
    GatewaySettings,
    Invoice,
    Payment,
    PaymentMethod,
    RefundAttempt,
)
from emr.kernel.money import money_column


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return not GatewaySettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PaymentMethod)
class PaymentMethodAdmin(SimpleHistoryAdmin):
    # Never the gateway token: staff see gateway, brand, last four, expiry and the default flag.
    list_display = [
        "patient",
        "gateway",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "created_at",
    ]
    list_filter = ["gateway", "is_default"]
    list_select_related = ["patient"]
    search_fields = ["patient__email", "last4"]
    exclude = ["gateway_token"]
    readonly_fields = [
        "patient",
        "gateway",
        "merchant_account",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # cards are vaulted at the active gateway through the card-saving service


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = [
        "kind",
        "status",
        "gateway",
        "amount_cents",
        "transaction_id",
        "refund_of",
        "card_brand",
        "card_last4",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(SimpleHistoryAdmin):
    list_display = [
        "number",
        "order",
        "status",
        money_column("amount_cents", "Amount"),
        "issued_at",
        "paid_at",
    ]
    list_filter = ["status"]
    list_select_related = ["order"]
    search_fields = ["number", "order__number", "order__patient__email"]
    readonly_fields = [
        "number",
        "order",
        "status",
        "amount_cents",
        "currency",
        "issued_at",
        "paid_at",
        "cancelled_at",
    ]
    inlines = [PaymentInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(SimpleHistoryAdmin):
    list_display = [
        "id",
        "invoice",
        "kind",
        "status",
        "gateway",
        money_column("amount_cents", "Amount"),
        "transaction_id",
        "needs_review",
        "created_at",
    ]
    list_filter = ["kind", "status", "gateway", "needs_review"]
    list_select_related = ["invoice"]
    search_fields = ["transaction_id", "invoice__number", "invoice__order__number"]
    readonly_fields = [field.name for field in Payment._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # payments are written by the charge and refund services only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RefundAttempt)
class RefundAttemptAdmin(SimpleHistoryAdmin):
    list_display = [
        "id",
        "order",
        "status",
        "amount_cents",
        "gateway",
        "requested_by_label",
        "door",
        "error_code",
        "created_at",
    ]
    list_filter = ["status", "gateway", "door"]
    list_select_related = ["order"]
    search_fields = ["order__number", "reference"]
    readonly_fields = [field.name for field in RefundAttempt._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # attempts are written by the refund flow only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GatewayEvent)
class GatewayEventAdmin(admin.ModelAdmin):
    list_display = ["event_type", "gateway", "event_id", "outcome", "received_at", "processed_at"]
    list_filter = ["gateway", "outcome", "event_type"]
    search_fields = ["event_id", "outcome_detail"]
    readonly_fields = [field.name for field in GatewayEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
