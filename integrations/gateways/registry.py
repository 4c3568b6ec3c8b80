"""Gateway name -> the adapter configured from settings.

The merchant account is what a payment remembers about who took it. Set
`STRIPE_MERCHANT_ACCOUNT` / `NMI_MERCHANT_ACCOUNT` to the account id so that rotating a key within
one account keeps old payments refundable; unset, it is a fingerprint of the key (never the key),
so credentials for another account are told apart from the ones that took the payment.
"""

import hashlib

from django.conf import settings

from integrations.gateways.base import GatewayName, GatewayNotConfigured, PaymentGateway
from integrations.gateways.instrumented import Instrumented
from integrations.gateways.nmi_gateway import NmiGateway
from integrations.gateways.stripe_gateway import StripeGateway


def _fingerprint(gateway: GatewayName, secret: str) -> str:
    digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
    return f"{gateway}:key-{digest}"


def merchant_account(gateway: GatewayName) -> str:
    if gateway == GatewayName.STRIPE:
        explicit, secret = settings.STRIPE_MERCHANT_ACCOUNT, settings.STRIPE_SECRET_KEY
    else:
        explicit, secret = settings.NMI_MERCHANT_ACCOUNT, settings.NMI_SECURITY_KEY
    if explicit:
        return explicit
    return _fingerprint(gateway, secret) if secret else ""


# The settings a gateway needs before it can be called: "configured" means all of them are set.
REQUIRED_SETTINGS = {
    GatewayName.STRIPE: ("STRIPE_SECRET_KEY", "STRIPE_API_BASE"),
    GatewayName.NMI: ("NMI_SECURITY_KEY", "NMI_API_URL", "NMI_QUERY_URL"),
}


def missing_settings(gateway: str) -> list[str]:
    """The names of the settings `gateway` still needs (never their values)."""
    return [name for name in REQUIRED_SETTINGS.get(gateway, ()) if not getattr(settings, name)]


def is_configured(gateway: str) -> bool:
    return gateway in REQUIRED_SETTINGS and not missing_settings(gateway)


def gateway_for(gateway: str) -> PaymentGateway:
    """The adapter for `gateway` (timed, counted and logged); raises GatewayNotConfigured when
    its settings are missing."""
    if not is_configured(gateway):
        raise GatewayNotConfigured(
            f"The {gateway} payment gateway is not configured on this server. "
            "Ask an administrator to set its credentials."
        )
    name = GatewayName(gateway)
    timeout = settings.GATEWAY_TIMEOUT_SECONDS
    if name == GatewayName.STRIPE:
        adapter = StripeGateway(
            api_key=settings.STRIPE_SECRET_KEY,
            api_base=settings.STRIPE_API_BASE,
            merchant_account=merchant_account(name),
            timeout=timeout,
        )
    else:
        adapter = NmiGateway(
            security_key=settings.NMI_SECURITY_KEY,
            api_url=settings.NMI_API_URL,
            query_url=settings.NMI_QUERY_URL,
            merchant_account=merchant_account(name),
            timeout=timeout,
        )
    return Instrumented(adapter)
