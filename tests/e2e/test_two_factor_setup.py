"""A billing admin's first sign-in in a real browser: the set-up page comes first, its QR code
renders under the Content-Security-Policy, and a code from the app opens the admin."""

import pytest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_a_billing_admin_sets_up_two_factor_at_first_sign_in(
    page, live_server, billing_admin, settings
):
    settings.STAFF_TWO_FACTOR_REQUIRED = True
    billing_admin.set_password("test-pass-123")
    billing_admin.save()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", billing_admin.username)
    page.fill("#id_password", "test-pass-123")
    page.click("input[type=submit]")

    page.wait_for_selector("#two-factor-qr")
    assert page.url.endswith("/admin/two-factor/")
    assert page.evaluate("document.querySelector('#two-factor-qr').naturalWidth") > 0
    page.screenshot(path="test-output/screenshots/two_factor_setup.png", full_page=True)

    device = TOTPDevice.objects.get(user=billing_admin, confirmed=False)
    totp = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    totp.time = timezone.now().timestamp()
    page.fill("#id_code", f"{totp.token():06d}")
    page.click("#two-factor-setup input[type=submit]")
    page.wait_for_selector("#user-tools")
    assert "Two-factor sign-in is on" in page.inner_text(".messagelist")
