from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from billing.order_status import transition_order
from emr.admin_actions import reasoned_action
from orders import services
from orders.models import Order, OrderItem, Product
from orders.states import OrderStatus


@admin.register(Product)
class ProductAdmin(SimpleHistoryAdmin):
    list_display = ["name", "kind", "price_cents", "currency", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["name"]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    can_delete = False
    fields = ["description", "quantity", "unit_price_cents", "total_cents"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _change_status(order, *, actor, reason, target):
    transition_order(order=order, target=target, actor=actor, reason=reason)


@admin.register(Order)
class OrderAdmin(SimpleHistoryAdmin):
    list_display = [
        "number",
        "patient",
        "kind",
        "status",
        "total_cents",
        "refunded_cents",
        "created_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["patient"]
    search_fields = ["number", "patient__email", "patient__last_name", "invoice__number"]
    readonly_fields = [
        "number",
        "status",
        "total_cents",
        "refunded_cents",
        "created_at",
        "updated_at",
    ]
    raw_id_fields = ["patient", "subscription", "created_by"]
    inlines = [OrderItemInline]
    actions = [
        reasoned_action(
            name="change_status",
            description="Change status (refund, cancel, reject, return, shipped, completed)…",
            run=_change_status,
            permission="orders.change_order_status",
            choices=[
                (status, status.label)
                for status in sorted({*services.STAFF_MOVES, OrderStatus.REFUNDED})
            ],
        )
    ]

    def has_add_permission(self, request) -> bool:
        # Orders come from the order service (API, checkout), which also issues the invoice.
        return False
