"""A billing admin reviews a refunded order in a real browser: signs in with two-factor,
searches the order on /audit/, reads its timeline and exports it. Screenshots of each step go
to test-output/screenshots/ (and AUDIT_SHOTS, when set)."""

import csv
import io
import os
from pathlib import Path

import pytest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.refunds import refund_order
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def shot(page, name: str) -> None:
    for folder in filter(None, [SCREENSHOTS, os.environ.get("AUDIT_SHOTS")]):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"audit-{name}.png"), full_page=True)


def sign_in_with_two_factor(page, live_server, user) -> None:
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    totp = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    totp.time = timezone.now().timestamp()
    page.goto(f"{live_server.url}/audit/")
    assert "/admin/login/" in page.url  # the audit pages send strangers to the staff sign-in
    page.fill("#id_username", user.username)
    page.fill("#id_password", "test-pass-123")
    page.fill("#id_otp_token", f"{totp.token():06d}")
    page.click("input[type=submit]")
    page.wait_for_selector("#trail-filters")


def test_a_billing_admin_searches_an_order_reads_its_timeline_and_exports_it(
    page, live_server, billing_admin, paid_order, system, settings
):
    settings.STAFF_TWO_FACTOR_REQUIRED = True
    order = paid_order("stripe", 12000)
    refund_order(order=order, actor=system, reason="Patient cancelled within the window")
    sign_in_with_two_factor(page, live_server, billing_admin)
    shot(page, "search")

    page.fill("#id_order", order.number)
    page.click("#trail-filters button[type=submit]")
    page.wait_for_selector("#trail")
    shot(page, "order-timeline")
    assert f"Audit trail of order {order.number}" in page.inner_text("h1")
    table = page.inner_text("#trail")
    assert "status: Processing → Refunded" in table
    assert "refund of $120.00 through Stripe: refunded" in table
    assert "event order.refunded" in table
    assert "Patient cancelled within the window" in table

    page.select_option("#id_kind", "gateway call")
    page.click("#trail-filters button[type=submit]")
    page.wait_for_selector("#trail")
    shot(page, "order-timeline-gateway-calls")
    assert page.locator("#trail tbody tr").count() == 2

    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [row["action"].split(" of ")[0] for row in rows] == ["refund", "charge"]

    page.goto(f"{live_server.url}/audit/orders/{order.number}/")
    page.fill("#id_field", "status")
    page.click("#trail-filters button[type=submit]")
    page.wait_for_selector("#trail")
    shot(page, "order-timeline-status-changes")
    assert "status: Pending → Processing" in page.inner_text("#trail")

    page.click("text=Access log")
    page.wait_for_selector("#access-log")
    shot(page, "access-log")
    assert "Audit timeline" in page.inner_text("#access-log")
