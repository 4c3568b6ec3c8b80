"""The refunds dashboard's pages (/audit/dashboard/): read the filter, ask audit.dashboard,
draw the charts. Each chart's numbers are in a table under it and in a CSV of their own."""

import csv
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from audit import dashboard
from audit.access import audit_reviewer_required
from audit.svg_charts import Bar, bar_chart
from emr.kernel.money import format_cents


class RangeForm(forms.Form):
    start = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    currency = forms.CharField(required=False, max_length=3)

    def clean(self):
        cleaned = super().clean()
        default = dashboard.default_range()
        start, end = cleaned.get("start") or default.start, cleaned.get("end") or default.end
        if start > end:
            raise forms.ValidationError("The start date is after the end date.")
        if end - start > timedelta(days=dashboard.MAX_DAYS):
            raise forms.ValidationError("Choose at most three years at a time.")
        cleaned["period"] = dashboard.DateRange(start, end)
        return cleaned


def _filters(request) -> tuple[RangeForm, dashboard.DateRange, str, list[str]]:
    """The filter as asked, or the last 12 weeks when it was not (or not understood)."""
    form = RangeForm(request.GET)
    valid = form.is_valid()
    period = form.cleaned_data["period"] if valid else dashboard.default_range()
    found = dashboard.currencies(period)
    asked = (form.cleaned_data.get("currency") or "").lower() if valid else ""
    currency = asked if asked in found else (found[0] if found else "usd")
    if valid:
        # Show the dates in force, also those the filter left blank.
        form = RangeForm(initial={"start": period.start, "end": period.end})
    return form, period, currency, found


@audit_reviewer_required
def dashboard_page(request):
    form, period, currency, found = _filters(request)
    query = urlencode({"start": period.start, "end": period.end, "currency": currency})
    charts = [
        _chart(make(period, currency), period, currency, query)
        for make in dashboard.CHARTS.values()
    ]
    totals = charts[0]["breakdown"]
    context = {
        **admin.site.each_context(request),
        "title": "Refunds dashboard",
        "form": form,
        "period": period,
        "currency": currency,
        "other_currencies": [
            (code.upper(), urlencode({"start": period.start, "end": period.end, "currency": code}))
            for code in found
            if code != currency
        ],
        "refunded": format_cents(totals.cents, currency),
        "refund_count": totals.count,
        "charts": charts,
        "failed": dashboard.failed_refunds(period),
        "pending": dashboard.pending_refunds(),
        "escalations": dashboard.open_escalations(),
        "overrides": dashboard.policy_overrides(period),
        "list_limit": dashboard.LIST_LIMIT,
    }
    return TemplateResponse(request, "audit/dashboard/page.html", context)


@audit_reviewer_required
def chart_csv(request, chart):
    make = dashboard.CHARTS.get(chart)
    if make is None:
        raise Http404("No such chart.")
    _, period, currency, _ = _filters(request)
    breakdown = make(period, currency)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"refunds-{chart.replace('_', '-')}-{period.start}-to-{period.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow([_dimension(breakdown), "refunds", "amount", "amount_cents", "currency"])
    for row in breakdown.rows:
        money = format_cents(row.cents, currency)
        writer.writerow([_cell(row.label), row.count, money, row.cents, currency.upper()])
    return response


def _cell(text: str) -> str:
    # A reason is typed by staff; a spreadsheet would run one starting like a formula.
    return f"'{text}" if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def _chart(breakdown: dashboard.Breakdown, period, currency: str, query: str) -> dict:
    rows = [
        {"label": row.label, "count": row.count, "money": format_cents(row.cents, currency)}
        for row in breakdown.rows
    ]
    bars = [
        Bar(row["label"], source.cents, _value_text(source.count, row["money"]))
        for row, source in zip(rows, breakdown.rows, strict=True)
    ]
    return {
        "breakdown": breakdown,
        "rows": rows,
        "svg": bar_chart(
            chart_id=f"chart-{breakdown.name}",
            title=f"{breakdown.title}, {period} ({currency.upper()})",
            description=_description(breakdown, currency),
            bars=bars,
        ),
        "dimension": _dimension(breakdown),
        "total": format_cents(breakdown.cents, currency),
        "csv_url": f"{reverse('audit-dashboard-csv', args=[breakdown.name])}?{query}",
    }


def _value_text(count: int, money: str) -> str:
    if not count:
        return "none"
    return f"{money} · {count} refund{'s' if count != 1 else ''}"


def _description(breakdown: dashboard.Breakdown, currency: str) -> str:
    sentence = f"Bars show money refunded by {_dimension(breakdown).lower()}."
    if breakdown.adds_up:
        total = format_cents(breakdown.cents, currency)
        sentence += f" {breakdown.count} refunds, {total} in all."
    largest = max(breakdown.rows, key=lambda row: row.cents, default=None)
    if largest is not None and largest.cents:
        sentence += f" Largest: {largest.label}, {format_cents(largest.cents, currency)}."
    return sentence


def _dimension(breakdown: dashboard.Breakdown) -> str:
    return breakdown.title.removeprefix("Refunds by ").capitalize()
