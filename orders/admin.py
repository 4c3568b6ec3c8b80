from django.contrib import admin
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from billing.order_status import transition_order
from emr.kernel.admin_actions import reasoned_action
from emr.kernel.admin_pages import RecordToolsMixin
from emr.kernel.errors import DomainError
from emr.kernel.money import money_column
from emr.support.links import escalation_url
from emr.workflows.models import WorkflowEvent
from orders import services
from orders.admin_tools import ORDER_TOOLS
from orders.history import order_timeline
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
class OrderAdmin(RecordToolsMixin, SimpleHistoryAdmin):
    list_display = [
        "number",
        "patient",
        "kind",
        "status",
        money_column("total_cents", "Total"),
        money_column("refunded_cents", "Refunded"),
        "created_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["patient"]
    search_fields = ["number", "patient__email", "patient__last_name", "invoice__number"]
    # Status and money are shown formatted in the tools panel above the form; the status only
    # changes through the tools. The fulfilment facts stay editable for staff who may change
    # orders, and saving them goes through save(), so history records who set them.
    fields = [
        "number",
        "patient",
        "kind",
        "subscription",
        "created_by",
        "created_at",
        "lab_requisition_sent_at",
        "lab_results_received_at",
        "sent_to_pharmacy_at",
        "shipped_at",
        "completed_at",
    ]
    readonly_fields = ["number", "kind", "created_by", "created_at"]
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

    change_form_template = "admin/orders/order/change_form.html"
    record_tools = ORDER_TOOLS

    def has_add_permission(self, request) -> bool:
        # Orders come from the order service (API, checkout), which also issues the invoice.
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self._order_page(object_id)
        if order is not None:
            extra_context = {**(extra_context or {}), **self._tools_context(request, order)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _order_page(self, object_id):
        """The order with everything its page shows, in a fixed number of queries."""
        return (
            Order.objects.select_related("patient", "invoice", "subscription__plan", "beluga_visit")
            .prefetch_related("invoice__payments", "pharmacy_orders", "prescriptions")
            .filter(pk=object_id)
            .first()
        )

    def _tools_context(self, request, order):
        invoice = getattr(order, "invoice", None)
        return {
            "order": order,
            "locked": order.is_locked,
            "invoice": invoice,
            "payments": list(invoice.payments.all()) if invoice else [],
            "timeline": order_timeline(order)[:50],
            "events": WorkflowEvent.objects.filter(subject_key=f"order:{order.pk}").order_by("-id")[
                :20
            ],
            "visit": getattr(order, "beluga_visit", None),
            "pharmacy_orders": list(order.pharmacy_orders.all()),
            "escalate_url": escalation_url(order=order),
        }

    def refusal_message(self, order, error: DomainError):
        return format_html(
            'Refused ({}): {} <a href="{}">Escalate with these details</a>',
            error.code,
            error.detail,
            escalation_url(order=order, message=f"{error.code}: {error.detail}"),
        )
