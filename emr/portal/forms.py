"""The portal's forms: labels and error sentences written for patients."""

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError

from emr.kernel.errors import Forbidden
from emr.portal.accounts import portal_patient

WRONG_CREDENTIALS = (
    "That email and password do not match a portal account. Check both and try again, or "
    "reset your password."
)


class SignInForm(forms.Form):
    """Email and password; what `LoginView` needs of an authentication form."""

    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, request=None, *args, **kwargs):
        self.request = request
        self.user = None
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        email, password = cleaned.get("email"), cleaned.get("password")
        if email and password:
            user = authenticate(self.request, email=email, password=password)
            if user is None:
                raise ValidationError(WRONG_CREDENTIALS, code="invalid_login")
            try:
                portal_patient(user)
            except Forbidden as refusal:
                raise ValidationError(refusal.detail, code=refusal.code) from refusal
            self.user = user
        return cleaned

    def get_user(self):
        return self.user


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label="Your email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class ChoosePasswordForm(SetPasswordForm):
    """Django's set-password form (the password rules apply), in the portal's words."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = "New password"
        self.fields["new_password2"].label = "The same password again"
        self.fields["new_password1"].help_text = (
            "At least 12 characters. Not a common password, not only numbers, and not close to "
            "your name or email."
        )


class ConfirmChangeForm(forms.Form):
    """The patient confirms what they read; `shown` is the fingerprint of that text."""

    shown = forms.CharField(widget=forms.HiddenInput, max_length=64)
    understood = forms.BooleanField(
        label="I have read what will and will not happen.",
        error_messages={"required": "Tick the box to confirm you have read what will happen."},
    )


ACCEPT_TERMS = "I have read and accept these refund terms."
MUST_ACCEPT = "Tick the box to accept these refund terms before paying. No money was taken."


class PayInvoiceForm(forms.Form):
    """The card to pay with and, when the order's refund terms need it, a tick beside each
    version's text (`accept_<version id>`); `terms_shown` is the fingerprint of the terms the
    page showed, so what is recorded as accepted is exactly what the patient read."""

    def __init__(self, *args, cards=(), terms=(), terms_sha256="", **kwargs):
        super().__init__(*args, **kwargs)
        self.terms = list(terms)
        self.terms_to_accept = [item for item in self.terms if item.must_accept]
        if self.terms_to_accept:
            self.fields["terms_shown"] = forms.CharField(
                widget=forms.HiddenInput, max_length=64, initial=terms_sha256
            )
            for item in self.terms_to_accept:
                self.fields[self.accept_field(item)] = forms.BooleanField(
                    label=ACCEPT_TERMS, error_messages={"required": MUST_ACCEPT}
                )
        default = next((card.pk for card in cards if card.is_default), None)
        self.fields["card"] = forms.TypedChoiceField(
            label="Pay with",
            coerce=int,
            choices=[(card.pk, card.label) for card in cards],
            initial=default,
            widget=forms.RadioSelect,
            error_messages={"required": "Choose the card to pay with."},
        )

    @staticmethod
    def accept_field(terms) -> str:
        return f"accept_{terms.version_id}"

    def shown_terms(self):
        """(terms, bound checkbox or None) for each version, in the order's item order."""
        return [
            (item, self[self.accept_field(item)] if item.must_accept else None)
            for item in self.terms
        ]

    @property
    def accepted_terms_sha256(self) -> str | None:
        """The fingerprint of the terms the patient ticked, or None when none were asked."""
        return self.cleaned_data.get("terms_shown") if self.terms_to_accept else None


class AddCardForm(forms.Form):
    """What the card form posts: the gateway's token for the card, never the card."""

    gateway = forms.CharField(widget=forms.HiddenInput, max_length=20)
    token = forms.CharField(widget=forms.HiddenInput, max_length=255)


class SignDocumentForm(forms.Form):
    """A signature: the typed full name (the signature itself, enough on its own, so a keyboard
    or screen-reader user signs exactly as anyone else), and the drawing from the page's canvas
    when the patient drew one. `version` and `shown` name the words the page showed."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    shown = forms.CharField(widget=forms.HiddenInput, max_length=64)
    typed_name = forms.CharField(
        label="Type your full name to sign",
        max_length=200,
        help_text="Your typed name is your signature.",
        widget=forms.TextInput(attrs={"autocomplete": "name", "spellcheck": "false"}),
        error_messages={"required": "Type your full name to sign."},
    )
    # A PNG data URL; about 270 KB of base64 at most for the 200 KB the service accepts.
    signature = forms.CharField(widget=forms.HiddenInput, required=False, max_length=280_000)
