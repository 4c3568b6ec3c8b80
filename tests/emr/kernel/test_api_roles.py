"""Reads follow staff roles (issue 12, item 5): a staff account without a role reads nothing,
and the schema that maps every patient and money endpoint needs a login."""

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory, make_order

pytestmark = pytest.mark.django_db


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.mark.parametrize(
    "url", ["/api/v1/orders/", "/api/v1/patients/", "/api/v1/schema/", "/api/v1/workflow-events/"]
)
def test_a_staff_account_without_a_role_reads_nothing(url):
    make_order()
    response = _client(UserFactory(username="no-role", is_staff=True)).get(url)
    assert response.status_code == 403
    if "schema" not in url:  # the schema view renders its refusal as OpenAPI, not JSON
        assert response.json()["code"] == "permission_denied"


def test_the_schema_needs_a_login():
    assert _client().get("/api/v1/schema/").status_code in {401, 403}


def test_a_role_reads_what_it_works_with(cs_user):
    order = make_order()
    response = _client(cs_user).get(f"/api/v1/orders/{order.pk}/")
    assert response.status_code == 200
    assert _client(cs_user).get("/api/v1/schema/").status_code == 200
