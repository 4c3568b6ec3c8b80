from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from billing.models import GatewaySettings, Invoice, Payment, PaymentMethod


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
    list_display = ["number", "order", "status", "amount_cents", "currency", "issued_at", "paid_at"]
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
        "amount_cents",
        "transaction_id",
        "created_at",
    ]
    list_filter = ["kind", "status", "gateway"]
    list_select_related = ["invoice"]
    search_fields = ["transaction_id", "invoice__number", "invoice__order__number"]
    readonly_fields = [field.name for field in Payment._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # payments are written by the charge and refund services only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
