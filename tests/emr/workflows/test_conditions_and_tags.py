"""Conditions and merge tags as staff write them."""

import pytest

from emr.workflows import conditions, merge_tags

PAYLOAD = {
    "order": {"status": "AWAITING_PAYMENT", "totalCents": 9900, "total": "$99.00"},
    "patient": {"firstName": "Alex", "phone": ""},
    "subscription": None,
    "lineItems": [{"name": "Monthly membership", "quantity": 1}],
    "paymentRecovery": {"active": True},
}


@pytest.mark.parametrize(
    ("path", "operator", "value", "holds"),
    [
        ("order.status", "equals", "AWAITING_PAYMENT", True),
        ("order.status", "equals", "PROCESSING", False),
        ("order.status", "not_equals", "PROCESSING", True),
        ("order.totalCents", "equals", "9900", True),  # typed as text in a form
        ("order.totalCents", "greater_than", 5000, True),
        ("order.totalCents", "less_than", "5000", False),
        ("order.total", "greater_than", 5, False),  # "$99.00" is not a number
        ("order.status", "contains", "payment", True),
        ("lineItems.0.name", "contains", "membership", True),
        ("paymentRecovery.active", "equals", "true", True),
        ("patient.firstName", "exists", None, True),
        ("patient.phone", "exists", None, False),
        ("subscription", "not_exists", None, True),
        ("subscription.status", "not_exists", None, True),
        ("subscription.status", "not_equals", "ACTIVE", True),
    ],
)
def test_operators(path, operator, value, holds):
    assert conditions.evaluate(PAYLOAD, path=path, operator=operator, value=value) is holds


def test_merge_tags_render_fields_and_leave_empty_ones_empty():
    text = (
        "Hi {{ patient.firstName }}, {{order.total}} for {{lineItems.0.name}}."
        "{{subscription.status}}"
    )
    assert merge_tags.render(text, PAYLOAD) == "Hi Alex, $99.00 for Monthly membership."
    assert merge_tags.tags_in(text) == [
        "patient.firstName",
        "order.total",
        "lineItems.0.name",
        "subscription.status",
    ]
