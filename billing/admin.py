"""Billing in the admin: every page is read-only, for every role. Money moves through the order
page's tools; the active gateway and saved cards change through the tools on their own pages,
which call `billing.payments`."""

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from simple_history.admin import SimpleHistoryAdmin

from billing import payments
from billing.models import (
    GatewayEvent,
    GatewaySettings,
    Invoice,
    Payment,
    PaymentMethod,
    RefundAttempt,
    RefundPolicy,
    RefundPolicyVersion,
    SessionPackage,
    SessionRedemption,
)
from billing.states import Gateway
from emr.kernel.admin_pages import ReadOnlyAdminMixin, RecordTool, RecordToolsMixin
from emr.kernel.money import format_cents, money_column
from emr.support.preflight import card_removal_preflight, gateway_switch_preflight
from integrations.gateways import registry


def _switch_tool(gateway: Gateway) -> RecordTool:
    def run(settings_row, *, actor, reason, data) -> str:
        payments.set_active_gateway(gateway=gateway, actor=actor, reason=reason)
        return (
            f"{gateway.label} is now the active gateway: it takes every new charge and saved "
            "card. Refunds still go back through the gateway of each original payment."
        )

    return RecordTool(
        f"switch_to_{gateway}",
        f"Make {gateway.label} the active gateway…",
        "billing.change_gatewaysettings",
        f"New charges, invoice payments, saved cards and renewals go through {gateway.label} "
        "from now on. Cards saved in another gateway's vault cannot be charged there.",
        run,
        offered=lambda settings_row: settings_row.active_gateway != gateway,
        checklist=lambda settings_row: gateway_switch_preflight(gateway),
    )


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(ReadOnlyAdminMixin, RecordToolsMixin, SimpleHistoryAdmin):
    fields = ["active_gateway", "gateways", "updated_at"]
    readonly_fields = fields
    record_tools = tuple(_switch_tool(gateway) for gateway in Gateway)
    change_form_template = "admin/billing/record_change_form.html"

    def changelist_view(self, request, extra_context=None):
        # One row, one page: the list would only stand between staff and the switch.
        if not self.has_view_permission(request):
            return super().changelist_view(request, extra_context)
        settings_row = GatewaySettings.load()
        return HttpResponseRedirect(
            reverse("admin:billing_gatewaysettings_change", args=[settings_row.pk])
        )

    @admin.display(description="Configured on this server")
    def gateways(self, settings_row):
        lines = []
        for gateway in Gateway:
            missing = registry.missing_settings(gateway)
            state = f"not configured ({', '.join(missing)} not set)" if missing else "configured"
            lines.append((gateway.label, state))
        return format_html_join(mark_safe("<br>"), "{}: {}", lines)


def _make_default(card, *, actor, reason, data) -> str:
    payments.set_default_card(card=card, actor=actor, reason=reason)
    return f"{card} is now the default card of {card.patient.full_name}."


def _remove(card, *, actor, reason, data) -> str:
    was_default = card.is_default
    payments.remove_card(card=card, actor=actor, reason=reason)
    sentence = f"{card} of {card.patient.full_name} is removed: the app will not charge it again."
    return f"{sentence} No card is the default now." if was_default else sentence


CARD_TOOLS = (
    RecordTool(
        "make_default",
        "Make this the default card…",
        "billing.add_paymentmethod",  # the role that saves a patient's cards manages them
        "New charges and renewals that have no card of their own use this card.",
        _make_default,
        offered=lambda card: (
            card.removed_at is None
            and not card.is_default
            and card.gateway == payments.active_gateway()
        ),
    ),
    RecordTool(
        "remove",
        "Remove card…",
        "billing.add_paymentmethod",
        "The card is marked removed: the app never charges it again. A card an active or "
        "paused subscription is charged to is refused.",
        _remove,
        offered=lambda card: card.removed_at is None,
        checklist=card_removal_preflight,
    ),
)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdminMixin, RecordToolsMixin, SimpleHistoryAdmin):
    # Never the gateway token: staff see gateway, brand, last four, expiry and the default flag.
    list_display = [
        "patient",
        "gateway",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "removed_at",
        "created_at",
    ]
    list_filter = ["gateway", "is_default"]
    list_select_related = ["patient"]
    search_fields = ["patient__email", "last4"]
    fields = [
        "patient",
        "gateway",
        "chargeable",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "removed_at",
        "created_at",
    ]
    readonly_fields = fields
    record_tools = CARD_TOOLS
    change_form_template = "admin/billing/record_change_form.html"

    @admin.display(description="Can be charged now")
    def chargeable(self, card) -> str:
        if card.removed_at is not None:
            return "No: removed."
        active = payments.active_gateway()
        if card.gateway != active:
            return (
                f"No: it is in the {card.get_gateway_display()} vault and the clinic charges "
                f"through {Gateway(active).label}. The patient must save the card again."
            )
        return "Yes."


class PaymentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Payment
    extra = 0
    fields = [
        "kind",
        "status",
        "gateway",
        "amount",
        "transaction_id",
        "refund_of",
        "card_brand",
        "card_last4",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="Amount")
    def amount(self, payment: Payment) -> str:
        return format_cents(payment.amount_cents, payment.currency)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """Invoices change with their order: refund or cancel from the order's page."""

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
    fields = [
        "number",
        "order_page",
        "status",
        "amount",
        "issued_at",
        "paid_at",
        "cancelled_at",
    ]
    readonly_fields = fields
    inlines = [PaymentInline]

    @admin.display(description="Amount")
    def amount(self, invoice: Invoice) -> str:
        return format_cents(invoice.amount_cents, invoice.currency)

    @admin.display(description="Order")
    def order_page(self, invoice):
        url = reverse("admin:orders_order_change", args=[invoice.order_id])
        return format_html(
            '<a href="{}">{}</a> (refund, cancel and the other tools are on its page)',
            url,
            invoice.order,
        )


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """Payments are written by the charge and refund services only."""

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


@admin.register(RefundAttempt)
class RefundAttemptAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """Attempts are written by the refund flow and resolved by it or the reconciler."""

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


@admin.register(GatewayEvent)
class GatewayEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event_type", "gateway", "event_id", "outcome", "received_at", "processed_at"]
    list_filter = ["gateway", "outcome", "event_type"]
    search_fields = ["event_id", "outcome_detail"]
    readonly_fields = [field.name for field in GatewayEvent._meta.fields]


class PolicyVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Every version side by side, newest first: what patients read under each."""

    model = RefundPolicyVersion
    extra = 0
    fields = ["version", "text", "rules", "created_at", "created_by_label"]
    readonly_fields = fields
    ordering = ["-version"]


@admin.register(RefundPolicy)
class RefundPolicyAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """Read-only: a policy is written and revised through the API (each edit a new version),
    so no version a patient accepted can be rewritten here."""

    list_display = ["name", "current_version", "used_by"]
    search_fields = ["name"]
    fields = ["name", "used_by", "created_at"]
    readonly_fields = fields
    inlines = [PolicyVersionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("versions", "products")

    @admin.display(description="Current version")
    def current_version(self, policy: RefundPolicy) -> int:
        return max(version.version for version in policy.versions.all())

    @admin.display(description="Products using it")
    def used_by(self, policy: RefundPolicy) -> str:
        return ", ".join(product.name for product in policy.products.all()) or "none"


class RedemptionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SessionRedemption
    extra = 0
    fields = ["redeemed_at", "provider", "appointment_ref", "note", "recorded_by_label"]
    readonly_fields = fields


@admin.register(SessionPackage)
class SessionPackageAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """The usage log: each session redeemed, when, by whom, with the chart note."""

    list_display = ["__str__", "patient", "order_number", "used", "expires_at"]
    list_select_related = ["patient", "order_item__order"]
    search_fields = ["order_item__order__number", "patient__email", "patient__last_name"]
    fields = ["patient", "order_number", "product", "used", "opened_at", "expires_at"]
    readonly_fields = fields
    inlines = [RedemptionInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("order_item__order")
            .prefetch_related("redemptions")
        )

    @admin.display(description="Order")
    def order_number(self, package: SessionPackage) -> str:
        return package.order_item.order.number

    @admin.display(description="Product")
    def product(self, package: SessionPackage) -> str:
        return package.order_item.description

    @admin.display(description="Sessions used")
    def used(self, package: SessionPackage) -> str:
        used = len(package.redemptions.all())
        return f"{used} of {package.sessions_total} ({package.sessions_total - used} left)"
