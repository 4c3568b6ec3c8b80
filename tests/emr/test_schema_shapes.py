"""What the API answers has the shape its schema promises (issue 12: lists the schema called
objects, a null the schema called a string)."""

import pytest
import yaml
from rest_framework.test import APIClient

from emr.kernel.actors import Actor, Door
from emr.support.escalations import open_escalation
from tests.factories import SubscriptionFactory, make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(billing_admin):
    client = APIClient()
    client.force_authenticate(billing_admin)
    return client


@pytest.fixture
def schema(api):
    return yaml.safe_load(api.get("/api/v1/schema/").content)


def _response_schema(schema, path):
    return schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def test_order_history_is_the_list_the_schema_says(api, schema):
    order = make_order()
    answer = api.get(f"/api/v1/orders/{order.pk}/history/").json()
    assert isinstance(answer, list) and answer
    assert _response_schema(schema, "/api/v1/orders/{id}/history/")["type"] == "array"


def test_the_workflow_catalogue_is_the_list_the_schema_says(api, schema):
    answer = api.get("/api/v1/workflows/catalogue/").json()
    assert isinstance(answer, list)
    assert {"name", "subjectTypes", "description", "fields"} <= set(answer[0])
    assert _response_schema(schema, "/api/v1/workflows/catalogue/")["type"] == "array"


def test_an_escalation_without_an_order_may_say_null(api, schema, cs_user):
    open_escalation(
        subscription=SubscriptionFactory(),
        patient_reason="Patient asks why they were billed",
        actor=Actor.staff(cs_user, door=Door.API),
    )
    [escalation] = api.get("/api/v1/escalations/").json()["results"]
    assert escalation["order_number"] is None
    assert schema["components"]["schemas"]["Escalation"]["properties"]["order_number"]["nullable"]
