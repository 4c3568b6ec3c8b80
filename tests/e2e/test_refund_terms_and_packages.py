"""Refund terms and session packages in a real browser, on a phone (375 px) and a desktop
(1280 px): the patient opens a package order, reads the generated refund terms on the pay page,
is told to tick them when they pay without, ticks and pays with a saved card; after a session is
redeemed (through the service the front desk's API call uses) they read the package's usage
log; a CS agent opens the order's refund page and reads the policy's quote above the
checklist. axe-core finds no serious or critical violation on the portal pages. Screenshots in
$PORTAL_SCREENSHOTS (default /tmp/shots-portal/), named after the step and the width."""

import re

import pytest
from playwright.sync_api import expect

from billing.models import PolicyAcknowledgement, SessionPackage
from tests.e2e.test_portal import SCREENS, SHOTS, _screen
from tests.factories import PatientFactory
from tests.fixtures.packages import package_order, redeem
from tests.fixtures.portal import give_login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture(params=list(SCREENS))
def screen(browser, live_server, request):
    context, screen = _screen(browser, live_server, request.param)
    yield screen
    context.close()


def test_the_patient_accepts_the_terms_pays_and_reads_the_package_ledger_cs_reads_the_quote(
    screen, browser, live_server, log_in, cs_user, gateways
):
    patient = give_login(PatientFactory(first_name="Maya"))
    order, _card = package_order(patient)
    page = screen.page

    screen.sign_in(patient)
    page.get_by_role("link", name="Orders", exact=True).click()
    page.get_by_role("link", name=re.compile(order.number)).click()
    page.get_by_role("link", name="Pay this order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pay invoice {order.invoice.number}")
    terms = page.locator("#refund-terms")
    expect(terms).to_contain_text("Six facials terms (version 1)")
    expect(terms).to_contain_text("Unused sessions are refunded pro rata within 90 days")
    tick = page.get_by_label("I have read and accept these refund terms.")
    expect(tick).not_to_be_checked()
    screen.check("terms-pay")

    page.get_by_role("button", name="Pay $360.00").click()  # without ticking
    expect(
        page.get_by_text("Tick the box to accept these refund terms before paying.")
    ).to_be_visible()
    assert not PolicyAcknowledgement.objects.filter(order=order).exists()
    screen.check("terms-not-ticked")

    page.get_by_label("I have read and accept these refund terms.").check()
    page.get_by_role("button", name="Pay $360.00").click()
    expect(page.get_by_text("Thank you: $360.00 paid with Visa ····4242.")).to_be_visible()
    screen.shot("terms-paid")
    ack = PolicyAcknowledgement.objects.get(order=order)
    assert ack.channel == "portal" and ack.user_agent  # the browser's own user agent

    package = SessionPackage.objects.get(order_item__order=order)
    redeem(package, provider="Dr. Lee", note="Chart: treated left cheek")  # the front desk
    page.get_by_role("link", name="Packages", exact=True).click()
    expect(page.locator("#packages")).to_contain_text("5 of 6 sessions left · 1 used")
    screen.check("packages")
    page.get_by_role("link", name=re.compile("Six facials")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Six facials")
    expect(page.locator("#sessions")).to_contain_text("Dr. Lee")
    expect(page.get_by_text("Chart: treated left cheek")).to_have_count(0)
    screen.check("package")

    # The order's item links its package.
    page.goto(f"{screen.url}/patient/orders/{order.number}/")
    expect(page.get_by_role("link", name=re.compile("Your sessions"))).to_be_visible()

    admin = browser.new_context(viewport={"width": screen.width, "height": 900})
    cs_page = admin.new_page()
    cs_page.set_default_timeout(15000)
    try:
        log_in(cs_page, cs_user)
        cs_page.goto(f"{live_server.url}/admin/orders/order/{order.pk}/change/")
        expect(cs_page.locator("#package-ledger")).to_contain_text("1 of 6 sessions used, 5 left.")
        expect(cs_page.locator("#package-ledger")).to_contain_text("Chart: treated left cheek")
        cs_page.screenshot(path=str(SHOTS / f"cs-order-ledger-{screen.width}.png"), full_page=True)
        cs_page.get_by_role("link", name="Refund…").click()
        quote = cs_page.locator("#refund-quote")
        expect(quote).to_contain_text(
            "The refund policy allows $300.00 now, of $360.00 still refundable."
        )
        expect(quote).to_contain_text("5 of 6 sessions unused")
        expect(quote).to_contain_text("Terms accepted on")
        assert quote.bounding_box()["y"] < cs_page.locator("#preflight").bounding_box()["y"]
        cs_page.screenshot(path=str(SHOTS / f"cs-refund-quote-{screen.width}.png"), full_page=True)
    finally:
        admin.close()
