"""The portal's documents: what to sign and what was signed; signing with the typed name (and a
drawing when made); the signed PDF exactly as stored; another patient's document is 404; the
pages cost the same queries however much the patient signed. And the staff API's list."""

import base64
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emr import documents
from emr.models import SignedDocument
from orders.models import Order
from orders.states import OrderStatus
from tests.factories import PatientFactory
from tests.fixtures.documents import CONSENT_BODY, drawn_png, sign

pytestmark = pytest.mark.django_db


def _sign_form(client, template):
    page = client.get(f"/patient/documents/{template.pk}/sign/")
    assert page.status_code == 200
    return page


def _post(client, template, *, name, drawing=b""):
    version = template.current
    data = {"version": version.pk, "shown": version.text_sha256, "typed_name": name}
    if drawing:
        data["signature"] = "data:image/png;base64," + base64.b64encode(drawing).decode()
    return client.post(
        f"/patient/documents/{template.pk}/sign/", data, HTTP_USER_AGENT="PortalTest/1.0"
    )


def test_the_patient_reads_signs_and_downloads_and_the_order_goes_on(
    consent_order, consent, portal_client
):
    client = portal_client(consent_order.patient)
    listing = client.get("/patient/documents/").content.decode()
    assert "Read and sign: Ketamine consent" in listing
    assert f"Order {consent_order.number} goes on once you sign it." in listing
    home = client.get("/patient/").content.decode()
    assert "Please sign: Ketamine consent" in home
    order_page = client.get(f"/patient/orders/{consent_order.number}/").content.decode()
    assert "Waiting for your signature" in order_page

    page = _sign_form(client, consent).content.decode()
    assert "Consent to ketamine treatment" in page
    assert "I will not drive for 24 hours after a session." in page
    assert "signature.js" in page and "<canvas" in page

    response = _post(client, consent, name="Ada Lovelace", drawing=drawn_png())
    signed = SignedDocument.objects.get(patient=consent_order.patient)
    assert response.status_code == 302
    assert response["Location"] == f"/patient/documents/signed/{signed.pk}/"
    assert Order.objects.get(pk=consent_order.pk).status == OrderStatus.PROCESSING
    assert signed.user_agent == "PortalTest/1.0" and signed.ip_address == "127.0.0.1"
    assert bytes(signed.signature_png) == drawn_png()

    shown = client.get(response["Location"]).content.decode()
    assert "Thank you: Ketamine consent is signed." in shown
    assert "I will not drive for 24 hours after a session." in shown
    assert signed.text_sha256 in shown and "data:image/png;base64," in shown
    pdf = client.get(f"/patient/documents/signed/{signed.pk}/pdf/")
    assert pdf["Content-Type"] == "application/pdf"
    assert "attachment" in pdf["Content-Disposition"]
    assert hashlib.sha256(pdf.content).hexdigest() == signed.pdf_sha256
    assert "Nothing to sign right now." in client.get("/patient/documents/").content.decode()
    # Signed: the sign page is gone (nothing left to sign there).
    assert client.get(f"/patient/documents/{consent.pk}/sign/").status_code == 404


def test_the_typed_name_alone_signs_and_a_wrong_name_is_explained(
    consent_order, consent, portal_client
):
    client = portal_client(consent_order.patient)
    wrong = _post(client, consent, name="Grace Hopper")
    assert wrong.status_code == 400
    assert "Type your full name as it is on your record: Ada Lovelace." in wrong.content.decode()
    assert not SignedDocument.objects.exists()

    assert _post(client, consent, name="ada lovelace").status_code == 302
    signed = SignedDocument.objects.get()
    assert signed.signature_png is None
    assert Order.objects.get(pk=consent_order.pk).status == OrderStatus.PROCESSING


def test_words_revised_while_the_page_was_open_are_not_signed(
    consent_order, consent, portal_client, system
):
    client = portal_client(consent_order.patient)
    version = consent.current
    documents.revise_template(template=consent, title="Consent", body="New words.", actor=system)
    response = client.post(
        f"/patient/documents/{consent.pk}/sign/",
        {"version": version.pk, "shown": version.text_sha256, "typed_name": "Ada Lovelace"},
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert "was updated while the page was open" in body and "New words." in body
    assert not SignedDocument.objects.exists()


def test_another_patients_document_is_not_found(consent_order, consent, portal_client):
    signed = sign(consent_order.patient, consent)
    other = portal_client(PatientFactory())
    for url in (
        f"/patient/documents/signed/{signed.pk}/",
        f"/patient/documents/signed/{signed.pk}/pdf/",
        f"/patient/documents/signed/{signed.pk + 1000}/",
        f"/patient/documents/{consent.pk}/sign/",
    ):
        response = other.get(url)
        assert response.status_code == 404, url
        assert b"We could not find that in your account." in response.content
        assert b"%PDF" not in response.content and b"Ada" not in response.content


def test_document_pages_cost_the_same_queries_however_much_was_signed(
    order_needing, consent, portal_client, system
):
    patient = order_needing(consent).patient
    client = portal_client(patient)
    first = documents.create_template(
        name="Payment terms 0", kind="PAYMENT_TERMS", title="Terms", body="Pay.", actor=system
    )
    order_needing(first, patient)
    signed = sign(patient, consent, png=drawn_png())
    pages = [
        "/patient/",
        "/patient/documents/",
        f"/patient/documents/{first.pk}/sign/",
        f"/patient/documents/signed/{signed.pk}/",
        f"/patient/documents/signed/{signed.pk}/pdf/",
        f"/patient/orders/{Order.objects.filter(patient=patient).first().number}/",
    ]

    def cost(url):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200, url
        return len(captured.captured_queries)

    for url in pages:
        cost(url)  # warm per-process caches
    few = {url: cost(url) for url in pages}
    for n in range(1, 6):
        template = documents.create_template(
            name=f"Payment terms {n}",
            kind="PAYMENT_TERMS",
            title="Terms",
            body="Pay.",
            actor=system,
        )
        documents.revise_template(template=template, title="Terms", body="Pay now.", actor=system)
        order_needing(template, patient)
        if n % 2:
            sign(patient, template)
    many = {url: cost(url) for url in pages}
    assert many == few


def test_staff_read_what_a_patient_signed_through_the_api(consent_order, consent, api):
    signed = sign(consent_order.patient, consent, png=drawn_png())
    response = api.get(f"/api/v1/patients/{consent_order.patient_id}/signed-documents/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row == {
        "id": signed.pk,
        "template": "Ketamine consent",
        "kind": "CONSENT",
        "version": 1,
        "title": "Consent to ketamine treatment",
        "text": "Consent to ketamine treatment\n\n" + CONSENT_BODY,
        "text_sha256": signed.text_sha256,
        "typed_name": "Ada Lovelace",
        "drawn_signature": True,
        "signed_at": row["signed_at"],
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (test)",
        "pdf_sha256": signed.pdf_sha256,
    }
    missing = api.get("/api/v1/patients/999999/signed-documents/")
    assert missing.status_code == 404 and "code" in missing.json()


def test_the_admin_order_page_says_which_document_is_not_signed(
    consent_order, consent, cs_user, admin_client_for
):
    client = admin_client_for(cs_user)
    page = client.get(f"/admin/orders/order/{consent_order.pk}/change/").content.decode()
    assert "Ketamine consent not signed" in page
    sign(consent_order.patient, consent)
    page = client.get(f"/admin/orders/order/{consent_order.pk}/change/").content.decode()
    assert "Ketamine consent not signed" not in page
