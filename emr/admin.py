"""The chart in the admin: patients' contact details, intake review, prescriptions.

CS edit a patient's contact details; the portal login tying a patient to an account is shown,
never re-pointed, and the email it signs in with is read-only once the patient set a password.
An intake's decision (reject, send back for correction) is a tool on its page for medical
operations, calling `emr.intake`; a prescription arrives from the telehealth provider
(RX_WRITTEN) and is never typed in or edited here.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from audit.access_log import record_access
from audit.models import AccessedPage
from billing.models import SessionPackage
from billing.packages import ledgers
from billing.states import InvoiceStatus
from emr import documents
from emr.communications import messages_for
from emr.intake import REVIEWABLE, order_kept_status, reject_intake, send_back_for_correction
from emr.kernel.actors import Actor, Door
from emr.kernel.admin_actions import ReasonForm
from emr.kernel.admin_pages import ReadOnlyAdminMixin, RecordTool, RecordToolsMixin
from emr.kernel.errors import DomainError
from emr.models import (
    DocumentKind,
    DocumentTemplate,
    DocumentVersion,
    IntakeResponse,
    IntakeStatus,
    Patient,
    Prescription,
    SignedDocument,
)
from emr.portal.accounts import invite_patient
from emr.support.models import Escalation
from emr.support.preflight import intake_rejection_preflight
from orders.states import OrderStatus
from subscriptions.states import LIVE_STATUSES, SubscriptionStatus

REVIEW_PERMISSION = "emr.change_intakeresponse"
COMMUNICATION_LOG_SHOWN = 50


def _invite(patient, *, actor, reason, data) -> str:
    invitation = invite_patient(patient=patient, actor=actor, reason=reason)
    return (
        f"Portal invitation sent to {invitation.email}. The link works once and expires "
        f"{invitation.expires_at:%d %b %Y at %H:%M} UTC; inviting again replaces it."
    )


def _not_yet_signed_up(patient) -> bool:
    return patient.user is None or not patient.user.has_usable_password()


@admin.register(Patient)
class PatientAdmin(RecordToolsMixin, SimpleHistoryAdmin):
    list_display = ["__str__", "email", "phone", "created_at"]
    search_fields = ["first_name", "last_name", "email", "orders__number"]
    fields = [
        "first_name",
        "last_name",
        "email",
        "phone",
        "date_of_birth",
        "portal_login",
        "created_at",
        "communication_log",
    ]
    record_tools = (
        RecordTool(
            "portal_invite",
            "Invite to the patient portal…",
            "emr.change_patient",
            "The patient gets an email with a link to set a portal password (single use, "
            "expiring). Nothing about their orders, payments or subscriptions changes.",
            _invite,
            offered=_not_yet_signed_up,
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # The login is the patient's own account: re-pointing it would show one patient
        # another's orders, invoices and cards. Once the patient has set a password, the email
        # is how they sign in to the portal and where its password resets go: changing it would
        # hand the account to whoever reads the new address. Until then a mistyped address can
        # be corrected and the invitation sent again.
        if obj is not None and not _not_yet_signed_up(obj):
            return ["email", "portal_login", "created_at", "communication_log"]
        return ["portal_login", "created_at", "communication_log"]

    @admin.display(description="Portal login")
    def portal_login(self, patient: Patient) -> str:
        if patient.user is None:
            return "none yet"
        if _not_yet_signed_up(patient):
            return f"{patient.user.get_username()} (invited, no password set yet)"
        return (
            f"{patient.user.get_username()}: the patient signs in with the email above, so it "
            "is not changed here. Escalate to billing/admin operations if it must change."
        )

    @admin.display(description="Communication log")
    def communication_log(self, patient: Patient):
        """What the app sent this patient, newest first (the API has every row)."""
        if patient.pk is None:
            return "—"
        sent = list(messages_for(patient=patient)[:COMMUNICATION_LOG_SHOWN])
        if not sent:
            return "Nothing has been sent to this patient yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td><code title='SHA-256 of the body'>{}…</code></td></tr>",
            (
                (
                    f"{message.sent_at:%d %b %Y %H:%M} UTC",
                    message.get_channel_display(),
                    message.recipient,
                    message.subject or "—",
                    message.get_status_display()
                    + (f" ({message.status_detail})" if message.status_detail else ""),
                    f"{message.opened_at:%d %b %Y %H:%M} UTC" if message.opened_at else "not yet",
                    message.body_sha256[:12],
                )
                for message in sent
            ),
        )
        return format_html(
            '<table class="communication-log"><thead><tr><th>Sent</th><th>Channel</th>'
            "<th>To</th><th>Subject</th><th>Delivery</th><th>Opened in the portal</th>"
            "<th>Body hash</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        # A chart is a medical record and the anchor of every order and payment: never deleted.
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        patient = self.get_object(request, unquote(object_id))
        if patient is not None and request.method == "GET":
            record_access(
                request,
                page=AccessedPage.ADMIN_PATIENT,
                record=f"patient #{patient.pk} ({patient.full_name})",
                patient=patient,
            )
        if patient is not None:
            extra_context = {
                **(extra_context or {}),
                "package_ledgers": ledgers(SessionPackage.objects.filter(patient=patient)),
            }
        return super().change_view(request, object_id, form_url, extra_context)


# --- Intake review (medical operations) ------------------------------------------------------


class ReviewNoteForm(ReasonForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = "Review note"
        self.fields["reason"].help_text = (
            "Required. The patient and CS read it to understand the decision; it is recorded in "
            "the audit history with your name."
        )


def _reject(intake, *, actor, reason, data) -> str:
    subscription = intake.order.subscription if intake.order else None
    was_running = subscription is not None and subscription.status in LIVE_STATUSES
    intake = reject_intake(intake=intake, actor=actor, note=reason)
    followed = _what_followed_for_order(intake)
    if was_running:
        subscription.refresh_from_db()
        if subscription.status == SubscriptionStatus.CANCELLED:
            followed.append(f"{subscription} cancelled; future billing stopped.")
    return " ".join([f"{intake.questionnaire}: rejected.", *followed])


def _what_followed_for_order(intake: IntakeResponse) -> list[str]:
    order = intake.order
    if order is None:
        return ["No order was linked."]
    order.refresh_from_db()
    if order.status == OrderStatus.REJECTED:
        invoice = getattr(order, "invoice", None)
        if invoice is not None and invoice.status == InvoiceStatus.PAID:
            money = f"{invoice.number} stays paid: refund it separately if the patient is owed it"
        else:
            money = "its unpaid invoice was closed"
        return [f"{order.number} rejected; {money}."]
    kept = order_kept_status(intake)
    if kept is None:
        return [f"{order.number} was already {order.get_status_display().lower()}."]
    escalation = Escalation.objects.filter(order=order).order_by("-id").first()
    handed = f" Escalated to medical operations as {escalation.number}." if escalation else ""
    return [kept + handed]


def _send_back(intake, *, actor, reason, data) -> str:
    intake = send_back_for_correction(intake=intake, actor=actor, note=reason)
    waiting = ""
    if intake.order is not None:
        intake.order.refresh_from_db()
        waiting = (
            f" {intake.order.number} waits for the corrected answers "
            f"({intake.order.get_status_display()})."
        )
    return (
        f"{intake.questionnaire}: sent back to {intake.patient.full_name} for correction; "
        f"they were asked to fix their answers.{waiting} Nothing financial changed."
    )


INTAKE_TOOLS = (
    RecordTool(
        "needs_correction",
        "Needs correction…",
        REVIEW_PERMISSION,
        "The patient is asked to fix their answers and continue. No order, invoice or "
        "subscription changes; the order waits for the corrected intake.",
        _send_back,
        form_class=ReviewNoteForm,
        offered=lambda intake: intake.status == IntakeStatus.SUBMITTED,
    ),
    RecordTool(
        "reject",
        "Reject intake…",
        REVIEW_PERMISSION,
        "The intake is REJECTED with your note. Its order is rejected (or, if it already "
        "shipped, escalated to medical operations), its subscription is cancelled and pending "
        "intake forms are withdrawn. Use Needs correction instead when the patient should fix "
        "the answers and continue.",
        _reject,
        form_class=ReviewNoteForm,
        offered=lambda intake: intake.status in REVIEWABLE,
        checklist=intake_rejection_preflight,
    ),
)


@admin.register(IntakeResponse)
class IntakeResponseAdmin(ReadOnlyAdminMixin, RecordToolsMixin, SimpleHistoryAdmin):
    list_display = ["questionnaire", "patient", "order", "status", "submitted_at"]
    list_filter = ["status"]
    list_select_related = ["patient", "order"]
    search_fields = ["patient__email", "order__number"]
    fields = [
        "questionnaire",
        "patient_link",
        "order_link",
        "status",
        "submitted_at",
        "review_note",
        "created_at",
    ]
    readonly_fields = fields
    change_form_template = "admin/emr/intakeresponse/change_form.html"
    record_tools = INTAKE_TOOLS

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("patient", "order__invoice", "order__subscription__plan")
        )

    @admin.display(description="Patient")
    def patient_link(self, intake: IntakeResponse):
        return format_html(
            '<a href="{}">{}</a> ({})',
            reverse("admin:support_patientprofile_profile", args=[intake.patient_id]),
            intake.patient.full_name,
            intake.patient.email,
        )

    @admin.display(description="Order")
    def order_link(self, intake: IntakeResponse):
        order = intake.order
        if order is None:
            return "none"
        return format_html(
            '<a href="{}">{}</a>: {}',
            reverse("admin:orders_order_change", args=[order.pk]),
            order.number,
            order.get_status_display(),
        )


@admin.register(Prescription)
class PrescriptionAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """Prescriptions come from the telehealth provider (RX_WRITTEN), which also moves the order
    on; one typed in here would do neither, so the page is for reading."""

    list_display = ["medication", "patient", "order", "written_at"]
    list_select_related = ["patient", "order"]
    search_fields = ["patient__email", "order__number", "medication"]
    fields = ["medication", "prescriber", "written_at", "patient", "order"]
    readonly_fields = fields


# --- Documents patients sign ----------------------------------------------------------------


class DocumentWordsForm(ReasonForm):
    """The words of a new version: what patients will read and sign from now on."""

    title = forms.CharField(max_length=200)
    body = forms.CharField(
        label="Text",
        widget=forms.Textarea(attrs={"rows": 16, "cols": 80}),
        help_text="Separate paragraphs with a blank line. Patients sign exactly this text.",
    )

    def __init__(self, *args, current: DocumentVersion | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if current is not None:
            self.initial.update(title=current.title, body=current.body)


class NewDocumentForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="What staff and patients call it, e.g. “Ketamine consent”."
    )
    kind = forms.ChoiceField(choices=DocumentKind.choices)
    title = forms.CharField(max_length=200)
    body = forms.CharField(
        label="Text",
        widget=forms.Textarea(attrs={"rows": 16, "cols": 80}),
        help_text="Separate paragraphs with a blank line. Patients sign exactly this text.",
    )


def _new_version(template, *, actor, reason, data) -> str:
    version = documents.revise_template(
        template=template, title=data["title"], body=data["body"], actor=actor
    )
    return (
        f"{template.name}: version {version.version} is in force. Signatures of earlier "
        "versions stay as they were; orders placed from now on need this version signed."
    )


DOCUMENT_TOOLS = (
    RecordTool(
        "new_version",
        "Make a new version…",
        "emr.change_documenttemplate",
        "Version n+1 with these words. Earlier versions and every signature of them stay as "
        "they were; orders placed from now on need the new version signed.",
        _new_version,
        form_class=DocumentWordsForm,
        form_kwargs=lambda template: {"current": template.current},
    ),
)


class DocumentVersionInline(ReadOnlyAdminMixin, admin.StackedInline):
    """Every version, newest first: exactly what patients read and signed under each."""

    model = DocumentVersion
    extra = 0
    fields = ["version", "title", "body", "text_sha256", "created_at", "created_by_label"]
    readonly_fields = fields
    ordering = ["-version"]


@admin.register(DocumentTemplate)
class DocumentTemplateAdmin(ReadOnlyAdminMixin, RecordToolsMixin, SimpleHistoryAdmin):
    """Consents, disclaimers and payment terms. Versions are read-only: words change only as a
    new version (the tool on the page), so no text a patient signed can be rewritten here. A
    product lists the documents it needs on its own page."""

    list_display = ["name", "kind", "current_version", "used_by"]
    list_filter = ["kind"]
    search_fields = ["name"]
    fields = ["name", "kind", "used_by", "created_at"]
    readonly_fields = fields
    inlines = [DocumentVersionInline]
    record_tools = DOCUMENT_TOOLS
    change_form_template = "admin/billing/record_change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("versions", "products")

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("emr.add_documenttemplate")

    @admin.display(description="Current version")
    def current_version(self, template: DocumentTemplate) -> int:
        return max((version.version for version in template.versions.all()), default=0)

    @admin.display(description="Products that need it")
    def used_by(self, template: DocumentTemplate) -> str:
        return ", ".join(product.name for product in template.products.all()) or "none yet"

    def add_view(self, request, form_url="", extra_context=None):
        """A new document and its version 1, through the service (never a model form)."""
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:emr_documenttemplate_changelist"))
        form = NewDocumentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                template = documents.create_template(
                    actor=Actor.staff(request.user, door=Door.ADMIN), **form.cleaned_data
                )
            except DomainError as error:
                form.add_error(None, error.detail)
            else:
                messages.success(request, f"{template.name}: version 1 is in force.")
                return HttpResponseRedirect(
                    reverse("admin:emr_documenttemplate_change", args=[template.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "New document to sign",
            "form": form,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/emr/documenttemplate/add.html", context)


@admin.register(SignedDocument)
class SignedDocumentAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    """What each patient signed, for reading and downloading; never edited or deleted."""

    list_display = ["document", "patient", "version_number", "typed_name", "signed_at"]
    list_select_related = ["patient", "version__template"]
    search_fields = ["patient__email", "patient__last_name", "version__template__name"]
    fields = [
        "document",
        "version_number",
        "patient",
        "typed_name",
        "signed_at",
        "ip_address",
        "user_agent",
        "signed_by_label",
        "text",
        "text_sha256",
        "pdf_link",
        "pdf_sha256",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("pdf")

    @admin.display(description="Document")
    def document(self, signed: SignedDocument) -> str:
        return signed.version.template.name

    @admin.display(description="Version")
    def version_number(self, signed: SignedDocument) -> int:
        return signed.version.version

    @admin.display(description="Signed PDF (as stored at signing)")
    def pdf_link(self, signed: SignedDocument):
        return format_html(
            '<a href="{}">Download the PDF</a>',
            reverse("admin:emr_signeddocument_pdf", args=[signed.pk]),
        )

    def get_urls(self):
        download = path(
            "<int:signed_id>/pdf/",
            self.admin_site.admin_view(self.pdf_view),
            name="emr_signeddocument_pdf",
        )
        return [download, *super().get_urls()]

    def pdf_view(self, request, signed_id: int):
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        signed = self.get_queryset(request).defer(None).filter(pk=signed_id).first()
        if signed is None:
            return HttpResponseRedirect(reverse("admin:emr_signeddocument_changelist"))
        record_access(
            request,
            page=AccessedPage.ADMIN_PATIENT,
            record=f"signed document #{signed.pk} of patient #{signed.patient_id}",
            patient=signed.patient,
        )
        response = HttpResponse(bytes(signed.pdf), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="signed-document-{signed.pk}.pdf"'
        return response
