"""Test helpers: workflows built through the service, payments through the billing service."""

from __future__ import annotations

from billing.models import Payment
from billing.payments import record_failed_charge, record_successful_charge
from billing.states import PaymentKind, PaymentStatus
from emr.kernel.actors import Actor, Door
from emr.workflows import services
from emr.workflows.models import Workflow
from emr.workflows.validation import StepSpec
from integrations.gateways.base import ChargeResult

TESTS = Actor.system("tests", door=Door.SHELL)


def make_workflow(trigger: str, *steps: tuple[str, dict], name: str = "Automation") -> Workflow:
    return services.create_workflow(
        name=name,
        trigger=trigger,
        steps=[StepSpec(kind=kind, config=config) for kind, config in steps],
        actor=TESTS,
    )


def _pending_charge(order) -> Payment:
    return Payment.objects.create(
        invoice=order.invoice,
        kind=PaymentKind.CHARGE,
        status=PaymentStatus.PENDING,
        gateway="stripe",
        amount_cents=order.total_cents,
        currency=order.currency,
    )


def fail_charge(order) -> Payment:
    """A declined charge, recorded the way billing records it (emits payment.failed)."""
    return record_failed_charge(
        payment=_pending_charge(order), message="Your card was declined.", actor=TESTS
    )


def pay(order) -> Payment:
    result = ChargeResult(
        transaction_id=f"txn_{order.pk}", amount_cents=order.total_cents, currency="usd", card=None
    )
    return record_successful_charge(
        payment=_pending_charge(order), result=result, actor=TESTS, reason="Paid"
    )


# The recovery automation of the issue: on payment.failed, if the order still waits for payment
# after a wait, email the recovery link.
RECOVERY_STEPS = (
    ("condition", {"path": "order.status", "operator": "equals", "value": "AWAITING_PAYMENT"}),
    ("wait", {"hours": 24}),
    (
        "condition",
        {
            "path": "order.status",
            "operator": "equals",
            "value": "AWAITING_PAYMENT",
            "reread": True,
        },
    ),
    (
        "email",
        {
            "subject": "Payment needed for {{order.orderNumber}}",
            "body": "Hi {{patient.firstName}}, pay {{paymentRecovery.amountDue}} here: "
            "{{paymentRecovery.recoveryUrl}}",
        },
    ),
)
