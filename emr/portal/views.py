"""The portal's pages: thin doors. Each reads the request, asks a read-model or calls one
service, and answers in sentences a patient understands."""

from functools import wraps

from axes.helpers import get_client_ip_address, get_cool_off
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import url_has_allowed_host_and_scheme, urlencode, urlsafe_base64_decode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from emr import communications, documents
from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError, Forbidden, NotFound
from emr.portal import accounts, cards, payments, records
from emr.portal.forms import (
    AddCardForm,
    ChoosePasswordForm,
    ConfirmChangeForm,
    PasswordResetRequestForm,
    PayInvoiceForm,
    SignDocumentForm,
    SignInForm,
)
from emr.portal.models import SubscriptionChange
from emr.portal.scope import NOT_FOUND
from emr.portal.subscription_changes import available_changes, confirm_change, consequences
from subscriptions.states import SubscriptionStatus


def clinic_context() -> dict:
    """What every portal page's header and footer name: the clinic and how to reach it."""
    return {
        "clinic_name": settings.CLINIC_NAME,
        "clinic_email": settings.CLINIC_EMAIL,
        "clinic_phone": settings.CLINIC_PHONE,
    }


def page(request, template: str, context: dict | None = None, *, status: int = 200):
    return render(request, template, clinic_context() | (context or {}), status=status)


def patient_page(view):
    """A page of the signed-in patient: others sign in first; staff are refused with a
    sentence; a number that is not this patient's answers 404 (never 403, never its data)."""

    @wraps(view)
    @never_cache
    def door(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("portal:sign-in"))
        try:
            patient = accounts.portal_patient(request.user)
        except Forbidden as refusal:
            return page(request, "portal/refused.html", {"sentence": refusal.detail}, status=403)
        try:
            return view(request, patient, *args, **kwargs)
        except NotFound as missing:
            return page(
                request,
                "portal/not_found.html",
                {"patient": patient, "sentence": missing.detail},
                status=404,
            )

    return door


# --- Signing in and out --------------------------------------------------------------------


class SignInView(auth_views.LoginView):
    template_name = "portal/sign_in.html"
    authentication_form = SignInForm
    next_page = reverse_lazy("portal:dashboard")

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | clinic_context()


