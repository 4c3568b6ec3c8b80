"""EMR -> Beluga Logs: every call is logged, and no log row holds a key, a secret or PHI."""

import json

import pytest
from django.test import Client

from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError
from integrations.beluga import services
from integrations.beluga.models import BelugaLog
from integrations.beluga.redaction import REDACTED, redact
from tests.fixtures.beluga import order_awaiting_script, submitted_visit

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")


def every_log_row_as_text() -> str:
    return json.dumps(
        [
            {field.name: str(getattr(row, field.attname)) for field in row._meta.concrete_fields}
            for row in BelugaLog.objects.all()
        ]
    )


def test_no_log_row_contains_the_api_key_the_secret_or_the_patient(beluga, settings):
    order = order_awaiting_script()
    patient = order.patient
    patient.phone, patient.date_of_birth = "+1 555 0100", "1980-02-03"
    patient.save()
    visit = submitted_visit(order)
    # Beluga echoes a wrong key in its 401 message: the log must not keep that either.
    settings.BELUGA_API_KEY = "wrong-key-but-still-a-secret"
    with pytest.raises(DomainError):
        services.cancel_visit(visit=visit, actor=ACTOR, reason="Patient asked")
    settings.BELUGA_API_KEY = beluga.api_key
    beluga.inject("error_in_body", on="cancel", message="Upstream error")
    with pytest.raises(DomainError):
        services.cancel_visit(visit=visit, actor=ACTOR, reason="Patient asked")
    services.cancel_visit(visit=visit, actor=ACTOR, reason="Patient asked")
    chat = {"messageId": "m-1", "body": f"Hi {patient.first_name}", "sender": "Dr. Lee"}
    webhook = beluga.event("DOCTOR_CHAT", visit.master_id, chat)
    Client().post(
        "/webhooks/beluga/", webhook.body, content_type="application/json", headers=webhook.headers
    )

    assert BelugaLog.objects.count() == 5
    logged = every_log_row_as_text()
    for secret in (beluga.api_key, "wrong-key-but-still-a-secret", beluga.webhook_secret):
        assert secret not in logged
    for phi in (patient.first_name, patient.last_name, patient.email, "555 0100", "1980-02-03"):
        assert phi not in logged
    refused = BelugaLog.objects.get(http_status=401)
    assert REDACTED in refused.response_body["error"]
    submitted = BelugaLog.objects.get(operation="submit_visit")
    assert submitted.request_body["patient"]["email"] == REDACTED
    assert submitted.request_body["masterId"] == visit.master_id  # what CS needs stays


def test_redact_replaces_credentials_and_phi_at_any_depth():
    body = {
        "masterId": "EMR-1",
        "apiKey": "k",
        "Authorization": "Bearer k",
        "patient": {"first_name": "Ada", "DOB": "1815-12-10", "address": {"city": "London"}},
        "formObj": {"q1": "free text"},
        "items": [{"name": "Ada", "quantity": 1}],
        "error": "key sk-live-123 rejected",
    }

    assert redact(body, secrets=["sk-live-123"]) == {
        "masterId": "EMR-1",
        "apiKey": REDACTED,
        "Authorization": REDACTED,
        "patient": {"first_name": REDACTED, "DOB": REDACTED, "address": REDACTED},
        "formObj": REDACTED,
        "items": [{"name": REDACTED, "quantity": 1}],
        "error": f"key {REDACTED} rejected",
    }
