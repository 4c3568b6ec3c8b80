"""Customer support in the admin: escalations (list, creation from an order or subscription,
resolution), the patient search and one-page profile, and the failed payments list.

Every page is thin: it reads through a read-model (`packets`, `profiles`, `failed_payments`) or
calls the escalation service, and a role that may not use it gets a 403 page with a sentence.
"""

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from audit.access_log import record_access
from audit.models import AccessedPage
from audit.timeline import entries_for, newest_first
from emr.kernel.actors import Actor, Door
from emr.kernel.admin_pages import ReadOnlyAdminMixin
from emr.kernel.errors import DomainError
from emr.kernel.money import format_cents
from emr.models import Patient
from emr.support.escalations import (
    OPEN_PERMISSION,
    may_resolve,
    open_escalation,
    resolve_escalation,
)
from emr.support.failed_payments import failed_payments
from emr.support.forms import EscalationForm, ResolveForm, SubjectLookupForm
from emr.support.models import Escalation, FailedPayment, PatientProfile
from emr.support.packets import build_packet, render_facts, suggest_route
from emr.support.profiles import load_profile
from orders.models import Order
from orders.states import WAITING_FOR_PAYMENT, RecoveryStatus
from subscriptions.admin_tools import (
    scheduled_cancellation_request,
    scheduled_cancellation_text,
)
from subscriptions.models import Subscription
from subscriptions.scheduled import UNPAID_FINANCED_CYCLES

# The profile shows all of these records; a role that may not see one of them gets no profile.
PROFILE_PERMISSIONS = (
    "emr.view_patient",
    "orders.view_order",
    "billing.view_invoice",
    "billing.view_payment",
    "billing.view_paymentmethod",
    "subscriptions.view_subscription",
    "beluga.view_belugavisit",
    "beluga.view_belugamessage",
    "pharmacy.view_pharmacyorder",
)
FAILED_PAYMENTS_PERMISSIONS = (
    "emr.view_patient",
    "orders.view_order",
    "billing.view_invoice",
    "subscriptions.view_subscription",
)


class SupportPageMixin:
    """Pages in the admin's look, and refusals that say why."""

    view_refusal = "Your role may not see this page."
    changelist_title: str | None = None

    def render(self, request, template: str, **context) -> TemplateResponse:
        return TemplateResponse(
            request,
            template,
            {**self.admin_site.each_context(request), "opts": self.opts, **context},
        )

    def refuse(self, request, sentence: str) -> TemplateResponse:
        response = self.render(
            request, "admin/support/refused.html", title="Not allowed", sentence=sentence
        )
        response.status_code = 403
        return response

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return self.refuse(request, self.view_refusal)
        if self.changelist_title:
            extra_context = {"title": self.changelist_title, **(extra_context or {})}
        return super().changelist_view(request, extra_context)


class ReadOnlyPageMixin(ReadOnlyAdminMixin, SupportPageMixin):
    """An admin view of existing records: access follows the permissions on those records."""

    required_permissions: tuple[str, ...] = ()
    actions = None

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perms(self.required_permissions)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)


# --- Escalations ---------------------------------------------------------------------------


