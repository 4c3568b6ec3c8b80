"""Input no view can handle answers 4xx in the {code, detail} shape and changes nothing
(issue 12, "bad input never 500s")."""

import json

import pytest
from django.test import Client

from orders.models import Order, Product
from tests.factories import PatientFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

BEYOND_BIGINT = 2**70


@pytest.fixture
def staff_client(billing_admin):
    client = Client()
    client.force_login(billing_admin)
    return client


def _post_json(client, url, body: str | bytes):
    return client.post(url, body, content_type="application/json")


def _refused(response, status, code):
    assert response.status_code == status, response.content
    answer = response.json()
    assert answer["code"] == code and answer["detail"]


def test_a_price_beyond_any_column_is_a_400(staff_client):
    response = _post_json(
        staff_client,
        "/api/v1/products/",
        json.dumps({"name": "Huge", "kind": "SERVICE", "price_cents": BEYOND_BIGINT}),
    )
    _refused(response, 400, "invalid")
    assert "price_cents" in response.json()["detail"]
    assert not Product.objects.filter(name="Huge").exists()


def test_a_quantity_beyond_any_column_is_a_400(staff_client):
    patient, product = PatientFactory(), ProductFactory()
    body = {"patient": patient.pk, "items": [{"product": product.pk, "quantity": BEYOND_BIGINT}]}
    response = _post_json(staff_client, "/api/v1/orders/", json.dumps(body))
    _refused(response, 400, "invalid")
    assert not Order.objects.exists()


@pytest.mark.parametrize("query", ["search=%00", "search=a%00b", "status=%00"])
def test_a_nul_byte_in_the_query_string_is_a_400(staff_client, query):
    _refused(staff_client.get(f"/api/v1/orders/?{query}"), 400, "request.nul_byte")


def test_a_nul_byte_in_a_json_body_is_a_400(staff_client):
    patient = PatientFactory()
    body = json.dumps({"first_name": "A\u0000", "last_name": "B", "email": "nul@example.com"})
    _refused(_post_json(staff_client, "/api/v1/patients/", body), 400, "request.nul_byte")
    assert patient.__class__.objects.filter(email="nul@example.com").count() == 0


def test_a_nul_byte_in_a_webhook_body_is_a_400_before_any_signature_check(client):
    response = client.post(
        "/webhooks/stripe/", b'{"id": "evt_1\x00"}', content_type="application/json"
    )
    _refused(response, 400, "request.nul_byte")


def test_json_nested_thousands_deep_is_a_400(staff_client):
    body = "[" * 5000 + "]" * 5000
    _refused(_post_json(staff_client, "/api/v1/orders/", body), 400, "request.too_deep")


def test_brackets_inside_strings_are_not_nesting(staff_client):
    patient, product = PatientFactory(), ProductFactory()
    body = {
        "patient": patient.pk,
        "items": [{"product": product.pk, "quantity": 1}],
        "note": "[[[[" * 40,
    }
    response = _post_json(staff_client, "/api/v1/orders/", json.dumps(body))
    assert response.status_code == 201, response.content


def test_a_body_over_the_upload_limit_is_a_413_in_the_shape(staff_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"name": "x" * 2048})
    _refused(_post_json(staff_client, "/api/v1/products/", body), 413, "request.too_large")


def test_ordinary_requests_pass_untouched():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/api/v1/orders/").status_code == 200
