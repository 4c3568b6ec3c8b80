"""The fuzzer (issue 12): schemathesis over every operation of the OpenAPI schema, against the
app served by pytest-django's live_server, signed in with a billing admin's API token.

Every answer is checked: no server error (5xx), every status and body as the schema documents
them (refusals included: `emr/kernel/api_schema.py`), invalid input refused, unsupported
methods and missing credentials answered as they should be. The gateways and partners are
configured against the local servers (localstripe's sibling fake, the NMI, Beluga and
DispensePro fakes), so a 502 here is a real failure, never a missing configuration.

The run is bounded in examples per operation and in time; its counts are printed in the test
log, and its full output and reports are left in test-output/api-fuzz/. Reproduce or go further:

    API_FUZZ_EXAMPLES=50 API_FUZZ_SEED=7 pytest tests/test_api_fuzz.py -m fuzz
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from billing import payments
from emr.kernel.actors import Actor, Door
from emr.support.escalations import open_escalation
from tests.factories import PatientFactory, make_order
from tests.fixtures.beluga import order_awaiting_script, submitted_visit
from tests.fixtures.dispensepro import order_at_pharmacy
from tests.fixtures.gateways import NMI_CARD, STRIPE_CARD

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(300)]

REPORTS = Path(__file__).resolve().parents[1] / "test-output" / "api-fuzz"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Per operation and phase; with ~60 operations and the coverage phase's own cases this is a few
# thousand requests, about a minute on two cores.
EXAMPLES = os.environ.get("API_FUZZ_EXAMPLES", "5")
SEED = os.environ.get("API_FUZZ_SEED", "12")


@pytest.fixture
def clinic(gateways, beluga, dispensepro, paid_order, subscribe_patient, system, cs_user):
    """A few records of each kind, every charge made through a gateway so that every refund can
    be: an order paid through each gateway, an unpaid one with an NMI card, a subscription, a
    Beluga visit, a DispensePro order and an escalation."""
    paid_order("nmi")
    unpaid = make_order()
    payments.save_card(patient=unpaid.patient, gateway="nmi", token=NMI_CARD, actor=system)
    stripe_order = paid_order("stripe")

    def through_stripe(order):
        card = payments.save_card(
            patient=order.patient, gateway="stripe", token=STRIPE_CARD, actor=system
        )
        payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)

    submitted_visit(order_awaiting_script(paid_by=through_stripe))
    order_at_pharmacy(paid_by=through_stripe)
    subscribe_patient(PatientFactory())
    open_escalation(
        order=stripe_order,
        patient_reason="Patient asks where the refund is",
        actor=Actor.staff(cs_user, door=Door.API),
    )


def test_every_operation_answers_as_its_schema_says(live_server, clinic, billing_admin, capsys):
    token = Token.objects.create(user=billing_admin)
    REPORTS.mkdir(parents=True, exist_ok=True)
    argv = [
        str(SCHEMATHESIS),
        "--no-color",
        "run",
        f"{live_server.url}/api/v1/schema/",
        "--header",
        f"Authorization: Token {token.key}",
        # Stateful sequences need the links drf-spectacular does not write; the resource pool
        # still feeds the ids the list operations answer into the other operations' paths.
        "--phases=examples,coverage,fuzzing",
        "--checks=all",
        # A schema cannot say "an existing patient", "exactly one of payment_method or token" or
        # "a workflow with a step": such valid-looking input is refused with a documented 400,
        # whose status and body the other checks do verify.
        "--exclude-checks=positive_data_acceptance",
        f"--max-examples={EXAMPLES}",
        f"--seed={SEED}",
        "--workers=2",
        "--request-timeout=20",
        "--report=junit,ndjson",
        f"--report-dir={REPORTS}",
    ]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=280, check=False)
    output = run.stdout + run.stderr
    (REPORTS / "schemathesis.txt").write_text(output)
    summary = output[output.rfind("SUMMARY") :] if "SUMMARY" in output else output[-3000:]
    with capsys.disabled():
        print(f"\n== API fuzz (schemathesis, seed {SEED}, {EXAMPLES} examples per operation)")
        print(summary.strip())
    assert run.returncode == 0, f"schemathesis found failures:\n{output[-20000:]}"
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) >= 55, "the schema lost its operations"
