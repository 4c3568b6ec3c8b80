"""DispenseProClient against the fake DispensePro server: the contract in dispensepro.py."""

import pytest

from integrations.pharmacy.dispensepro import DispenseProClient
from integrations.pharmacy.errors import (
    AlreadyShipped,
    PharmacyError,
    PharmacyNotConfigured,
    PharmacyTimeout,
    PharmacyUnreachable,
)
from tests.fixtures.servers import free_port


@pytest.fixture
def client(dispensepro):
    return DispenseProClient(base_url=dispensepro.base_url, api_key=dispensepro.api_key, timeout=1)


def submit(client, reference="ORD-1-RXA"):
    return client.submit_order(
        reference=reference,
        patient={"firstName": "Ada"},
        items=[{"medication": "Semaglutide", "quantity": 1}],
        prescriber="Dr. Lee",
    )


def test_submit_is_idempotent_per_reference(client, dispensepro):
    first = submit(client)
    again = submit(client)

    assert first.status == "received"
    assert first.reference == "ORD-1-RXA"
    assert again == first
    assert list(dispensepro.orders()) == [first.id]


def test_void_before_shipment_and_again(client):
    order = submit(client)

    voided = client.void_order(order_id=order.id, reason="Patient cancelled")

    assert voided.status == "voided"
    assert client.void_order(order_id=order.id, reason="again") == voided
    assert client.get_order(order_id=order.id) == voided


def test_void_after_shipment_is_already_shipped(client, dispensepro):
    order = submit(client)
    dispensepro.ship(order.id, carrier="UPS", trackingNumber="1Z999")

    with pytest.raises(AlreadyShipped) as refused:
        client.void_order(order_id=order.id, reason="too late")

    assert refused.value.code == "pharmacy.already_shipped"
    shipped = client.get_order(order_id=order.id)
    assert (shipped.status, shipped.carrier, shipped.tracking_number) == ("shipped", "UPS", "1Z999")


def test_errors_carry_dispensepro_message(client, dispensepro):
    dispensepro.inject("http_error")
    with pytest.raises(PharmacyError, match="Internal error, please retry") as failed:
        submit(client)
    assert failed.value.provider_http_status == 500
    assert dispensepro.orders() == {}

    with pytest.raises(PharmacyError, match="No order dp_missing"):
        client.get_order(order_id="dp_missing")


def test_a_wrong_key_is_refused(dispensepro):
    client = DispenseProClient(base_url=dispensepro.base_url, api_key="wrong", timeout=1)
    with pytest.raises(PharmacyError) as failed:
        submit(client)
    assert failed.value.provider_code == "unauthorized"


def test_timeouts_and_dropped_answers_are_unknown_outcomes(dispensepro):
    client = DispenseProClient(
        base_url=dispensepro.base_url, api_key=dispensepro.api_key, timeout=0.3
    )
    dispensepro.inject("hang", seconds=1.0)
    with pytest.raises(PharmacyTimeout, match=r"did not answer within 0\.3 seconds"):
        submit(client, "R-1")

    dispensepro.inject("drop")
    with pytest.raises(PharmacyTimeout, match="closed the connection"):
        submit(client, "R-2")


def test_nobody_listening_is_unreachable():
    client = DispenseProClient(base_url=f"http://127.0.0.1:{free_port()}", api_key="k", timeout=1)
    with pytest.raises(PharmacyUnreachable):
        submit(client)


def test_missing_settings_mean_not_configured():
    with pytest.raises(PharmacyNotConfigured):
        DispenseProClient(base_url="", api_key="k", timeout=1)
