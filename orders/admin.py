from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from billing.models import SessionPackage
from billing.packages import ledgers
from billing.states import PaymentKind, PaymentStatus
from emr.documents import OPEN_STATUSES, missing_documents
from emr.kernel.admin_actions import reasoned_action
from emr.kernel.admin_pages import ReadOnlyAdminMixin, RecordToolsMixin
from emr.kernel.errors import DomainError
from emr.kernel.money import format_cents, money_column
from emr.support.links import escalation_url
from emr.support.preflight import Action, order_preflight, refund_summary
from emr.workflows.models import WorkflowEvent
from orders.admin_tools import ORDER_TOOLS, change_order_status, refund
from orders.history import order_timeline
from orders.models import Order, OrderItem, Product
from orders.states import OrderStatus

# What an existing order reads from its products: recalculation asks whether they need an
# intake, labs or a prescription, and workflow payloads carry their kind. Once a product has
# been ordered these stay as they were sold; the rest of the catalogue only shapes new orders.
FIELDS_ORDERS_READ = ["kind", "requires_intake", "requires_labs", "requires_prescription"]


@admin.register(Product)
class ProductAdmin(SimpleHistoryAdmin):
    """The catalogue: billing admins edit it (a price or a name only shapes orders placed
    afterwards: order lines keep what they were sold at), but never what existing orders read."""

    list_display = ["name", "kind", "price_cents", "currency", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["name"]
    filter_horizontal = ["required_documents"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and OrderItem.objects.filter(product=obj).exists():
            return FIELDS_ORDERS_READ
        return []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a product is retired by unticking "active"; orders keep pointing at it


class OrderItemInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderItem
    extra = 0
    fields = ["description", "quantity", "unit_price", "total", "refund_terms", "sessions"]
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("order", "refund_policy_version__policy", "package")
            .prefetch_related("package__redemptions")
        )

    @admin.display(description="Refund terms (as sold)")
    def refund_terms(self, item: OrderItem) -> str:
        version = item.refund_policy_version
        if version is None:
            return "No refund policy"
        return f"{version.policy.name}, version {version.version}: {version.text}"

    @admin.display(description="Sessions")
    def sessions(self, item: OrderItem):
        package = getattr(item, "package", None)
        if package is None:
            return "-"
        used = len(package.redemptions.all())
        expiry = f", expires {package.expires_at:%d %b %Y}" if package.expires_at else ""
        return format_html(
            '<a href="{}">{} of {} used{}</a>',
            reverse("admin:billing_sessionpackage_change", args=[package.pk]),
            used,
            package.sessions_total,
            expiry,
        )

    @admin.display(description="Unit price")
    def unit_price(self, item: OrderItem) -> str:
        return format_cents(item.unit_price_cents, item.order.currency)

    @admin.display(description="Total")
    def total(self, item: OrderItem) -> str:
        return format_cents(item.total_cents, item.order.currency)


def _cancel(order, *, actor, reason) -> str:
    return change_order_status(order, actor=actor, reason=reason, target=OrderStatus.CANCELLED)


def _refund_in_full(order, *, actor, reason) -> str:
    return refund(order, actor=actor, reason=reason)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, RecordToolsMixin, SimpleHistoryAdmin):
    """Read-only for everyone: status, money and fulfilment facts change through the tools on
    the page (and the bulk actions), which call the services and recalculate the order."""

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
    # Status and money are shown formatted in the tools panel above these.
    fieldsets = [
        (
            "Order",
            {"fields": ["number", "patient", "kind", "subscription", "created_by", "created_at"]},
        ),
        (
            "Fulfilment facts (recorded by the tools above and by the pharmacy)",
            {
                "fields": [
                    "lab_requisition_sent_at",
                    "lab_results_received_at",
                    "sent_to_pharmacy_at",
                    "shipped_at",
                    "completed_at",
                ]
            },
        ),
    ]
    readonly_fields = [name for _, section in fieldsets for name in section["fields"]]
    inlines = [OrderItemInline]
    # Bulk work a CS agent does: close orders created by mistake, refund a patient's orders.
    # Each order gets its own checklist on the confirmation page and its own sentence after.
    actions = [
        reasoned_action(
            name="cancel_orders",
            description="Cancel the selected orders… (operational only: no money moves)",
            run=_cancel,
            permission="orders.change_order_status",
            checklist=lambda order: order_preflight(order, Action.CANCEL),
        ),
        reasoned_action(
            name="refund_orders",
            description="Refund the selected orders in full…",
            run=_refund_in_full,
            permission="orders.refund_order",
            checklist=lambda order: order_preflight(order, Action.REFUND),
            summary=refund_summary,
        ),
    ]

    change_form_template = "admin/orders/order/change_form.html"
    record_tools = ORDER_TOOLS

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
        payments = list(invoice.payments.all()) if invoice else []
        return {
            "order": order,
            "locked": order.is_locked,
            "invoice": invoice,
            "payments": payments,
            "failed_charges": sum(
                p.kind == PaymentKind.CHARGE and p.status == PaymentStatus.FAILED for p in payments
            ),
            "timeline": order_timeline(order)[:50],
            "events": WorkflowEvent.objects.filter(subject_key=f"order:{order.pk}").order_by("-id")[
                :20
            ],
            "visit": getattr(order, "beluga_visit", None),
            "pharmacy_orders": list(order.pharmacy_orders.all()),
            "escalate_url": escalation_url(order=order),
            "package_ledgers": ledgers(SessionPackage.objects.filter(order_item__order=order)),
            # What the patient still has to sign before the order goes on.
            "unsigned_documents": missing_documents(order) if order.status in OPEN_STATUSES else [],
        }

    def refusal_message(self, order, error: DomainError):
        return format_html(
            'Refused ({}): {} <a href="{}">Escalate with these details</a>',
            error.code,
            error.detail,
            escalation_url(order=order, message=f"{error.code}: {error.detail}"),
        )
