"""What the clinic sent, in a real browser: the patient reads it on a 375 px phone (axe-core
checked), and a billing admin reads the communication log on the patient's admin page."""

import pytest
from django.core import mail
from playwright.sync_api import expect

from emr.models import SentMessage
from emr.workflows.catalogue import get_event_type
from emr.workflows.payloads import build_payload
from emr.workflows.steps import EmailStep, StepContext
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_portal import phone  # noqa: F401  (the 375 px screen fixture)
from tests.factories import make_order
from tests.fixtures.portal import give_login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _send_receipt(order) -> None:
    """The workflow email step itself, as a receipt automation runs it."""
    config = EmailStep().validate(
        {
            "subject": "Your receipt for {{order.orderNumber}}",
            "body": "Hi {{patient.firstName}}, "
            "we received {{order.total}}. Sessions unused after 90 days are not refunded.",
        },
        event=get_event_type("order.created"),
    )
    context = StepContext(
        workflow_id=1,
        workflow_name="Receipts",
        signing_secret="",
        payload=build_payload(order),
        idempotency_key=f"receipt-{order.pk}",
    )
    EmailStep().run(config, context)


def test_the_patient_reads_the_clinic_email_and_the_admin_sees_it_opened(
    phone,  # noqa: F811  (the fixture imported above)
    page,
    live_server,
    log_in,
    billing_admin,
):
    order = make_order()
    patient = give_login(order.patient)
    _send_receipt(order)
    [sent] = mail.outbox

    phone.sign_in(patient)
    phone.page.goto(f"{phone.url}/patient/messages/")
    expect(phone.page.get_by_text(f"Email: Your receipt for {order.number}")).to_be_visible()
    assert_accessible(phone.page, "messages-from-clinic")
    phone.page.screenshot(path=str(SCREENSHOTS / "portal-messages-375.png"), full_page=True)
    assert SentMessage.objects.get().opened_at is not None

    log_in(page, billing_admin)
    page.goto(f"{live_server.url}/admin/emr/patient/{patient.pk}/change/")
    log = page.inner_text("table.communication-log")
    page.screenshot(path=str(SCREENSHOTS / "patient-communication-log.png"), full_page=True)
    assert f"Your receipt for {order.number}" in log
    assert sent.subject in log and "Sent" in log
    assert "not yet" not in log  # opened in the portal
