"""The inbox every webhook shares (integrations/inbox.py), where Beluga's, the pharmacies' and
Stripe's own tests do not reach: an event stored by a delivery whose processing never finished
(the process died) is processed when the sender resends it."""

import pytest
from django.test import Client

from emr.models import Prescription
from integrations.beluga.models import BelugaWebhookEvent
from integrations.inbox import Outcome
from tests.fixtures.beluga import order_awaiting_script, submitted_visit

pytestmark = pytest.mark.django_db

RX = {"prescriptions": [{"medication": "Semaglutide 0.25 mg", "prescriber": "Dr. Lee"}]}


def test_an_event_stored_but_never_processed_is_processed_when_resent(beluga):
    visit = submitted_visit(order_awaiting_script())
    webhook = beluga.event("RX_WRITTEN", visit.master_id, RX)
    # What a first delivery leaves behind when the process dies right after storing it.
    BelugaWebhookEvent.objects.create(
        event_id=webhook.event["eventId"], event_type="RX_WRITTEN", master_id=visit.master_id
    )

    response = Client().post(
        "/webhooks/beluga/", webhook.body, content_type="application/json", headers=webhook.headers
    )

    assert response.status_code == 200
    assert response.json()["duplicate"] is False
    stored = BelugaWebhookEvent.objects.get(event_id=webhook.event["eventId"])
    assert (stored.outcome, stored.deliveries) == (Outcome.PROCESSED, 2)
    assert Prescription.objects.filter(order=visit.order).count() == 1
