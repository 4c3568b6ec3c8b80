from django import forms

from emr.support.states import EscalationRoute


class EscalationForm(forms.Form):
    route = forms.ChoiceField(
        choices=EscalationRoute.choices,
        widget=forms.RadioSelect,
        help_text="Pre-selected from the guide's escalation checklist; change it if needed.",
    )
    patient_reason = forms.CharField(
        label="Reason the patient is requesting refund/cancellation",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
    )
    message = forms.CharField(
        label="Exact patient/staff-facing message",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Paste it word for word: the refusal you got, or what the patient saw.",
    )


class SubjectLookupForm(forms.Form):
    """Find what to escalate when the page was opened without an order or subscription."""

    number = forms.CharField(
        label="Order number or subscription",
        help_text="An order number (ORD-000123) or a subscription (SUB-000045).",
    )


class ResolveForm(forms.Form):
    note = forms.CharField(
        label="How it was resolved",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Recorded with your name and the time, in the escalation and its history.",
    )
