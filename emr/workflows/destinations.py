"""Where a workflow's webhook step may send a patient's payload: the public internet only.

A billing admin types the URL, and the payload carries the patient's contact details and money.
A URL naming the cloud's metadata service, loopback, a private network or any other address
that is not a public host would make our server a proxy into the clinic's own network (SSRF).
The address is checked when the workflow is saved and again right before each send, because a
name can resolve elsewhere later.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


def refusal_for(url: str) -> str | None:
    """Why `url` may not receive a webhook, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL."
    if settings.WORKFLOW_WEBHOOK_REQUIRE_HTTPS and parts.scheme != "https":
        return f"{url!r} is not https: payloads carry patient details and go encrypted only."
    if settings.WORKFLOW_WEBHOOK_ALLOW_PRIVATE_HOSTS:
        return None
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except (socket.gaierror, UnicodeError):
        return f"{parts.hostname!r} does not resolve to an address."
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            return (
                f"{parts.hostname!r} is a local, private or reserved address ({ip}); webhooks go "
                "to public hosts only."
            )
    return None
