"""Automations saved before the recovery state took its stored name keep matching after it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("workflows", "0002_automations")]
AFTER = [("workflows", "0003_order_status_events")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_conditions_on_the_old_recovery_name_are_renamed_to_the_stored_one():
    apps = _migrate(BEFORE)
    workflow = apps.get_model("workflows", "Workflow").objects.create(
        name="Recovery", trigger="payment.failed"
    )
    steps = apps.get_model("workflows", "WorkflowStep").objects
    condition = {"path": "paymentRecovery.status", "operator": "equals", "value": "PAYMENT_FAILED"}
    renamed = steps.create(workflow=workflow, position=1, kind="condition", config=condition)
    other = steps.create(
        workflow=workflow,
        position=2,
        kind="condition",
        config={"path": "order.status", "operator": "equals", "value": "PAYMENT_FAILED"},
    )

    apps = _migrate(AFTER)

    steps = apps.get_model("workflows", "WorkflowStep").objects
    assert steps.get(pk=renamed.pk).config == {**condition, "value": "CHARGE_FAILED"}
    assert steps.get(pk=other.pk).config["value"] == "PAYMENT_FAILED"  # another path: untouched
