"""Payloads: one builder per section, exactly the documented fields, no card data, and the
latest payload rebuilt from the database."""

import pytest

from billing.models import PaymentMethod
from emr.kernel.actors import Actor
from emr.models import IntakeResponse
from emr.workflows import catalogue, payloads
from emr.workflows.outbox import emit
from orders.states import OrderStatus
from tests.emr.workflows.helpers import fail_charge, pay
from tests.factories import PatientFactory, SubscriptionFactory, make_order

pytestmark = pytest.mark.django_db

CARD_WORDS = ("token", "last4", "brand", "cvc", "exp_", "expMonth", "transaction")


def assert_documented(payload: dict, subject_type: str) -> None:
    assert set(payload) == set(catalogue.SUBJECT_SECTIONS[subject_type])
    for section, value in payload.items():
        fields = set(catalogue.SECTION_FIELDS[section])
        items = value if section in catalogue.LIST_SECTIONS else [value]
        for item in items:
            if item is not None:
                assert set(item) == fields, section


def assert_no_card_data(payload) -> None:
    text = str(payload)
    for word in CARD_WORDS:
        assert word not in text


def test_every_subject_payload_has_exactly_the_documented_fields():
    order = make_order(patient=PatientFactory(phone="+15555550100"))
    order.subscription = SubscriptionFactory(patient=order.patient)
    failed = fail_charge(order)
    intake = IntakeResponse.objects.create(patient=order.patient, order=order, questionnaire="Q")
    subjects = {
        "patient": order.patient,
        "order": order,
        "invoice": order.invoice,
        "payment": failed,
        "subscription": order.subscription,
        "intake": intake,
    }
    for subject_type, subject in subjects.items():
        payload = payloads.build_payload(subject)
        assert payloads.subject_type_of(subject) == subject_type
        assert_documented(payload, subject_type)
        assert_no_card_data(payload)


def test_sample_payloads_have_the_shape_of_the_real_ones():
    for event_type in catalogue.EVENTS.values():
        sample = payloads.sample_payload(event_type)
        assert set(sample) == set(event_type.sections)
        for section, value in sample.items():
            items = value if section in catalogue.LIST_SECTIONS else [value]
            assert all(set(item) == set(catalogue.SECTION_FIELDS[section]) for item in items)


def test_order_payload_in_recovery_carries_the_recovery_link():
    order = make_order()
    PaymentMethod.objects.create(
        patient=order.patient,
        gateway="stripe",
        gateway_token="pm_secret_token",
        brand="visa",
        last4="4242",
        exp_month=1,
        exp_year=2030,
    )
    fail_charge(order)
    order.refresh_from_db()

    payload = payloads.build_payload(order)

    assert payload["order"]["status"] == OrderStatus.AWAITING_PAYMENT
    recovery = payload["paymentRecovery"]
    assert recovery["active"] is True
    assert recovery["status"] == "CHARGE_FAILED"  # a usable card exists: ask to retry
    assert recovery["amountDue"] == "$50.00"
    assert recovery["lastFailureMessage"] == "Your card was declined."
    assert recovery["recoveryUrl"].endswith(
        f"/patient/invoices?recovery=1&invoice={order.invoice.number}"
    )
    assert_no_card_data(payload)


def test_the_latest_payload_is_rebuilt_from_the_database():
    order = make_order()
    event = emit("payment.failed", subject=fail_charge(order), actor=Actor.system("tests"))
    pay(order)

    assert event.payload["order"]["status"] == OrderStatus.AWAITING_PAYMENT
    assert payloads.latest_payload(event)["order"]["status"] == OrderStatus.PROCESSING
    assert payloads.latest_payload(event)["paymentRecovery"]["status"] == "NONE"


def test_subscription_payload_counts_days_until_renewal():
    from datetime import timedelta

    from django.utils import timezone

    subscription = SubscriptionFactory(next_billing_at=timezone.now() + timedelta(days=3, hours=1))
    assert payloads.build_payload(subscription)["subscription"]["daysUntilRenewal"] == 4


def test_the_catalogue_names_every_event_of_the_issue_with_its_fields():
    names = {
        "order.created",
        "order.updated",
        "order.cancelled",
        "order.rejected",
        "order.shipped",
        "order.completed",
        "order.returned",
        "order.refunded",
        "invoice.paid",
        "payment.failed",
        "payment.refunded",
        "subscription.created",
        "subscription.renewal_order_created",
        "subscription.paused",
        "subscription.resumed",
        "subscription.cancelled",
        "subscription.cancellation_scheduled",
        "subscription.cancellation_withdrawn",
        "subscription.upcoming_renewal",
        "intake.pending",
        "intake.rejected",
        "beluga.visit_cancelled",
        "pharmacy.order_voided",
        "package.expiring",
        "package.expired",
        "dispute.opened",
    }
    assert set(catalogue.EVENTS) == names
    fields = catalogue.get_event_type("payment.failed").fields()
    assert "paymentRecovery.recoveryUrl" in fields and "patient.firstName" in fields
    assert (
        "subscription.daysUntilRenewal"
        in catalogue.get_event_type("subscription.upcoming_renewal").fields()
    )


def test_a_dispute_payload_carries_its_due_date_and_the_charge_it_disputes():
    fields = catalogue.get_event_type("dispute.opened").fields()
    assert {
        "dispute.evidenceDueBy",
        "dispute.amount",
        "payment.amount",
        "order.orderNumber",
    } <= set(fields)
