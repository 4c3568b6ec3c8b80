"""What every API door shares: staff-only access by permission, strict integer fields for
money and quantities, throttles, and token sign-in that guessing cannot outrun. (The error
shape is `emr.kernel.api_errors`.)"""

from django.conf import settings
from django.core.cache import cache
from django.db import models
from rest_framework import exceptions, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class IsStaff(BasePermission):
    """A patient's portal login has no API access; only active staff with a role do.

    Reads follow the roles too: reading a record needs its view permission (patient contact
    details travel in orders, events and payloads), and a staff account without a role reads
    nothing at all.
    """

    message = "Only clinic staff with a role can use the API; ask an administrator for one."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        if request.method not in SAFE_METHODS:
            return True
        model = _model_of(view)
        if model is None:
            return user.is_superuser or user.groups.exists()
        return user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")


def _model_of(view):
    """The model a view reads, as DRF's own model permissions find it."""
    if getattr(view, "queryset", None) is not None:
        return view.queryset.model
    if hasattr(view, "get_queryset"):
        return view.get_queryset().model
    return None


class ActionPermission(IsStaff):
    """`view.action_permissions` maps a viewset action ("create") or, on a plain APIView, an
    HTTP method ("post") to the permission it needs; anything unlisted needs only staff."""

    message = "Your role does not allow this action. Ask a billing admin."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        key = getattr(view, "action", None) or request.method.lower()
        required = getattr(view, "action_permissions", {}).get(key)
        return required is None or request.user.has_perm(required)


# The largest value every integer column of ours holds (PostgreSQL `integer`); money is cents,
# so this is over $21 million, beyond any clinic sale.
MAX_INTEGER = 2**31 - 1


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: no "12", no 12.5, no true. Money and quantities use it.

    Bounded by default: a number beyond what the column holds is a 400, not a database error.
    """

    default_error_messages = {
        "invalid": "Must be a whole number (an integer, not text or a decimal)."
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", MAX_INTEGER)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """Text and nothing else: DRF's own field turns a JSON 0 into "0", which the schema (a
    string) does not allow."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false and nothing else: DRF's own field also takes 1, "yes" and "on"."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose text and boolean columns take only what the schema says."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.BooleanField: StrictBooleanField,
    }


class PageNumbers(PageNumberPagination):
    """DRF's page numbers, except that `?page=` (no number) is refused like `?page=abc`, not
    read as the first page: the schema says a page is an integer."""

    def get_page_number(self, request, paginator):
        if request.query_params.get(self.page_query_param, None) == "":
            raise exceptions.NotFound(self.invalid_page_message)
        return super().get_page_number(request, paginator)


class TokenRateThrottle(UserRateThrottle):
    """Requests per API token (or signed-in user), at the rate the settings name now."""

    def get_rate(self) -> str:
        return settings.API_THROTTLE_PER_TOKEN


class AddressRateThrottle(SimpleRateThrottle):
    """Requests per client address, whoever signs them: many tokens behind one address share
    one budget."""

    scope = "address"

    def get_rate(self) -> str:
        return settings.API_THROTTLE_PER_ADDRESS

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class GuardedTokenAuthentication(TokenAuthentication):
    """DRF's token sign-in, with a budget of wrong tokens per client address.

    Throttles run after authentication, so a wrong token is refused before any throttle counts
    it: guessing would be free. Here each refused token counts against its address
    (API_TOKEN_FAILURES_PER_ADDRESS, read at call time); over the budget every token from that
    address, a right one too, is answered 429 until the window ends, so a guess that happens to
    be right cannot be told from a wrong one. Other addresses are not concerned.
    """

    def authenticate(self, request):
        if not self._sends_token(request):
            return None
        key, limit, window = self._budget(request)
        if (cache.get(key) or 0) >= limit:
            raise TokenGuessingThrottled(wait=window)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            # add() starts the window only once; incr() counts in it, atomically in Redis.
            cache.add(key, 0, timeout=window)
            try:
                cache.incr(key)
            except ValueError:  # the window ended between the two calls
                cache.set(key, 1, timeout=window)
            raise

    def _sends_token(self, request) -> bool:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        return header.split(" ", 1)[0].lower() == self.keyword.lower()

    @staticmethod
    def _budget(request) -> tuple[str, int, int]:
        throttle = AddressRateThrottle()
        limit, window = throttle.parse_rate(settings.API_TOKEN_FAILURES_PER_ADDRESS)
        return f"api_token_failures_{throttle.get_ident(request)}", limit, window


class TokenGuessingThrottled(exceptions.Throttled):
    default_detail = "Too many wrong API tokens from this address. Wait, then try again."
    default_code = "throttled"
