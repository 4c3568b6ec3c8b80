"""A workflow that could not run as written is refused when it is saved, with a sentence that
says which step and what to fix."""

import pytest

from emr.kernel.errors import InvalidInput
from emr.workflows.validation import StepSpec, validate_definition


def refusal(trigger: str, *steps: tuple[str, dict]) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        validate_definition(
            trigger=trigger, steps=[StepSpec(kind=kind, config=config) for kind, config in steps]
        )
    return refused.value


def test_a_merge_tag_that_does_not_resolve_is_refused_with_a_suggestion():
    problem = refusal(
        "payment.failed", ("email", {"subject": "Hi", "body": "Hi {{patient.firstNam}}"})
    )
    assert problem.code == "workflow.unknown_merge_tag"
    assert problem.detail == (
        "Step 1 (email): body: the merge tag {{patient.firstNam}} is not a field of "
        "payment.failed. Did you mean patient.firstName?"
    )


def test_a_tag_of_a_section_the_trigger_does_not_carry_is_refused():
    problem = refusal("subscription.cancelled", ("sms", {"body": "{{order.orderNumber}}"}))
    assert problem.code == "workflow.unknown_merge_tag"
    assert "not a field of subscription.cancelled" in problem.detail


def test_an_unclosed_tag_is_refused():
    problem = refusal("order.updated", ("sms", {"body": "Hi {{patient.firstName"}))
    assert problem.code == "workflow.unknown_merge_tag"


def test_an_unknown_path_is_refused():
    problem = refusal(
        "order.updated",
        ("sms", {"body": "ok"}),
        ("condition", {"path": "order.colour", "operator": "equals", "value": "red"}),
    )
    assert problem.code == "workflow.unknown_path"
    assert problem.detail.startswith("Step 2 (condition): 'order.colour' is not a field")


def test_a_bad_operator_is_refused_with_the_list_of_operators():
    problem = refusal(
        "order.updated", ("condition", {"path": "order.status", "operator": "is", "value": "X"})
    )
    assert problem.code == "workflow.unknown_operator"
    assert "equals, not_equals, contains, exists, not_exists, greater_than, less_than" in (
        problem.detail
    )


@pytest.mark.parametrize(
    ("steps", "code"),
    [
        ((), "workflow.no_steps"),
        ((("teleport", {}),), "workflow.invalid_step"),
        ((("wait", {}),), "workflow.invalid_step"),
        ((("wait", {"hours": -1}),), "workflow.invalid_step"),
        ((("webhook", {"url": "ftp://example.test"}),), "workflow.invalid_step"),
        ((("email", {"subject": "s"}),), "workflow.invalid_step"),  # no body
        ((("sms", {"body": "x", "colour": "red"}),), "workflow.invalid_step"),
        ((("status_update", {"status": "REFUNDED"}),), "workflow.invalid_step"),
        ((("status_update", {"status": "PROCESSING"}),), "workflow.invalid_step"),
        (
            (
                (
                    "condition",
                    {"path": "order.totalCents", "operator": "greater_than", "value": "x"},
                ),
            ),
            "workflow.condition_value_not_a_number",
        ),
        (
            (("condition", {"path": "order.status", "operator": "equals"}),),
            "workflow.condition_value_required",
        ),
    ],
)
def test_steps_that_cannot_run_are_refused(steps, code):
    assert refusal("order.updated", *steps).code == code


def test_a_status_update_needs_an_order_in_the_payload():
    problem = refusal("subscription.cancelled", ("status_update", {"status": "CANCELLED"}))
    assert "not about an order" in problem.detail


def test_an_unknown_trigger_is_refused():
    problem = refusal("order.exploded", ("sms", {"body": "x"}))
    assert problem.code == "workflow.unknown_event"


def test_a_valid_definition_comes_back_with_defaults_filled_in():
    [condition, email] = validate_definition(
        trigger="payment.failed",
        steps=[
            StepSpec("condition", {"path": "order.status", "operator": "exists"}),
            StepSpec("email", {"subject": "{{order.orderNumber}}", "body": "{{order.total}}"}),
        ],
    )
    assert condition.config["reread"] is False
    assert email.config["to"] == "{{patient.email}}"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://224.0.0.1/hook",
    ],
)
def test_a_webhook_to_a_local_or_private_address_is_refused_at_save(settings, url):
    settings.WORKFLOW_WEBHOOK_REQUIRE_HTTPS = False
    problem = refusal("order.refunded", ("webhook", {"url": url}))
    assert "public hosts only" in problem.detail


def test_production_sends_webhooks_over_https_only(settings):
    settings.WORKFLOW_WEBHOOK_REQUIRE_HTTPS = True
    problem = refusal("order.refunded", ("webhook", {"url": "http://hooks.example.com/x"}))
    assert "not https" in problem.detail
