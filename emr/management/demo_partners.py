"""The partners' moves in the demo story (`seed_demo`), played on the local fake servers `make run`
starts (integrations/fakes): Beluga's prescriber writing the script and concluding the visit,
DispensePro shipping, NMI failing a refund.

Each fake's control API makes the partner's move and answers the signed webhook the partner sent
about it. Under `make run` the fake has already delivered that webhook to the running app; when
it has nowhere to send it (no webhook URL, as in the tests), the event goes through the same inbox
the webhook view hands it to. Either way the app learns it exactly as it would from the partner.
"""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from integrations.beluga import webhook_events as beluga_events
from integrations.beluga.models import BelugaVisit
from integrations.inbox import Outcome, Receipt
from integrations.pharmacy import webhook_events as pharmacy_events
from integrations.pharmacy.models import PharmacyOrder
from integrations.pharmacy.states import WebhookSource

TIMEOUT_SECONDS = 10


def prescriber_writes(visit: BelugaVisit, *, medication: str, prescriber: str) -> None:
    """Beluga's prescriber writes the script (RX_WRITTEN): it goes into the chart and the order
    moves on to fulfilment."""
    prescription = {
        "medication": medication,
        "prescriber": prescriber,
        "writtenAt": timezone.now().isoformat(),
    }
    _beluga_event(visit, "RX_WRITTEN", {"prescriptions": [prescription]})


def prescriber_concludes(visit: BelugaVisit) -> None:
    """The prescriber concludes the visit (VISIT_CONCLUDED): resolved, closed."""
    _beluga_event(visit, "VISIT_CONCLUDED", {})


def pharmacy_ships(pharmacy_order: PharmacyOrder, *, carrier: str, tracking_number: str) -> None:
    """DispensePro ships the order (`order.shipped`)."""
    built = _control(
        "DispensePro",
        settings.DISPENSEPRO_API_URL,
        f"orders/{pharmacy_order.external_id}/ship",
        {"carrier": carrier, "trackingNumber": tracking_number},
    )
    _deliver(
        "DispensePro",
        built,
        lambda body: pharmacy_events.receive_event(
            pharmacy_events.PharmacyEvent.parse(body, source=WebhookSource.DISPENSE_PRO)
        ),
    )


def nmi_fails_next_refund() -> None:
    """NMI answers the next refund with a system error and returns nothing. The demo's sales are
    unsettled (nothing runs NMI's nightly batch on the fake), and an unsettled sale is refunded
    by voiding it: the fault is on the void."""
    api = urlsplit(settings.NMI_API_URL)
    _control("NMI", f"{api.scheme}://{api.netloc}", "faults", {"next": "fail", "on": "void"})


def _beluga_event(visit: BelugaVisit, event: str, data: dict[str, Any]) -> None:
    built = _control(
        "Beluga",
        settings.BELUGA_API_URL,
        "events",
        {"event": event, "masterId": visit.master_id, "data": data},
    )
    _deliver(
        "Beluga",
        built,
        lambda body: beluga_events.receive_event(
            beluga_events.BelugaEvent.parse(body), path=reverse("beluga-webhook")
        ),
    )


def _control(partner: str, base_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    url = f"{base_url.rstrip('/')}/_fake/{path}"
    try:
        response = requests.post(url, json=body, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise _not_a_fake(partner, url, str(error)) from error
    if not response.ok:
        raise _not_a_fake(partner, url, f"HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


def _not_a_fake(partner: str, url: str, answer: str) -> CommandError:
    return CommandError(
        f"The demo plays {partner}'s side on the local fake server `make run` starts, but {url} "
        f"answered {answer}. Run `make run`, or point {partner}'s settings at its fake."
    )


def _deliver(partner: str, built: dict[str, Any], receive: Callable[[Any], Receipt]) -> None:
    delivered = built.get("delivered")
    if delivered is None:
        receipt = receive(json.loads(built["body"]))
        if receipt.outcome != Outcome.PROCESSED:
            raise CommandError(
                f"{partner}'s webhook event was {receipt.outcome.lower()} here: {receipt.detail}"
            )
    elif not isinstance(delivered, int) or not 200 <= delivered < 300:
        raise CommandError(
            f"{partner}'s fake sent its webhook to the app, which answered {delivered}: check "
            f"the {partner} webhook secret the app and the fake share."
        )
