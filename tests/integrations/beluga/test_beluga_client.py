"""BelugaClient against the fake Beluga server: the contract in client.py, on the wire."""

import pytest

from integrations.beluga.client import BelugaClient
from integrations.beluga.errors import (
    BelugaError,
    BelugaNotConfigured,
    BelugaTimeout,
    BelugaUnreachable,
)
from integrations.http import Exchange
from tests.fixtures.servers import free_port

PATIENT = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.test"}


@pytest.fixture
def exchanges():
    return []


@pytest.fixture
def client(beluga, exchanges):
    return BelugaClient(
        base_url=beluga.base_url, api_key=beluga.api_key, timeout=1.0, on_exchange=exchanges.append
    )


def submit(client, master_id="EMR-1"):
    return client.submit_visit(master_id=master_id, patient=PATIENT, form={}, products=[])


def test_submit_opens_a_pending_visit_and_is_idempotent_per_master_id(client, beluga):
    first = submit(client)
    again = submit(client)

    assert (first.master_id, first.visit_status, first.resolved_status) == (
        "EMR-1",
        "pending",
        "open",
    )
    assert again == first
    assert list(beluga.visits()) == ["EMR-1"]


def test_get_and_cancel(client, beluga):
    submit(client)

    cancelled = client.cancel_visit(master_id="EMR-1", reason="changed mind")
    again = client.cancel_visit(master_id="EMR-1", reason="changed mind")

    assert (cancelled.visit_status, cancelled.resolved_status) == ("canceled", "closed")
    assert again == cancelled  # idempotent
    assert client.get_visit(master_id="EMR-1") == cancelled


def test_every_exchange_is_reported_without_headers(client, exchanges):
    submit(client)

    (exchange,) = exchanges
    assert isinstance(exchange, Exchange)
    assert (exchange.operation, exchange.method, exchange.path) == (
        "submit_visit",
        "POST",
        "/visits",
    )
    assert exchange.http_status == 201
    assert exchange.response_body["data"]["masterId"] == "EMR-1"
    assert exchange.error == ""
    assert "Authorization" not in repr(exchange)


def test_an_error_in_a_200_body_is_an_error(client, beluga, exchanges):
    beluga.inject("error_in_body", on="submit", message="Patient state not supported")

    with pytest.raises(BelugaError) as failed:
        submit(client)

    assert failed.value.beluga_message == "Patient state not supported."
    assert failed.value.beluga_http_status == 200
    assert exchanges[-1].error == failed.value.detail
    assert beluga.visits() == {}


def test_an_http_error_without_json_is_an_error(client, beluga):
    beluga.inject("html_error")

    with pytest.raises(BelugaError, match="HTTP 502 Bad Gateway"):
        submit(client)


def test_unknown_visit_is_beluga_404(client):
    with pytest.raises(BelugaError) as failed:
        client.get_visit(master_id="nope")
    assert failed.value.beluga_http_status == 404
    assert "No visit with masterId nope" in failed.value.detail


def test_a_wrong_key_is_refused(beluga):
    client = BelugaClient(base_url=beluga.base_url, api_key="wrong-key", timeout=1.0)
    with pytest.raises(BelugaError) as failed:
        submit(client)
    assert failed.value.beluga_http_status == 401


def test_no_answer_in_time_is_a_timeout(beluga):
    client = BelugaClient(base_url=beluga.base_url, api_key=beluga.api_key, timeout=0.3)
    beluga.inject("hang", seconds=1.0)

    with pytest.raises(BelugaTimeout, match=r"did not answer within 0\.3 seconds"):
        submit(client)


def test_nobody_listening_is_unreachable():
    client = BelugaClient(base_url=f"http://127.0.0.1:{free_port()}", api_key="k", timeout=1.0)
    with pytest.raises(BelugaUnreachable) as failed:
        submit(client)
    assert failed.value.code == "beluga.error"


@pytest.mark.parametrize(("url", "key"), [("", "key"), ("http://beluga.test", "")])
def test_missing_settings_mean_not_configured(url, key):
    with pytest.raises(BelugaNotConfigured):
        BelugaClient(base_url=url, api_key=key, timeout=1.0)
