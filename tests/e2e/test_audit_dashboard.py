"""A billing admin opens the refunds dashboard in a real browser, signed in with their
authenticator code: the charts render under the Content-Security-Policy, the numbers behind
one open under it, its CSV downloads, and a failed refund links to its order. Each page is
captured in SHOTS (ADMIN_SHOTS_DIR) for review."""

import csv
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.refunds import refund_order
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.support.escalations import open_escalation
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_content_security_policy import _watch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SHOTS = Path(os.environ.get("ADMIN_SHOTS_DIR", SCREENSHOTS / "pages"))


def _sign_in_with_code(page, live_server, user) -> None:
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    totp = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    totp.time = timezone.now().timestamp()
    page.goto(f"{live_server.url}/audit/dashboard/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "test-pass-123")
    page.fill("#id_otp_token", f"{totp.token():06d}")
    page.click("input[type=submit]")


def test_a_billing_admin_reads_the_refunds_dashboard(
    page, live_server, billing_admin, cs_user, paid_order, gateways, system, settings, time_machine
):
    settings.STAFF_TWO_FACTOR_REQUIRED = True
    cs = Actor.staff(cs_user, door=Door.ADMIN)
    now = timezone.now()
    for weeks_ago, cents, reason in [
        (9, 45000, "Patient changed their mind"),
        (6, 12000, "Duplicate charge"),
        (3, 8800, "Patient changed their mind"),
        (1, 20000, "Provider could not see the patient"),
    ]:
        time_machine.move_to(now - timedelta(weeks=weeks_ago))
        refund_order(order=paid_order("stripe", cents), actor=cs, reason=reason)
    time_machine.move_to(now - timedelta(days=2))
    refund_order(order=paid_order("nmi", 15000), actor=system, reason="Duplicate charge")
    declined = paid_order("stripe", 7000)
    gateways.stripe.next_refund("failed", failure_reason="expired_or_canceled_card")
    with pytest.raises(DomainError):
        refund_order(order=declined, actor=cs, reason="Patient changed their mind")
    gateways.stripe.next_refund("pending")
    refund_order(order=paid_order("stripe", 6000), actor=cs, reason="Bank refund")
    open_escalation(actor=cs, patient_reason="Wants the lab fee back", order=declined)
    time_machine.move_to(now)

    refusals, outside = _watch(page)
    _sign_in_with_code(page, live_server, billing_admin)
    page.wait_for_selector("#summary")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "audit-dashboard.png"), full_page=True)

    assert page.inner_text("#content h1") == "Refunds dashboard"
    assert "$1,008.00" in page.inner_text("#summary-refunded")
    assert "5 refunds" in page.inner_text("#summary-refunded")
    assert page.inner_text("#summary-pending strong") == "1"
    assert page.inner_text("#summary-failed strong") == "1"
    assert page.locator("svg.chart").count() == 5
    assert page.locator("#chart-by_gateway text", has_text="Stripe").count() == 1

    page.click("#by_reason summary")
    table = page.inner_text("#by_reason table")
    assert "Patient changed their mind\t2\t$538.00" in table
    page.screenshot(path=str(SHOTS / "audit-dashboard-numbers.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#by_reason a.csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == {
        "Reason": "Patient changed their mind",
        "refunds": "2",
        "amount": "$538.00",
        "amount_cents": "53800",
        "currency": "USD",
    }

    failed = page.inner_text("#failed")
    assert "The card has expired or was cancelled." in failed
    page.click(f"#failed a:text('{declined.number}')")
    page.wait_for_selector("#order-status")
    assert refusals == []
    assert outside == []
