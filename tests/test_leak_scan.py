"""After money moves, the database and the logs hold no card number and no configured secret
(issue 12, item 8).

The scenario charges and refunds through both gateways, and tries the ways a card number gets
in: typed where a token belongs, at the pay and the save-card doors. Then every text column of
every table, and every log line, is scanned.
"""

import logging
import re

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models
from rest_framework.test import APIClient

from billing.refunds import refund_order
from emr.kernel.card_numbers import is_card_number
from tests.factories import PatientFactory, make_order

pytestmark = pytest.mark.django_db

CARD_NUMBERS_TRIED = ["4242424242424242", "5555 5555 5555 4444", "4000-0566-5566-5556"]
DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12,18}")
# Gateway references and idempotency keys are UUIDs: their hex groups can hold a Luhn-valid run
# of digits by chance, which is not a card number.
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
SECRET_SETTINGS = [
    "SECRET_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "NMI_SECURITY_KEY",
    "NMI_WEBHOOK_SIGNING_KEY",
    "BELUGA_API_KEY",
    "BELUGA_WEBHOOK_SECRET",
    "DISPENSEPRO_API_KEY",
    "DISPENSEPRO_WEBHOOK_SECRET",
    "OWN_PHARMACY_WEBHOOK_SECRET",
]
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def _move_money_and_try_card_numbers(paid_order, system, cs_user):
    stripe_order, nmi_order = paid_order("stripe", 9000), paid_order("nmi", 7000)
    refund_order(order=stripe_order, actor=system, reason="Partial", amount_cents=2500)
    refund_order(order=stripe_order, actor=system, reason="Rest")
    refund_order(order=nmi_order, actor=system, reason="Patient request")

    api = APIClient()
    api.force_authenticate(cs_user)
    unpaid, patient = make_order(), PatientFactory()
    for number in CARD_NUMBERS_TRIED:
        api.post(
            f"/api/v1/invoices/{unpaid.invoice.pk}/pay/",
            {"gateway": "nmi", "token": number},
            format="json",
        )
        api.post(
            f"/api/v1/patients/{patient.pk}/payment-methods/",
            {"gateway": "nmi", "token": number},
            format="json",
        )


def _stored_texts():
    for model in apps.get_models():
        fields = [f.attname for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        if not fields:
            continue
        for row in model.objects.values_list(*fields):
            for value in row:
                if value:
                    yield f"{model._meta.label}", str(value)


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = [run for run in DIGIT_RUN.findall(UUID.sub("", text)) if is_card_number(run)]
    return found + [f"secret {secret[:4]}…" for secret in secrets if secret in text]


def test_no_card_number_or_secret_is_stored_or_logged(paid_order, system, cs_user, caplog):
    caplog.set_level(logging.DEBUG)
    _move_money_and_try_card_numbers(paid_order, system, cs_user)
    secrets = [value for name in SECRET_SETTINGS if (value := getattr(settings, name, ""))]
    assert secrets, "the scenario should run with keys configured"

    stored = [
        f"{table}: {leak}" for table, text in _stored_texts() for leak in _leaks(text, secrets)
    ]
    logged = [
        f"{record.name}: {leak}"
        for record in caplog.records
        for leak in _leaks(record.getMessage(), secrets)
    ]

    assert stored == []
    assert logged == []


def test_the_scan_finds_what_it_looks_for():
    """A scan that cannot fail proves nothing: it sees a number and a secret when they are there."""
    assert _leaks("declined 4242 4242 4242 4242", []) == ["4242 4242 4242 4242"]
    assert _leaks("key sk_test_abc in text", ["sk_test_abc"]) == ["secret sk_t…"]
    assert _leaks("order ORD-000123, 1700000000 cents", ["sk_test_abc"]) == []
