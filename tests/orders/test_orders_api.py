import pytest
from rest_framework.test import APIClient

from billing.models import Invoice
from emr.models import NumberSequence, Patient
from orders.models import Order, OrderItem
from orders.states import OrderStatus
from tests.factories import PatientFactory, ProductFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def _counts():
    sequences = tuple(
        NumberSequence.objects.order_by("prefix").values_list("last_value", flat=True)
    )
    return (Order.objects.count(), OrderItem.objects.count(), Invoice.objects.count(), sequences)


def test_create_order_gives_pending_order_and_sent_invoice(api):
    patient = PatientFactory()
    consult, labs = ProductFactory(price_cents=12000), ProductFactory(price_cents=4550)

    response = api.post(
        "/api/v1/orders/",
        {
            "patient": patient.pk,
            "items": [{"product": consult.pk, "quantity": 1}, {"product": labs.pk, "quantity": 2}],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["total_cents"] == 12000 + 2 * 4550
    assert body["refunded_cents"] == 0
    assert body["invoice"]["status"] == "SENT"
    assert body["invoice"]["amount_cents"] == body["total_cents"]
    assert body["payments"] == []
    order = Order.objects.get(pk=body["id"])
    assert order.history.get().history_door == "api"
    assert order.history.get().history_actor == "cs-agent"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"patient": 999999, "items": [{"product": "PRODUCT", "quantity": 1}]}, "patient"),
        ({"patient": "PATIENT", "items": [{"product": 999999, "quantity": 1}]}, "items"),
        ({"patient": "PATIENT", "items": [{"product": "PRODUCT", "quantity": 0}]}, "items"),
        ({"patient": "PATIENT", "items": [{"product": "PRODUCT", "quantity": -2}]}, "items"),
        ({"patient": "PATIENT", "items": [{"product": "PRODUCT", "quantity": 1.5}]}, "items"),
        ({"patient": "PATIENT", "items": [{"product": "PRODUCT", "quantity": "2"}]}, "items"),
        ({"patient": "PATIENT", "items": [{"product": "PRODUCT", "quantity": True}]}, "items"),
        ({"patient": "PATIENT", "items": [{"product": "PRODUCT"}]}, "items"),
        ({"patient": "PATIENT", "items": []}, "items"),
        ({"patient": "PATIENT", "items": "not a list"}, "items"),
        ({"patient": "PATIENT"}, "items"),
        ({"items": [{"product": "PRODUCT", "quantity": 1}]}, "patient"),
        ({"patient": ["PATIENT"], "items": [{"product": "PRODUCT", "quantity": 1}]}, "patient"),
    ],
)
def test_bad_input_answers_400_and_writes_nothing(api, payload, field):
    patient, product = PatientFactory(), ProductFactory()
    swap = {"PATIENT": patient.pk, "PRODUCT": product.pk}

    def fill(value):
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fill(item) for item in value]
        return swap.get(value, value) if isinstance(value, str) else value

    before = _counts()
    response = api.post("/api/v1/orders/", fill(payload), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"].startswith(field)
    assert _counts() == before


def test_inactive_product_answers_400_with_its_code(api):
    patient, retired = PatientFactory(), ProductFactory(active=False, name="Old cream")
    before = _counts()
    response = api.post(
        "/api/v1/orders/",
        {"patient": patient.pk, "items": [{"product": retired.pk, "quantity": 1}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "order.product_inactive",
        "detail": "Old cream is no longer sold and cannot be ordered.",
    }
    assert _counts() == before


def test_malformed_json_answers_400_with_the_shape(api):
    response = api.generic("POST", "/api/v1/orders/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_transition_and_refusals(api):
    order = make_order()
    ok = api.post(
        f"/api/v1/orders/{order.pk}/transition/",
        {"status": "CANCELLED", "reason": "Duplicate"},
        format="json",
    )
    assert ok.status_code == 200
    assert ok.json()["status"] == "CANCELLED"
    assert ok.json()["invoice"]["status"] == "CANCELLED"

    refused = api.post(
        f"/api/v1/orders/{order.pk}/transition/",
        {"status": "SHIPPED", "reason": "oops"},
        format="json",
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "order.invalid_transition"

    Order.objects.filter(pk=order.pk).update(status=OrderStatus.REFUNDED)
    locked = api.post(
        f"/api/v1/orders/{order.pk}/transition/",
        {"status": "RETURNED", "reason": "x"},
        format="json",
    )
    assert locked.status_code == 409
    assert locked.json()["code"] == "order.locked"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


@pytest.mark.parametrize("target", OrderStatus.values)
def test_a_refunded_order_answers_locked_to_every_move(api, target):
    order = make_order()
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.REFUNDED)

    response = api.post(
        f"/api/v1/orders/{order.pk}/transition/",
        {"status": target, "reason": "Try anyway"},
        format="json",
    )

    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "order.locked"
    assert response.json()["detail"]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


@pytest.mark.parametrize("action", [None, "refund", "cancel"])
def test_the_preflight_checklist_answers_for_each_action(api, action):
    order = make_order()
    query = "" if action is None else f"?action={action}"

    response = api.get(f"/api/v1/orders/{order.pk}/preflight/{query}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["action"] == (action or "refund")
    assert body["order_number"] == order.number
    assert body["items"] and all(isinstance(item["ok"], bool) for item in body["items"])


def test_an_unknown_preflight_action_is_a_400_with_the_shape(api):
    order = make_order()
    response = api.get(f"/api/v1/orders/{order.pk}/preflight/?action=teleport")
    assert response.status_code == 400
    assert response.json()["code"] == "preflight.unknown_action"
    assert "refund or cancel" in response.json()["detail"]


def test_transition_needs_a_known_status_and_a_reason(api):
    order = make_order()
    assert (
        api.post(
            f"/api/v1/orders/{order.pk}/transition/", {"status": "LOST"}, format="json"
        ).status_code
        == 400
    )
    assert (
        api.post(
            f"/api/v1/orders/{order.pk}/transition/", {"status": "CANCELLED"}, format="json"
        ).status_code
        == 400
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING


def test_history_lists_changes_newest_first(api):
    order = make_order()
    api.post(
        f"/api/v1/orders/{order.pk}/transition/",
        {"status": "CANCELLED", "reason": "Duplicate"},
        format="json",
    )
    history = api.get(f"/api/v1/orders/{order.pk}/history/").json()

    newest = history[0]
    assert newest["actor"] == "cs-agent"
    assert newest["door"] == "api"
    assert newest["reason"] == "Duplicate"
    order_change = next(entry for entry in history if entry["record"].startswith("order"))
    assert order_change["changes"]["status"] == ["PENDING", "CANCELLED"]
    invoice_change = next(entry for entry in history if entry["record"].startswith("invoice"))
    assert invoice_change["changes"]["status"] == ["SENT", "CANCELLED"]


def test_missing_order_is_404_with_the_shape(api):
    response = api.get("/api/v1/orders/999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_patients_have_no_api_access(db):
    patient_user = UserFactory(username="patient-login", is_staff=False)
    client = APIClient()
    client.force_authenticate(patient_user)
    response = client.get("/api/v1/orders/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_anonymous_is_401_with_the_shape():
    response = APIClient().get("/api/v1/orders/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_only_billing_admins_create_products(api, billing_admin):
    payload = {"name": "Semaglutide 4 weeks", "kind": "MEDICATION", "price_cents": 29900}
    assert api.post("/api/v1/products/", payload, format="json").status_code == 403

    admin_api = APIClient()
    admin_api.force_authenticate(billing_admin)
    created = admin_api.post("/api/v1/products/", payload, format="json")
    assert created.status_code == 201
    assert created.json()["price_cents"] == 29900
    assert (
        admin_api.post(
            "/api/v1/products/", {**payload, "price_cents": 10.5}, format="json"
        ).status_code
        == 400
    )


def test_patient_create_and_duplicate_email(api):
    payload = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.test"}
    assert api.post("/api/v1/patients/", payload, format="json").status_code == 201
    duplicate = api.post("/api/v1/patients/", payload, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["detail"].startswith("email")
    assert Patient.objects.count() == 1


def test_openapi_schema_and_docs(api):
    schema = api.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/orders/{id}/transition/" in schema.content
    assert api.get("/api/v1/docs/").status_code == 200
