"""How a patient signs in to the portal: with the email the clinic has for them, and a password.

The admin's sign-in names a username and never reaches this backend; the portal's names an
email and never reaches Django's username backend. A staff account found by its email is
authenticated only so that the portal can refuse it with a sentence instead of "wrong
password": the portal never opens a session for staff.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.db.models import Q

User = get_user_model()


def normalize_email(email: str | None) -> str:
    return (email or "").strip().lower()


class PatientEmailBackend(BaseBackend):
    def authenticate(self, request, email=None, password=None, **kwargs):
        if email is None or password is None:
            return None
        email = normalize_email(email)
        users = list(
            User._default_manager.filter(
                Q(patient__email__iexact=email) | Q(is_staff=True, email__iexact=email)
            ).distinct()
        )
        if not users:
            # Hash once anyway, as Django's own backend does: the answer's timing does not
            # tell whether the email has an account.
            User().set_password(password)
        for user in users:
            if user.is_active and user.check_password(password):
                return user
        return None

    def get_user(self, user_id):
        user = User._default_manager.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None


def lockout_username(request, credentials) -> str | None:
    """The account django-axes counts failed sign-ins for (`AXES_USERNAME_CALLABLE`).

    At the portal it is the email typed, normalised: also when axes clears the count after a
    successful portal sign-in, when it knows only the account's username. Elsewhere (the
    admin) it is the username, as axes would read it itself.
    """
    credentials = credentials or {}
    posted = getattr(request, "POST", {})
    email = credentials.get("email") or posted.get("email")
    if email:
        return normalize_email(email)
    return credentials.get("username") or posted.get("username")
