"""A patient signs a consent in a real browser, on a phone (375 px) and a desktop (1280 px), and
the order that waited for it goes on. On the phone they sign with the keyboard only (the typed
name is the signature); on the desktop they also draw on the pad with the mouse. The staff order
page names the unsigned consent first. axe-core finds no serious or critical violation, the
Content-Security-Policy refuses nothing (the pad's script is the app's own), and the PDF the
patient downloads is byte for byte the one stored at signing. Screenshots land in
$PORTAL_SCREENSHOTS (default /tmp/shots-portal/), named after the page and the width."""

import hashlib
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from emr.models import SignedDocument
from orders.models import Order
from orders.states import OrderStatus
from tests.e2e.test_portal import SCREENS, _screen
from tests.fixtures.portal import give_login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture(params=list(SCREENS))
def screen(browser, live_server, request):
    context, screen = _screen(browser, live_server, request.param)
    yield screen
    context.close()


def _csp_refusals(page) -> list[str]:
    refusals: list[str] = []
    page.on(
        "console",
        lambda message: (
            refusals.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return refusals


def test_a_patient_signs_a_consent_and_the_order_goes_on(screen, consent_order, consent):
    patient = give_login(consent_order.patient)
    page = screen.page
    refusals = _csp_refusals(page)
    keyboard_only = screen.width < 400

    screen.sign_in(patient)
    attention = page.locator("[data-attention=document]")
    expect(attention).to_contain_text("Please sign: Ketamine consent")
    screen.check("documents-home")
    page.get_by_role("link", name="Documents").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your documents")
    expect(page.locator("#to-sign")).to_contain_text(
        f"Order {consent_order.number} goes on once you sign it."
    )
    screen.check("documents-to-sign")
    page.get_by_role("link", name=re.compile("Read and sign: Ketamine consent")).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Sign: Ketamine consent")
    expect(page.locator("#document-text")).to_contain_text(
        "I will not drive for 24 hours after a session."
    )
    expect(page.locator("[data-signature-pad]")).to_be_visible()  # the app's script ran
    screen.check("documents-sign")

    name = page.get_by_label("Type your full name to sign")
    if keyboard_only:
        name.focus()
        page.keyboard.type("Ada Lovelace")
        page.keyboard.press("Enter")  # submits the form: no pointer needed
    else:
        canvas = page.locator("#signature-canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 30, box["y"] + box["height"] * 0.6)
        page.mouse.down()
        for step in range(1, 25):
            page.mouse.move(
                box["x"] + 30 + step * 12,
                box["y"] + box["height"] * (0.6 - 0.25 * ((step % 4) - 1.5) / 1.5),
            )
        page.mouse.up()
        name.fill("Ada Lovelace")
        screen.shot("documents-sign-drawn")
        page.get_by_role("button", name="Sign Ketamine consent").click()

    expect(page.get_by_text("Thank you: Ketamine consent is signed.")).to_be_visible()
    signed = SignedDocument.objects.get(patient=patient)
    assert (signed.signature_png is None) == keyboard_only
    expect(page.get_by_role("heading", level=1)).to_have_text("Ketamine consent")
    if not keyboard_only:
        expect(page.get_by_alt_text("Your drawn signature")).to_be_visible()
    screen.check("documents-signed")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the signed PDF").click()
    content = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(content).hexdigest() == signed.pdf_sha256

    assert Order.objects.get(pk=consent_order.pk).status == OrderStatus.PROCESSING
    page.goto(f"{screen.url}/patient/orders/{consent_order.number}/")
    expect(page.locator(".badge").first).to_have_text("In progress")
    page.get_by_role("link", name="Documents").click()
    expect(page.locator("#nothing-to-sign")).to_be_visible()
    expect(page.locator("#signed")).to_contain_text("Ketamine consent")
    screen.check("documents-list-signed")
    assert refusals == []


def test_staff_see_the_unsigned_consent_on_the_order_page(
    page, live_server, log_in, cs_user, consent_order
):
    log_in(page, cs_user)
    page.goto(f"{live_server.url}/admin/orders/order/{consent_order.pk}/change/")
    expect(page.locator("#unsigned-documents")).to_contain_text("Ketamine consent not signed")
    expect(page.locator("#order-status")).to_have_text("Awaiting requirements (intake, signatures)")
