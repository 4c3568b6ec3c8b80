"""Billing in the admin: every page is read-only, for every role. Money moves through the order
page's tools; the active gateway and saved cards change through the tools on their own pages,
which call `billing.payments`."""

from datetime import UTC, datetime, time

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from simple_history.admin import SimpleHistoryAdmin

from audit.timeline import describe_actor
from billing import dispute_evidence, disputes, evidence_packet, payments
from billing.models import (
    Dispute,
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
from billing.states import Gateway, PaymentKind, PaymentStatus
from emr.kernel.admin_actions import ReasonForm
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


class ChargebackForm(ReasonForm):
    case_number = forms.CharField(
        max_length=100, help_text="The processor's case or reference number for this chargeback."
    )
    amount_cents = forms.IntegerField(
        min_value=1, label="Disputed amount (cents)", help_text="As the processor's notice says."
    )
    reason_code = forms.CharField(
        max_length=100,
        label="Chargeback reason",
        help_text="The reason code or words on the notice, e.g. 13.1 merchandise not received.",
    )
    evidence_due_by = forms.DateField(
        required=False,
        help_text="The date the processor needs the evidence by (YYYY-MM-DD).",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, payment=None, **kwargs):
        super().__init__(*args, **kwargs)
        if payment is not None:
            self.fields["amount_cents"].initial = payment.amount_cents
        self.fields["reason"].label = "Note for the audit history"


def _enter_chargeback(payment, *, actor, reason, data) -> str:
    due = data.get("evidence_due_by")
    dispute = disputes.enter_chargeback(
        payment=payment,
        case_number=data["case_number"],
        amount_cents=data["amount_cents"],
        reason=data["reason_code"],
        evidence_due_by=datetime.combine(due, time(23, 59), UTC) if due else None,
        actor=actor,
        note=reason,
    )
    return (
        f"Chargeback {dispute.gateway_dispute_id} entered on {payment.invoice.order.number}. "
        "Download its evidence packet from the dispute's page and upload it in the processor's "
        "portal."
    )


PAYMENT_TOOLS = (
    RecordTool(
        "enter_chargeback",
        "Enter an NMI chargeback…",
        "billing.add_dispute",
        "A dispute is recorded on this charge with the processor's case number, amount, reason "
        "and due date, and the clinic's dispute.opened automations run. No money moves; NMI "
        "takes the evidence in its own portal.",
        _enter_chargeback,
        form_class=ChargebackForm,
        offered=lambda payment: (
            payment.gateway == Gateway.NMI
            and payment.kind == PaymentKind.CHARGE
            and payment.status == PaymentStatus.SUCCEEDED
        ),
        form_kwargs=lambda payment: {"payment": payment},
    ),
)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, RecordToolsMixin, SimpleHistoryAdmin):
    """Payments are written by the charge and refund services only; an NMI chargeback is
    entered on its charge's page (a tool calling `billing.disputes`)."""

    change_form_template = "admin/billing/record_change_form.html"
    record_tools = PAYMENT_TOOLS

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


# --- Disputes ---------------------------------------------------------------------------------


def _submit_evidence(dispute, *, actor, reason, data) -> str:
    order = dispute.payment.invoice.order
    submission = dispute_evidence.submit_evidence(
        dispute=dispute, build_packet=lambda: evidence_packet.render(order), actor=actor
    )
    dispute.refresh_from_db()
    return (
        f"Evidence of dispute {dispute.gateway_dispute_id} submitted to Stripe "
        f"(file {submission.file_id}). Its status is now “{dispute.get_status_display()}”: "
        "the bank decides. Evidence is sent once; submitting again changes nothing."
    )


DISPUTE_TOOLS = (
    RecordTool(
        "submit_evidence",
        "Submit the evidence packet to Stripe…",
        "billing.submit_evidence",
        "The order's evidence packet (the PDF below: order, refund terms and acceptance, "
        "sessions used, messages, proof of payment, refunds, audit trail) is uploaded to Stripe "
        "and submitted as this dispute's evidence. Stripe takes evidence once: after this, the "
        "bank decides.",
        _submit_evidence,
        offered=lambda dispute: (
            dispute.gateway == Gateway.STRIPE
            and dispute.is_open
            and getattr(getattr(dispute, "submission", None), "status", "") != "SUBMITTED"
        ),
    ),
)


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdminMixin, RecordToolsMixin, SimpleHistoryAdmin):
    """Disputes come from Stripe's webhooks or the NMI chargeback tool on a payment's page;
    they are read here, soonest evidence due first, and their evidence submitted by a tool."""

    # What a billing admin reads first comes first: by when, which order, how much.
    list_display = [
        "due",
        "order_number",
        money_column("amount_cents", "Amount"),
        "status",
        "evidence",
        "reason",
        "gateway_dispute_id",
    ]
    list_display_links = ["gateway_dispute_id"]
    list_filter = ["status", "gateway"]
    list_select_related = ["payment__invoice__order", "submission"]
    search_fields = ["gateway_dispute_id", "payment__invoice__order__number"]
    fields = [
        "gateway_dispute_id",
        "order_number",
        "gateway",
        "amount",
        "reason",
        "status",
        "due",
        "opened_at",
        "closed_at",
        "entered_by",
        "note",
        "evidence",
        "packet",
    ]
    readonly_fields = fields
    change_form_template = "admin/billing/record_change_form.html"
    record_tools = DISPUTE_TOOLS

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment__invoice__order")

    @admin.display(description="Order", ordering="payment__invoice__order__number")
    def order_number(self, dispute):
        order = dispute.payment.invoice.order
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:orders_order_change", args=[order.pk]),
            order.number,
        )

    @admin.display(description="Entered by")
    def entered_by(self, dispute):
        return describe_actor(dispute.entered_by_label)

    @admin.display(description="Amount")
    def amount(self, dispute):
        return format_cents(dispute.amount_cents, dispute.currency)

    @admin.display(description="Evidence due", ordering="evidence_due_by")
    def due(self, dispute):
        if dispute.evidence_due_by is None:
            return "no date given"
        days = (dispute.evidence_due_by - timezone.now()).days
        when = f"{dispute.evidence_due_by:%d %b %Y}"
        if not dispute.is_open:
            return when
        if days < 0:
            return f"{when} (past due)"
        return f"{when} (in {days} day{'s' if days != 1 else ''})"

    @admin.display(description="Evidence")
    def evidence(self, dispute):
        submission = getattr(dispute, "submission", None)
        if dispute.gateway != Gateway.STRIPE:
            return "download the packet for the processor's portal"
        if submission is None:
            return "not submitted"
        detail = f" — {submission.error_message}" if submission.error_message else ""
        when = f" {submission.submitted_at:%d %b %Y %H:%M} UTC" if submission.submitted_at else ""
        return f"{submission.get_status_display()}{when}{detail}"

    @admin.display(description="Evidence packet")
    def packet(self, dispute):
        return format_html(
            '<a href="{}">Download the evidence packet (PDF)</a>',
            reverse("admin:billing_dispute_packet", args=[dispute.pk]),
        )

    def get_urls(self):
        return [
            path(
                "<int:dispute_id>/packet/",
                self.admin_site.admin_view(self.packet_view),
                name="billing_dispute_packet",
            ),
            *super().get_urls(),
        ]

    def packet_view(self, request, dispute_id: int):
        if not request.user.has_perm("billing.view_dispute"):
            raise PermissionDenied
        dispute = disputes.get_dispute(dispute_id)
        packet = evidence_packet.render(dispute.payment.invoice.order)
        response = HttpResponse(packet.content, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{packet.filename}"'
        return response
