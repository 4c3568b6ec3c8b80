"""The audit search's filters, read from the query string, and the record they name."""

from django import forms
from django.db.models import Q

from audit.models import AccessedPage
from audit.sources import (
    FIELDS,
    SOURCES,
    Scope,
    order_scope,
    patient_scope,
    subscription_scope,
)
from audit.trail import TrailFilter
from billing.models import Invoice
from emr.kernel.actors import Door
from emr.models import Patient
from emr.workflows.catalogue import EVENT_CHOICES
from orders.models import Order
from subscriptions.models import Subscription

DOOR_CHOICES = [
    ("", "any door"),
    (Door.ADMIN, "admin (staff pages)"),
    (Door.API, "API"),
    (Door.PORTAL, "patient portal"),
    (Door.TASK, "scheduled task"),
    (Door.WEBHOOK, "webhook from a partner"),
    (Door.COMMAND, "management command"),
    (Door.SHELL, "shell or script"),
]
DATE = forms.DateInput(attrs={"type": "date"})


def record_number(value: str, prefix: str) -> str:
    """ "123", "ord-123" and "ORD-000123" all name ORD-000123."""
    value = value.strip().upper()
    digits = value.removeprefix(f"{prefix}-")
    return f"{prefix}-{int(digits):06d}" if digits.isdigit() else value


class TrailFilters(forms.Form):
    """Everything but the record: what a timeline page filters on."""

    actor = forms.CharField(
        required=False, label="Who", help_text="A username, patient: or system: …"
    )
    door = forms.ChoiceField(required=False, choices=DOOR_CHOICES, label="Through")
    since = forms.DateField(required=False, label="From", widget=DATE)
    until = forms.DateField(required=False, label="To", widget=DATE)
    kind = forms.ChoiceField(
        required=False,
        label="Kind of record",
        choices=[("", "every kind"), *[(source.kind, source.label) for source in SOURCES]],
    )
    field = forms.CharField(
        required=False,
        label="Field changed",
        widget=forms.TextInput(attrs={"list": "audit-fields", "placeholder": "status"}),
    )
    event_type = forms.ChoiceField(
        required=False,
        label="Event type",
        choices=[("", "any event"), *EVENT_CHOICES],
    )
    field_names = FIELDS

    def clean_field(self) -> str:
        name = self.cleaned_data["field"].strip().lower().replace(" ", "_")
        if name and name not in FIELDS:
            raise forms.ValidationError(f"No audited record has a field called “{name}”.")
        return name

    def criteria(self, scope: Scope | None = None) -> TrailFilter:
        data = self.cleaned_data
        return TrailFilter(
            scope=scope,
            actor=data.get("actor", "").strip(),
            door=data.get("door", ""),
            since=data.get("since"),
            until=data.get("until"),
            kind=data.get("kind", ""),
            field=data.get("field", ""),
            event_type=data.get("event_type", ""),
        )


class TrailSearch(TrailFilters):
    """The search: the filters, and at most one record (patient, order, invoice, subscription)."""

    patient = forms.CharField(
        required=False, help_text="Patient number, email, or name", label="Patient"
    )
    order = forms.CharField(required=False, label="Order number")
    invoice = forms.CharField(required=False, label="Invoice number")
    subscription = forms.CharField(required=False, label="Subscription number")
    field_order = ["patient", "order", "invoice", "subscription"]
    RECORDS = ("patient", "order", "invoice", "subscription")

    def clean(self):
        data = super().clean()
        named = [name for name in self.RECORDS if (data.get(name) or "").strip()]
        if len(named) > 1:
            raise forms.ValidationError(
                "Search one record at a time: a patient, an order, an invoice or a subscription."
            )
        self.scope = None
        if named:
            name = named[0]
            self.scope = getattr(self, f"_{name}_scope")(data[name].strip())
        return data

    def _order_scope(self, value: str) -> Scope | None:
        order = Order.objects.select_related("patient").filter(number=record_number(value, "ORD"))
        return self._found(order.first(), "order", value, order_scope)

    def _invoice_scope(self, value: str) -> Scope | None:
        invoice = Invoice.objects.select_related("order__patient")
        invoice = invoice.filter(number=record_number(value, "INV")).first()
        if invoice is None:
            return self._found(None, "invoice", value, order_scope)
        # An invoice's trail is its order's: the invoice, its payments, refunds and events.
        return order_scope(invoice.order)

    def _subscription_scope(self, value: str) -> Scope | None:
        digits = value.upper().removeprefix("SUB-")
        found = (
            Subscription.objects.select_related("patient").filter(pk=int(digits)).first()
            if digits.isdigit()
            else None
        )
        return self._found(found, "subscription", value, subscription_scope)

    def _patient_scope(self, value: str) -> Scope | None:
        if value.isdigit():
            matches = list(Patient.objects.filter(pk=int(value)))
        elif "@" in value:
            matches = list(Patient.objects.filter(email__iexact=value))
        else:
            words = value.split()
            query = Q()
            for word in words:
                query &= Q(first_name__icontains=word) | Q(last_name__icontains=word)
            matches = list(Patient.objects.filter(query)[:6])
        if len(matches) > 1:
            self.add_error(
                "patient",
                f"{'More than 5' if len(matches) > 5 else len(matches)} patients match “{value}”: "
                + "; ".join(f"#{patient.pk} {patient.full_name}" for patient in matches[:5])
                + ". Enter the patient's number.",
            )
            return None
        return self._found(matches[0] if matches else None, "patient", value, patient_scope)

    def _found(self, record, name: str, value: str, scope_of) -> Scope | None:
        if record is None:
            self.add_error(name, f"No {name} “{value}” here.")
            return None
        return scope_of(record)


class AccessLogFilters(forms.Form):
    user = forms.CharField(required=False, label="Staff member")
    patient = forms.IntegerField(required=False, min_value=1, label="Patient number")
    page = forms.ChoiceField(
        required=False, choices=[("", "any page"), *AccessedPage.choices], label="What was viewed"
    )
    since = forms.DateField(required=False, label="From", widget=DATE)
    until = forms.DateField(required=False, label="To", widget=DATE)
