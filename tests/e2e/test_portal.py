"""A patient in a real browser, on a phone (375 px) and on a desktop (1280 px): accepts the
invitation, reads a refund, opens a receipt, pays a recovery invoice from the workflow link,
cancels a subscription after reading what it does, is offered the scheduled cancellation while
a financed balance remains, and finds another patient's order answering 404; adds a card
through the gateway's test tokeniser and manages the saved cards; reads the doctor's messages.
axe-core finds no serious or critical violation on any portal page. Screenshots land in
$PORTAL_SCREENSHOTS (default /tmp/shots-portal/), named after the scenario and the width."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from billing import payments
from billing.models import PaymentMethod
from billing.refunds import refund_order
from emr.kernel.actors import Actor
from emr.portal.accounts import invite_patient
from emr.portal.models import ConsequencesAcknowledgement
from emr.workflows.payloads import recovery_url
from subscriptions import lifecycle
from subscriptions.states import SubscriptionStatus
from tests.e2e.axe import assert_accessible
from tests.factories import PatientFactory
from tests.fixtures.beluga import order_awaiting_script, submitted_visit
from tests.fixtures.portal import PASSWORD, give_login
from tests.integrations.beluga.test_beluga_webhooks import deliver
from tests.subscriptions.conftest import save_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SHOTS = Path(os.environ.get("PORTAL_SCREENSHOTS", "/tmp/shots-portal"))  # noqa: S108 (the brief's folder)
SCREENS = {"phone": (375, 812), "desktop": (1280, 900)}
NEW_PAGES = {"cards", "card", "messages", "recovery"}  # issue 13's last pages


@dataclass
class Screen:
    page: Page
    width: int
    url: str

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}-{self.width}.png"), full_page=True)

    def check(self, name: str) -> None:
        """axe-core on the page as it is, then a screenshot of it."""
        assert_accessible(self.page, name)
        self.shot(name)

    def sign_in(self, patient, password: str = PASSWORD) -> None:
        if "/patient/login/" not in self.page.url:
            self.page.goto(f"{self.url}/patient/login/")
        self.page.get_by_label("Email").fill(patient.email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()


def _screen(browser, live_server, name: str):
    width, height = SCREENS[name]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15000)
    return context, Screen(page, width, live_server.url)


@pytest.fixture(params=list(SCREENS))
def screen(browser, live_server, request):
    context, screen = _screen(browser, live_server, request.param)
    yield screen
    context.close()


@pytest.fixture
def phone(browser, live_server):
    context, screen = _screen(browser, live_server, "phone")
    yield screen
    context.close()


@pytest.fixture
def desktop(browser, live_server):
    context, screen = _screen(browser, live_server, "desktop")
    yield screen
    context.close()


def test_an_invited_patient_sets_a_password_and_signs_in(screen, settings):
    settings.PORTAL_BASE_URL = screen.url
    patient = PatientFactory(first_name="Ada", last_name="Lovelace")
    invite_patient(patient=patient, actor=Actor.system("e2e"))
    link = re.search(r"http://\S+/patient/welcome/\S+/", mail.outbox[-1].body)[0]
    page = screen.page

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome: choose your password")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    screen.shot("invite-choose-password")
    page.get_by_role("button", name="Save my password").click()
    expect(page.get_by_text("Your password is set")).to_be_visible()
    expect(page.get_by_label("Email")).to_be_focused()  # ready to type, keyboard first
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    screen.shot("invite-sign-in")

    screen.sign_in(patient)
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Ada")
    screen.shot("invite-signed-in")


def test_a_patient_sees_a_refunded_order_with_its_refund_line(screen, paid_order, system):
    order = paid_order("stripe", 12000)
    refund_order(order=order, actor=system, reason="Cancelled within the policy window")
    give_login(order.patient)
    page = screen.page

    screen.sign_in(order.patient)
    page.get_by_role("link", name=re.compile(order.number)).first.click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order.number}")
    expect(page.locator("[data-money=refunded]")).to_contain_text(
        "$120.00 refunded to Visa ····4242 on"
    )
    expect(page.locator("[data-money=paid]")).to_contain_text("$120.00 paid with Visa ····4242")
    screen.shot("refunded-order")


def test_a_patient_opens_a_printable_receipt(screen, paid_order):
    order = paid_order("stripe", 4500)
    give_login(order.patient)
    page = screen.page

    screen.sign_in(order.patient)
    page.get_by_role("link", name="Invoices").click()
    page.get_by_role("link", name=re.compile(order.invoice.number)).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Receipt {order.invoice.number}")
    expect(page.locator("#payments")).to_contain_text("Stripe")
    expect(page.get_by_role("button", name="Print or save as PDF")).to_be_visible()
    screen.shot("receipt")
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    screen.shot("receipt-print")


def test_a_patient_follows_the_recovery_link_and_pays_with_a_saved_card(
    screen, recovery_for, settings
):
    settings.PORTAL_BASE_URL = screen.url
    patient = give_login(PatientFactory(first_name="Rob"))
    subscription = recovery_for(patient, name="Monthly care")
    invoice = lifecycle.open_cycle_invoices(subscription)[0]
    save_card(patient)  # a working card, saved with the clinic since the decline
    page = screen.page

    page.goto(recovery_url(invoice))  # the link the workflow's email carries
    screen.sign_in(patient)  # signed out: sign in first, then straight back to the invoice
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pay invoice {invoice.number}")
    expect(page.get_by_label(re.compile(r"Visa ····4242.*\(default\)"))).to_be_checked()
    screen.shot("recovery-pay")
    page.get_by_role("button", name="Pay $99.00").click()

    expect(page.get_by_text("Your Monthly care subscription is active again.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Receipt {invoice.number}")
    screen.shot("recovery-paid")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_a_patient_cancels_a_subscription_after_reading_the_consequences(screen, subscribe_patient):
    patient = give_login(PatientFactory())
    subscription = subscribe_patient(patient, name="Monthly care")
    page = screen.page

    screen.sign_in(patient)
    page.get_by_role("link", name="Subscriptions").click()
    page.get_by_role("link", name=re.compile("Monthly care")).click()
    page.get_by_role("link", name="Cancel now").click()
    consequences = page.locator("#consequences")
    expect(consequences).to_contain_text("It does not refund your last charge")
    expect(consequences).to_contain_text("cannot be restarted")
    screen.shot("cancel-consequences")
    page.get_by_role("button", name="Cancel my subscription").click()
    expect(page.get_by_text("Tick the box")).to_be_visible()  # not without confirming
    page.get_by_label("I have read what will and will not happen.").check()
    page.get_by_role("button", name="Cancel my subscription").click()

    expect(page.get_by_text("Your subscription is cancelled.")).to_be_visible()
    screen.shot("cancel-done")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert ConsequencesAcknowledgement.objects.get().user_agent


def test_with_a_financed_balance_the_patient_is_offered_the_scheduled_cancellation(
    screen, subscribe_patient
):
    patient = give_login(PatientFactory())
    subscription = subscribe_patient(patient, name="Weight care course", financed_cycles=3)
    page = screen.page

    screen.sign_in(patient)
    page.goto(f"{screen.url}/patient/subscriptions/{subscription}/")
    expect(page.get_by_role("link", name="Cancel now")).to_have_count(0)
    expect(page.get_by_text("remaining financed balance").first).to_be_visible()
    screen.shot("financed-offer")
    page.get_by_role("link", name="Schedule cancellation").click()
    expect(page.locator("#consequences")).to_contain_text("$198.00 in all")
    page.get_by_label("I have read what will and will not happen.").check()
    page.get_by_role("button", name="Schedule my cancellation").click()

    expect(page.get_by_text("Your cancellation is scheduled.")).to_be_visible()
    screen.shot("financed-scheduled")
    subscription.refresh_from_db()
    assert subscription.has_scheduled_cancellation
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_another_patients_order_number_answers_404(screen, paid_order):
    theirs = paid_order("stripe", 7777)
    mine = give_login(PatientFactory())
    page = screen.page

    screen.sign_in(mine)
    response = page.goto(f"{screen.url}/patient/orders/{theirs.number}/")

    assert response.status == 404
    expect(page.get_by_text("We could not find that in your account")).to_be_visible()
    expect(page.get_by_text("$77.77")).to_have_count(0)
    screen.shot("other-patients-order")


def test_a_patient_adds_a_card_through_the_tokeniser_and_manages_the_saved_cards(
    phone, gateways, system
):
    payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")
    patient = give_login(PatientFactory())
    save_card(patient, token="pm_card_amex")
    save_card(patient)  # Visa ····4242, the default
    theirs = save_card(PatientFactory())
    page = phone.page
    policy_refusals, posted = [], []
    page.on("console", lambda m: "Content Security Policy" in m.text and policy_refusals.append(m))
    page.on(
        "request",
        lambda r: r.method == "POST" and r.url.startswith(phone.url) and posted.append(r.post_data),
    )

    phone.sign_in(patient)
    page.get_by_role("link", name="Cards").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your cards")
    # Stripe's public test card, typed into the Stripe.js stand-in the fake serves.
    page.get_by_label("Card number").fill("5555 5555 5555 4444")
    page.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    page.get_by_label("Security code (CVC)").fill("123")
    phone.check("cards-add")
    page.get_by_role("button", name="Save card").click()

    expect(
        page.get_by_text("Mastercard ····4444 is saved. It is now your default card.")
    ).to_be_visible()
    added = page.locator("#saved-cards li").first
    expect(added).to_contain_text("Mastercard ····4444")
    expect(added).to_contain_text("Default")
    card_post = next(body for body in posted if "gateway=stripe" in (body or ""))
    assert "&token=pm_" in card_post and "5555" not in card_post  # only the token reached us

    page.get_by_role("button", name="Make default for Visa ····4242").click()
    expect(page.get_by_text("Visa ····4242 is now your default card.")).to_be_visible()
    page.get_by_role("link", name="Remove American Express ····8431").click()
    phone.check("card-remove")
    page.get_by_role("button", name="Remove American Express ····8431").click()
    expect(page.get_by_text("American Express ····8431 is removed.")).to_be_visible()
    phone.check("cards-after")

    cards = PaymentMethod.objects.filter(patient=patient, removed_at__isnull=True)
    assert sorted((c.last4, c.is_default) for c in cards) == [("4242", True), ("4444", False)]
    assert policy_refusals == []
    response = page.goto(f"{phone.url}/patient/cards/{theirs.pk}/")
    assert response.status == 404
    expect(page.get_by_text("We could not find that in your account")).to_be_visible()


def test_with_nmi_active_a_patient_adds_a_card_through_collect_js(desktop, gateways, system):
    payments.set_active_gateway(gateway="nmi", actor=system, reason="test setup")
    patient = give_login(PatientFactory())
    page = desktop.page
    policy_refusals = []
    page.on("console", lambda m: "Content Security Policy" in m.text and policy_refusals.append(m))

    desktop.sign_in(patient)
    page.goto(f"{desktop.url}/patient/cards/")
    # NMI's public test Visa, typed into the Collect.js stand-in the NMI fake serves.
    page.get_by_label("Card number").fill("4111 1111 1111 1111")
    page.get_by_label("Expiry (MM / YY)").fill("09 / 41")
    page.get_by_label("Security code (CVV)").fill("999")
    desktop.check("cards-add-nmi")
    page.get_by_role("button", name="Save card").click()

    expect(page.get_by_text("Visa ····1111 is saved. It is now your default card.")).to_be_visible()
    card = PaymentMethod.objects.get(patient=patient)
    assert (card.gateway, card.exp_month, card.exp_year) == ("nmi", 9, 2041)
    assert policy_refusals == []


def test_no_portal_page_has_a_serious_accessibility_violation(
    screen, recovery_for, beluga, settings
):
    settings.PORTAL_BASE_URL = screen.url
    visit = submitted_visit(order_awaiting_script())
    patient = give_login(visit.order.patient)
    for event, body in [("DOCTOR_CHAT", "How is the new dose?"), ("ADMIN_CHAT", "Internal note")]:
        data = {"messageId": f"m-{event}", "sender": "Dr. Lee", "body": body}
        assert deliver(beluga.event(event, visit.master_id, data)).status_code == 200
    subscription = recovery_for(patient, name="Monthly care")
    invoice = lifecycle.open_cycle_invoices(subscription)[0]
    card = save_card(patient)
    paid = visit.order.invoice
    page = screen.page

    for name, path in [
        ("sign-in", "/patient/login/"),
        ("password-reset", "/patient/password-reset/"),
    ]:
        page.goto(f"{screen.url}{path}")
        screen.check(name)
    screen.sign_in(patient)
    pages = [
        ("dashboard", "/patient/"),
        ("orders", "/patient/orders/"),
        ("order", f"/patient/orders/{visit.order.number}/"),
        ("invoices", "/patient/invoices/"),
        ("receipt", f"/patient/invoices/{paid.number}/"),
        ("recovery", f"/patient/invoices/?recovery=1&invoice={invoice.number}"),
        ("subscriptions", "/patient/subscriptions/"),
        ("subscription", f"/patient/subscriptions/{subscription}/"),
        ("subscription-change", f"/patient/subscriptions/{subscription}/cancel/"),
        ("cards", "/patient/cards/"),
        ("card", f"/patient/cards/{card.pk}/"),
        ("messages", "/patient/messages/"),
    ]
    for name, path in pages:
        response = page.goto(f"{screen.url}{path}")
        assert response.status == 200, (path, response.status)
        assert_accessible(page, name)
        if name in NEW_PAGES:  # the others have their screenshots in the scenarios above
            screen.shot(name)
    expect(page.get_by_text("How is the new dose?")).to_be_visible()
    expect(page.get_by_text("Internal note")).to_have_count(
        0
    )  # the clinic's channel stays internal