@admin.register(Escalation)
class EscalationAdmin(SupportPageMixin, SimpleHistoryAdmin):
    view_refusal = "Your role may not see escalations. Ask a CS lead or a billing admin."
    list_display = [
        "number",
        "created_at",
        "route",
        "status",
        "order",
        "subscription",
        "patient",
        "patient_email",
        "created_by_label",
        "resolved_at",
    ]
    list_filter = ["status", "route"]
    list_select_related = ["order", "subscription", "patient"]
    search_fields = ["number", "order__number", "order__invoice__number", "patient__email"]
    search_help_text = "Escalation, order or invoice number, or the patient's email."
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "status",
                    "route",
                    "suggestion",
                    "patient",
                    "order",
                    "subscription",
                ]
            },
        ),
        ("Hand-off", {"fields": ["patient_reason", "message", "copyable_packet"]}),
        (
            "Opened and resolved",
            {
                "fields": [
                    "created_by_label",
                    "created_at",
                    "resolved_by_label",
                    "resolved_at",
                    "resolution_note",
                ]
            },
        ),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    # Escalations are opened on their own page (from an order or subscription) and change only
    # by being resolved: never through the generic form.
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Patient email", ordering="patient__email")
    def patient_email(self, escalation: Escalation) -> str:
        return escalation.patient.email

    @admin.display(description="Checklist suggestion")
    def suggestion(self, escalation: Escalation) -> str:
        return f"{escalation.get_suggested_route_display()}: {escalation.suggestion_reason}"

    @admin.display(description="Packet (as it was when opened)")
    def copyable_packet(self, escalation: Escalation) -> str:
        return format_html(
            '<textarea id="packet-text" readonly rows="24" cols="110">{}</textarea><br>'
            '<button type="button" class="button" '
            "onclick=\"navigator.clipboard.writeText(document.getElementById('packet-text')"
            ".value); this.textContent='Copied'\">Copy packet</button>",
            escalation.packet_text,
        )

    def get_urls(self):
        return [
            path("new/", self.admin_site.admin_view(self.new_view), name="support_escalation_new"),
            path(
                "<int:escalation_id>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="support_escalation_resolve",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        # The changelist's "Add" button: escalations are opened from an order or subscription.
        return redirect("admin:support_escalation_new")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            return self.refuse(request, self.view_refusal)
        escalation = self.get_object(request, unquote(object_id))
        if escalation is not None:
            extra_context = {
                "can_resolve": escalation.is_open and may_resolve(request.user, escalation),
                "timeline": newest_first(
                    entries_for(escalation.history.all(), label=lambda row: row.number)
                ),
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def new_view(self, request):
        if not request.user.has_perm(OPEN_PERMISSION):
            return self.refuse(request, "Your role may not open escalations. Ask a CS lead.")
        subject = _subject_from(request.GET)
        if subject is None:
            return self._lookup_view(request)
        packet = build_packet(**subject)
        suggestion = suggest_route(packet)
        form = EscalationForm(
            request.POST if request.method == "POST" else None,
            initial={"route": suggestion.route, "message": request.GET.get("message", "")},
        )
        if form.is_valid():
            try:
                escalation = open_escalation(
                    actor=Actor.staff(request.user, door=Door.ADMIN),
                    **subject,
                    **form.cleaned_data,
                )
            except DomainError as error:
                form.add_error(None, error.detail)
            else:
                self.message_user(
                    request,
                    f"{escalation.number} opened and routed to {escalation.get_route_display()}.",
                    messages.SUCCESS,
                )
                return redirect("admin:support_escalation_change", escalation.pk)
        subject_label = str(subject.get("order") or subject.get("subscription"))
        return self.render(
            request,
            "admin/support/escalation/new.html",
            title=f"Escalate {subject_label}",
            facts="\n".join(render_facts(packet)),
            suggestion=suggestion,
            form=form,
        )

    def _lookup_view(self, request):
        form = SubjectLookupForm(request.GET or None)
        if form.is_valid():
            found = _find_subject(form.cleaned_data["number"])
            if found is not None:
                return redirect(f"{reverse('admin:support_escalation_new')}?{urlencode(found)}")
            form.add_error("number", "No order or subscription has that number.")
        return self.render(
            request,
            "admin/support/escalation/lookup.html",
            title="Escalate an order or subscription",
            form=form,
        )

    def resolve_view(self, request, escalation_id: int):
        escalation = get_object_or_404(Escalation, pk=escalation_id)
        if not may_resolve(request.user, escalation):
            return self.refuse(
                request,
                f"{escalation.number} is routed to {escalation.get_route_display()}; only that "
                "team may resolve it, and your role is not part of it.",
            )
        if not escalation.is_open:
            self.message_user(
                request, f"{escalation.number} is already resolved.", messages.WARNING
            )
            return redirect("admin:support_escalation_change", escalation.pk)
        form = ResolveForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                resolve_escalation(
                    escalation=escalation,
                    note=form.cleaned_data["note"],
                    actor=Actor.staff(request.user, door=Door.ADMIN),
                )
            except DomainError as error:
                form.add_error(None, error.detail)
            else:
                self.message_user(request, f"{escalation.number} resolved.", messages.SUCCESS)
                return redirect("admin:support_escalation_change", escalation.pk)
        return self.render(
            request,
            "admin/support/escalation/resolve.html",
            title=f"Resolve {escalation.number}",
            escalation=escalation,
            form=form,
        )


def _subject_from(params) -> dict | None:
    """`?order=<id>` or `?subscription=<id>`, as the service's keyword argument."""
    for name, model in (("order", Order), ("subscription", Subscription)):
        if name in params:
            if not params[name].isdigit():
                raise Http404(f"{name} must be an id.")
            return {name: get_object_or_404(model, pk=int(params[name]))}
    return None


def _find_subject(number: str) -> dict | None:
    number = number.strip().upper()
    if number.startswith("SUB-") and number[4:].isdigit():
        found = Subscription.objects.filter(pk=int(number[4:])).values_list("pk", flat=True)
        return {"subscription": found[0]} if found else None
    found = Order.objects.filter(number=number).values_list("pk", flat=True)
    return {"order": found[0]} if found else None


# --- Patient search and profile ------------------------------------------------------------


@admin.register(PatientProfile)
class PatientProfileAdmin(ReadOnlyPageMixin, admin.ModelAdmin):
    """The changelist is the patient search; each row opens the profile."""

    required_permissions = PROFILE_PERMISSIONS
    changelist_title = "Find a patient"
    view_refusal = (
        "The patient profile shows orders, payments, saved cards, subscriptions and messages; "
        "your role may not see all of them."
    )
    list_display = ["profile_link", "email", "phone", "date_of_birth", "created_at"]
    list_display_links = None
    search_fields = [
        "first_name",
        "last_name",
        "email",
        "orders__number",
        "orders__invoice__number",
    ]
    search_help_text = "Name, email, order number (ORD-…) or invoice number (INV-…)."

    @admin.display(description="Patient", ordering="last_name")
    def profile_link(self, patient: Patient):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:support_patientprofile_profile", args=[patient.pk]),
            patient.full_name,
        )

    def get_urls(self):
        return [
            path(
                "<int:patient_id>/profile/",
                self.admin_site.admin_view(self.profile_view),
                name="support_patientprofile_profile",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not str(object_id).isdigit():
            raise Http404
        return redirect("admin:support_patientprofile_profile", int(object_id))

    def profile_view(self, request, patient_id: int):
        if not self.has_view_permission(request):
            return self.refuse(request, self.view_refusal)
        try:
            profile = load_profile(patient_id)
        except Patient.DoesNotExist:
            raise Http404("No such patient.") from None
        record_access(
            request,
            page=AccessedPage.ADMIN_PROFILE,
            record=f"patient #{patient_id} ({profile.patient.full_name})",
            patient=profile.patient,
        )
        return self.render(
            request,
            "admin/support/patientprofile/profile.html",
            title=f"{profile.patient.full_name}: patient profile",
            profile=profile,
            subscription_rows=self._subscription_rows(request, patient_id),
        )

    def _subscription_rows(self, request, patient_id: int) -> list[tuple]:
        """Each subscription with the tools its own page offers this user, and when its
        scheduled cancellation runs (and who asked for it)."""
        subscriptions = (
            Subscription.objects.filter(patient_id=patient_id)
            .select_related("plan")
            .annotate(unpaid_financed_cycles=UNPAID_FINANCED_CYCLES)
        )
        subscription_admin = self.admin_site.get_model_admin(Subscription)
        return [
            (
                subscription,
                subscription_admin.tools_for(subscription, request.user),
                scheduled_cancellation_text(
                    subscription, unpaid_financed=subscription.unpaid_financed_cycles
                ),
                scheduled_cancellation_request(subscription),
            )
            for subscription in subscriptions
        ]


# --- Failed payments -----------------------------------------------------------------------


class RecoveryStatusFilter(admin.SimpleListFilter):
    title = "recovery status"
    parameter_name = "recovery_status"
    NOT_IN_RECOVERY = "none"

    def lookups(self, request, model_admin):
        return [
            *((status.value, status.label) for status in sorted(WAITING_FOR_PAYMENT)),
            (self.NOT_IN_RECOVERY, "Not in recovery (a one-off charge failed)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == self.NOT_IN_RECOVERY:
            return queryset.filter(recovery_status=RecoveryStatus.NONE)
        if self.value() in WAITING_FOR_PAYMENT:
            return queryset.filter(recovery_status=self.value())
        return queryset


@admin.register(FailedPayment)
class FailedPaymentAdmin(ReadOnlyPageMixin, admin.ModelAdmin):
    required_permissions = FAILED_PAYMENTS_PERMISSIONS
    changelist_title = "Failed payments: orders waiting for payment"
    view_refusal = "Your role may not see orders, invoices and subscriptions, so not this list."
    list_display = [
        "order_link",
        "recovery",
        "failed_charge_count",
        "next_retry",
        "patient_link",
        "invoice_number",
        "amount",
        "subscription_link",
        "last_failure",
        "created_at",
    ]
    list_display_links = None
    list_filter = [RecoveryStatusFilter]
    list_select_related = ["patient", "invoice", "subscription__plan"]
    search_fields = ["number", "invoice__number", "patient__email", "patient__last_name"]
    search_help_text = "Order or invoice number, or the patient's email or last name."
    # Soonest retry first; orders with no retry scheduled (they wait for CS or the patient) last.
    ordering = ["recovery_next_retry_at", "-created_at"]
    # One count query, not two: the unfiltered total adds nothing to a worklist.
    show_full_result_count = False

    def get_queryset(self, request):
        return failed_payments()

    @admin.display(description="Order", ordering="number")
    def order_link(self, order: FailedPayment):
        url = reverse("admin:orders_order_change", args=[order.pk])
        return format_html('<a href="{}">{}</a>', url, order.number)

    @admin.display(description="Recovery status", ordering="recovery_status")
    def recovery(self, order: FailedPayment) -> str:
        return order.get_recovery_status_display() if order.recovery_status else "-"

    @admin.display(description="Failed charges", ordering="failed_charges")
    def failed_charge_count(self, order: FailedPayment) -> int:
        return order.failed_charges

    @admin.display(description="Next retry", ordering="recovery_next_retry_at")
    def next_retry(self, order: FailedPayment):
        return order.recovery_next_retry_at

    @admin.display(description="Patient", ordering="patient__last_name")
    def patient_link(self, order: FailedPayment):
        url = reverse("admin:support_patientprofile_profile", args=[order.patient_id])
        return format_html(
            '<a href="{}">{}</a><br>{}', url, order.patient.full_name, order.patient.email
        )

    @admin.display(description="Invoice", ordering="invoice__number")
    def invoice_number(self, order: FailedPayment) -> str:
        invoice = getattr(order, "invoice", None)
        return invoice.number if invoice else "-"

    @admin.display(description="Amount")
    def amount(self, order: FailedPayment) -> str:
        invoice = getattr(order, "invoice", None)
        if invoice is None:
            return format_cents(order.total_cents, order.currency)
        return format_cents(invoice.amount_cents, invoice.currency)

    @admin.display(description="Subscription")
    def subscription_link(self, order: FailedPayment):
        subscription = order.subscription
        if subscription is None:
            return "-"
        url = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
        return format_html(
            '<a href="{}">{}</a> ({}, {})',
            url,
            subscription,
            subscription.plan,
            subscription.get_status_display(),
        )

    @admin.display(description="Last gateway failure")
    def last_failure(self, order: FailedPayment) -> str:
        return order.last_failure or "-"
