"""Links into the support pages from other admin screens."""

from urllib.parse import urlencode

from django.urls import reverse


def escalation_url(*, order=None, subscription=None, message: str = "") -> str:
    """The escalation page, prefilled with the record and the exact message CS saw."""
    query = {"order": order.pk} if order is not None else {"subscription": subscription.pk}
    if message:
        query["message"] = message
    return f"{reverse('admin:support_escalation_new')}?{urlencode(query)}"