class SignOutView(auth_views.LogoutView):
    next_page = reverse_lazy("portal:sign-in")

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a sign-in while sign-in is paused (`AXES_LOCKOUT_CALLABLE`):
    the portal's page at the portal, the admin's page elsewhere."""
    cool_off = get_cool_off(request)
    status = settings.AXES_HTTP_RESPONSE_CODE
    if getattr(request.resolver_match, "namespace", "") != "portal":
        return render(
            request, settings.AXES_LOCKOUT_TEMPLATE, {"cooloff_timedelta": cool_off}, status=status
        )
    return page(
        request,
        "portal/locked_out.html",
        {"cool_off": cool_off, "retry_at": timezone.now() + cool_off},
        status=status,
    )


# --- Passwords: the invitation link, and a reset -------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def request_password_reset(request):
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        accounts.request_password_reset(
            email=form.cleaned_data["email"], address=get_client_ip_address(request)
        )
        return redirect("portal:password-reset-sent")
    return page(request, "portal/password_reset.html", {"form": form})


def password_reset_sent(request):
    return page(request, "portal/password_reset_sent.html")


class ChoosePasswordView(auth_views.PasswordResetConfirmView):
    """A link from an email: the patient chooses a password once, then signs in with it."""

    template_name = "portal/choose_password.html"
    form_class = ChoosePasswordForm
    success_url = reverse_lazy("portal:sign-in")
    heading = "Choose a new password"

    def get_user(self, uidb64):
        try:
            user_id = int(force_str(urlsafe_base64_decode(uidb64)))
        except (TypeError, ValueError, OverflowError):
            return None
        return accounts.patient_login(user_id)

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(
            self.request, "Your password is set. Sign in with your email and the new password."
        )
        return response

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | clinic_context() | {"heading": self.heading}


class AcceptInviteView(ChoosePasswordView):
    token_generator = accounts.invite_tokens
    heading = "Welcome: choose your password"


class ResetPasswordView(ChoosePasswordView):
    token_generator = accounts.reset_tokens


# --- Pages ---------------------------------------------------------------------------------


@patient_page
def dashboard(request, patient):
    board = records.dashboard(patient)
    return page(
        request, "portal/dashboard.html", {"patient": patient, "section": "home", "board": board}
    )


@patient_page
def orders(request, patient):
    found, rows = records.order_list(patient, page=request.GET.get("page", 1))
    return page(
        request,
        "portal/orders.html",
        {"patient": patient, "section": "orders", "page_obj": found, "rows": rows},
    )


@patient_page
def order(request, patient, number):
    view = records.order_page(patient, number)
    return page(
        request, "portal/order.html", {"patient": patient, "section": "orders", "view": view}
    )


@patient_page
def invoices(request, patient):
    if request.GET.get("recovery"):
        return _recovery(request, patient, request.GET.get("invoice") or None)
    found, rows = records.invoice_list(patient, page=request.GET.get("page", 1))
    return page(
        request,
        "portal/invoices.html",
        {"patient": patient, "section": "invoices", "page_obj": found, "rows": rows},
    )


@patient_page
def invoice(request, patient, number):
    view = records.receipt(patient, number)
    return page(
        request, "portal/receipt.html", {"patient": patient, "section": "invoices", "view": view}
    )


def _pay_form(view, data=None) -> PayInvoiceForm:
    selected = view.selected
    return PayInvoiceForm(
        data,
        cards=view.cards,
        terms=selected.terms if selected else (),
        terms_sha256=selected.terms_sha256 if selected else "",
    )


def _recovery(request, patient, number, *, form=None, refusal: str = "", status: int = 200):
    view = records.recovery_page(patient, number)
    form = form or _pay_form(view)
    context = {
        "patient": patient,
        "section": "invoices",
        "view": view,
        "form": form,
        "refusal": refusal,
        "add_card_url": f"{reverse('portal:cards')}?{urlencode({'next': request.get_full_path()})}",
    }
    return page(request, "portal/recovery.html", context, status=status)


@patient_page
@require_POST
def pay_invoice(request, patient, number):
    view = records.recovery_page(patient, number)
    form = _pay_form(view, request.POST)
    if not form.is_valid():
        return _recovery(request, patient, number, form=form, status=400)
    try:
        payment = payments.pay_invoice(
            patient=patient,
            number=number,
            card_id=form.cleaned_data["card"],
            actor=Actor.patient(request.user),
            accepted_terms_sha256=form.accepted_terms_sha256,
            ip_address=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
    except DomainError as refusal:
        sentence = payments.refusal_sentence(refusal)
        return _recovery(
            request,
            patient,
            number,
            refusal=sentence,
            status=402 if refusal.code == "payment.declined" else 409,
        )
    amount = records.money(payment.amount_cents, payment.currency)
    card = records.card_words(payment.card_brand, payment.card_last4)
    thanks = f"Thank you: {amount} paid with {card}."
    subscription = view.selected.subscription if view.selected else None
    if subscription is not None:
        subscription.refresh_from_db(fields=["status"])
        if subscription.status == SubscriptionStatus.ACTIVE:
            thanks += f" Your {subscription.plan.name} subscription is active again."
    messages.success(request, thanks)
    return redirect("portal:invoice", number=number)


@patient_page
def subscriptions(request, patient):
    rows = records.subscription_list(patient)
    return page(
        request,
        "portal/subscriptions.html",
        {"patient": patient, "section": "subscriptions", "rows": rows},
    )


@patient_page
def subscription(request, patient, number):
    view = records.subscription_page(patient, number, actor=Actor.patient(request.user))
    return page(
        request,
        "portal/subscription.html",
        {"patient": patient, "section": "subscriptions", "view": view},
    )


C = SubscriptionChange
DONE = {
    C.CANCEL: "Your subscription is cancelled. You will not be charged for it again.",
    C.PAUSE: "Your subscription is paused. Billing stops until you resume it.",
    C.RESUME: "Your subscription is active again.",
    C.SCHEDULE_CANCELLATION: "Your cancellation is scheduled. It takes effect after your final "
    "payment.",
    C.WITHDRAW_CANCELLATION: "Your cancellation request is withdrawn. Your subscription goes on.",
}


@patient_page
@require_http_methods(["GET", "POST"])
def subscription_change(request, patient, number, change):
    try:
        change = SubscriptionChange(change)
    except ValueError:
        raise NotFound(NOT_FOUND, code="portal.not_found") from None
    actor = Actor.patient(request.user)
    refusal = ""
    form = ConfirmChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            confirm_change(
                patient=patient,
                number=number,
                change=change,
                shown_sha256=form.cleaned_data["shown"],
                actor=actor,
                ip_address=request.META.get("REMOTE_ADDR"),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        except DomainError as error:
            refusal = error.detail
            form = None
        else:
            messages.success(request, DONE[change])
            return redirect("portal:subscription", number=number)
    subscription = records.subscription_for_change(patient, number)
    shown = consequences(subscription, change)
    form = form or ConfirmChangeForm()
    form.initial["shown"] = shown.sha256
    offer = available_changes(subscription, actor=actor)
    context = {
        "patient": patient,
        "section": "subscriptions",
        "subscription": subscription,
        "number": number,
        "shown": shown,
        "form": form,
        "refusal": refusal,
        "offered": change in offer.changes,
        "offer": offer,
    }
    return page(request, "portal/subscription_change.html", context, status=409 if refusal else 200)


# --- Session packages ----------------------------------------------------------------------


@patient_page
def packages(request, patient):
    found, rows = records.package_list(patient, page=request.GET.get("page", 1))
    return page(
        request,
        "portal/packages.html",
        {"patient": patient, "section": "packages", "page_obj": found, "rows": rows},
    )


@patient_page
def package(request, patient, package_id):
    view = records.package_page(patient, package_id)
    return page(
        request, "portal/package.html", {"patient": patient, "section": "packages", "view": view}
    )


# --- Saved cards ---------------------------------------------------------------------------


def _card_form_page(request, patient, template: str, context: dict, *, status: int = 200):
    """A page with the gateway's card form: the policy allows its script's origin here only."""
    entry = cards.card_entry()
    response = page(
        request,
        template,
        {"patient": patient, "section": "cards", "entry": entry} | context,
        status=status,
    )
    if entry.available:
        response._csp_update = entry.csp_update()
    return response


def _next_page(request) -> str:
    """Where to go once a card is added (the recovery page, say): a portal page only."""
    target = request.GET.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe and target.startswith(reverse("portal:dashboard")) else ""


@patient_page
@require_http_methods(["GET", "POST"])
def cards_page(request, patient):
    after = _next_page(request)
    refusal, status = "", 200
    if request.method == "POST":
        form = AddCardForm(request.POST)
        if not form.is_valid():
            refusal, status = cards.NO_CARD_ENTERED, 400
        else:
            try:
                card = cards.add_card(
                    patient=patient,
                    gateway=form.cleaned_data["gateway"],
                    token=form.cleaned_data["token"],
                    actor=Actor.patient(request.user),
                )
            except DomainError as error:
                refusal = cards.refusal_sentence(error)
                status = 402 if error.code == "payment.declined" else 409
            else:
                name = records.card_words(card.brand, card.last4)
                messages.success(request, f"{name} is saved. It is now your default card.")
                return redirect(after or "portal:cards")
    action = reverse("portal:cards") + (f"?{urlencode({'next': after})}" if after else "")
    context = {"cards": records.saved_cards(patient), "refusal": refusal, "action": action}
    return _card_form_page(request, patient, "portal/cards.html", context, status=status)


@patient_page
def card(request, patient, card_id):
    context = {"patient": patient, "section": "cards", "card": records.saved_card(patient, card_id)}
    return page(request, "portal/card.html", context)


@patient_page
@require_POST
def make_default_card(request, patient, card_id):
    try:
        card = cards.make_default(
            patient=patient, card_id=card_id, actor=Actor.patient(request.user)
        )
    except NotFound:
        raise
    except DomainError as error:
        messages.error(request, cards.refusal_sentence(error))
    else:
        name = records.card_words(card.brand, card.last4)
        messages.success(request, f"{name} is now your default card.")
    return redirect("portal:cards")


@patient_page
@require_POST
def remove_card(request, patient, card_id):
    try:
        card = cards.remove(patient=patient, card_id=card_id, actor=Actor.patient(request.user))
    except NotFound:
        raise
    except DomainError as error:
        context = {
            "patient": patient,
            "section": "cards",
            "card": records.saved_card(patient, card_id),
            "refusal": cards.refusal_sentence(error),
        }
        return page(request, "portal/card.html", context, status=409)
    name = records.card_words(card.brand, card.last4)
    messages.success(request, f"{name} is removed. The clinic will not charge it again.")
    return redirect("portal:cards")


# --- Messages ------------------------------------------------------------------------------


@patient_page
def messages_page(request, patient):
    found, rows = records.doctor_messages(patient, page=request.GET.get("page", 1))
    from_clinic = records.clinic_messages(patient)
    # The patient opened these: the communication log keeps when they first did.
    communications.mark_opened(patient=patient, message_ids=[m.id for m in from_clinic])
    return page(
        request,
        "portal/messages.html",
        {
            "patient": patient,
            "section": "messages",
            "page_obj": found,
            "rows": rows,
            "from_clinic": from_clinic,
        },
    )


# --- Documents: read, sign, download -------------------------------------------------------


@patient_page
def documents_page(request, patient):
    view = records.documents_page(patient)
    return page(
        request,
        "portal/documents.html",
        {"patient": patient, "section": "documents", "view": view},
    )


@patient_page
@require_http_methods(["GET", "POST"])
def sign_document(request, patient, template_id):
    view = records.sign_page(patient, template_id)
    version = view.entry.version
    form = _sign_form(request.POST or None, view)
    refusal, status = "", 200
    if request.method == "POST":
        if not form.is_valid():
            status = 400
        elif form.cleaned_data["version"] != version.pk:
            refusal, status = (
                f"{view.entry.template.name} was updated while the page was open. Read the new "
                "version below and sign it.",
                409,
            )
        else:
            try:
                signed = documents.sign_document(
                    patient=patient,
                    version=version,
                    shown_sha256=form.cleaned_data["shown"],
                    typed_name=form.cleaned_data["typed_name"],
                    signature_png=documents.signature_from_data_url(form.cleaned_data["signature"]),
                    actor=Actor.patient(request.user),
                    ip_address=get_client_ip_address(request),
                    user_agent=request.META.get("HTTP_USER_AGENT", ""),
                )
            except DomainError as error:
                if error.code in {"document.name_mismatch", "document.name_required"}:
                    form.add_error("typed_name", error.detail)
                    status = 400
                else:
                    refusal, status = error.detail, error.http_status
            else:
                messages.success(
                    request,
                    f"Thank you: {view.entry.template.name} is signed. You can read or download "
                    "it here at any time.",
                )
                return redirect("portal:signed-document", signed_id=signed.pk)
    if refusal:
        # The words may have changed: show what is in force now, with a fresh form.
        try:
            view = records.sign_page(patient, template_id)
        except NotFound:
            # Signed meanwhile (another tab): nothing is left to sign here.
            messages.info(request, refusal)
            return redirect("portal:documents")
        form = _sign_form(None, view)
    context = {
        "patient": patient,
        "section": "documents",
        "view": view,
        "form": form,
        "refusal": refusal,
    }
    return page(request, "portal/sign_document.html", context, status=status)


def _sign_form(data, view) -> SignDocumentForm:
    version = view.entry.version
    return SignDocumentForm(data, initial={"version": version.pk, "shown": version.text_sha256})


@patient_page
def signed_document(request, patient, signed_id):
    view = records.signed_page(patient, signed_id)
    return page(
        request,
        "portal/signed_document.html",
        {"patient": patient, "section": "documents", "view": view},
    )


@patient_page
def signed_document_pdf(request, patient, signed_id):
    content, filename = records.signed_pdf(patient, signed_id)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
