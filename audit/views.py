"""The billing admin's audit pages: the search, the timelines of a patient, an order and a
subscription, their exports, and the access log. Thin: the trail is audit.trail's, the files
audit.exports', and every look at a patient's record is written by audit.access_log."""

from datetime import UTC, datetime, time, timedelta

from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone

from audit import exports, trail
from audit.access import audit_reviewer_required
from audit.access_log import record_access
from audit.forms import AccessLogFilters, TrailFilters, TrailSearch, record_number
from audit.models import AccessLogEntry
from audit.sources import Scope, order_scope, patient_scope, subscription_scope
from emr.models import Patient
from orders.models import Order
from subscriptions.models import Subscription


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _show(request, form, scope: Scope | None, *, title: str, record_query: str = ""):
    found, entries = (None, [])
    if form.is_valid():
        if scope is not None:
            record_access(request, page="audit-timeline", record=scope.title, patient=scope.patient)
        found, entries = trail.page(form.criteria(scope), request.GET.get("page") or 1)
    query = _query_without_page(request)
    export_query = "&".join(part for part in (record_query, query) if part)
    return TemplateResponse(
        request,
        "audit/trail.html",
        {
            "title": title,
            "form": form,
            "scope": scope,
            "page_obj": found,
            "entries": entries,
            "query": query,
            "export_query": export_query,
            "section": "search",
        },
    )


@audit_reviewer_required
def search(request):
    form = TrailSearch(request.GET)
    scope = form.scope if form.is_valid() else None
    return _show(
        request,
        form,
        scope,
        title=f"Audit trail of {scope.title}" if scope else "Audit trail: search",
    )


@audit_reviewer_required
def patient_timeline(request, patient_id: int):
    patient = get_object_or_404(Patient, pk=patient_id)
    return _show(
        request,
        TrailFilters(request.GET),
        patient_scope(patient),
        title=f"Timeline of patient {patient.full_name} (#{patient.pk})",
        record_query=f"patient={patient.pk}",
    )


@audit_reviewer_required
def order_timeline(request, number: str):
    orders = Order.objects.select_related("patient")
    order = get_object_or_404(orders, number=record_number(number, "ORD"))
    return _show(
        request,
        TrailFilters(request.GET),
        order_scope(order),
        title=f"Timeline of order {order.number} (patient {order.patient.full_name})",
        record_query=f"order={order.number}",
    )


@audit_reviewer_required
def subscription_timeline(request, number: str):
    digits = number.upper().removeprefix("SUB-")
    if not digits.isdigit():
        raise Http404("No such subscription.")
    subscription = get_object_or_404(Subscription.objects.select_related("patient"), pk=digits)
    return _show(
        request,
        TrailFilters(request.GET),
        subscription_scope(subscription),
        title=f"Timeline of subscription {subscription} (patient {subscription.patient.full_name})",
        record_query=f"subscription={subscription}",
    )


def _export(request, lines, *, content_type: str, extension: str):
    form = TrailSearch(request.GET)
    if not form.is_valid():
        return TemplateResponse(
            request,
            "audit/trail.html",
            {"title": "Export refused", "form": form, "entries": [], "section": "search"},
            status=400,
        )
    scope = form.scope
    record_access(
        request,
        page="audit-export",
        record=scope.title if scope else "the whole audit trail",
        patient=scope.patient if scope else None,
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    name = f"{scope.slug if scope else 'audit-trail'}-{stamp}"
    response = StreamingHttpResponse(lines(form.criteria(scope)), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    return response


@audit_reviewer_required
def export_csv(request):
    return _export(request, exports.csv_lines, content_type="text/csv", extension="csv")


@audit_reviewer_required
def export_jsonl(request):
    return _export(
        request, exports.json_lines, content_type="application/x-ndjson", extension="jsonl"
    )


@audit_reviewer_required
def access_log(request):
    form = AccessLogFilters(request.GET or None)
    entries = AccessLogEntry.objects.select_related("patient").order_by("-at", "-id")
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["user"]:
            entries = entries.filter(user_label__icontains=data["user"].strip())
        if data["patient"]:
            entries = entries.filter(patient_id=data["patient"])
        if data["page"]:
            entries = entries.filter(page=data["page"])
        if data["since"]:
            entries = entries.filter(at__gte=datetime.combine(data["since"], time.min, UTC))
        if data["until"]:
            end = datetime.combine(data["until"] + timedelta(days=1), time.min, UTC)
            entries = entries.filter(at__lt=end)
    found = Paginator(entries, trail.PER_PAGE).get_page(request.GET.get("page") or 1)
    return TemplateResponse(
        request,
        "audit/access_log.html",
        {
            "title": "Access log: who viewed patient records",
            "form": form if form.is_bound else AccessLogFilters(),
            "page_obj": found,
            "query": _query_without_page(request),
            "section": "access-log",
        },
    )
