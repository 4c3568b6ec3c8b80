"""Signed documents in the chart: templates versioned like refund policies, an order that waits
for its consent and goes on once it is signed, and a signed PDF that never changes."""

import hashlib

import pytest

from emr import documents
from emr.kernel.errors import InvalidInput, StateConflict
from emr.models import DocumentVersion, SignedDocument
from orders.states import OrderStatus
from tests.factories import make_order
from tests.fixtures.documents import CONSENT_BODY, drawn_png, sign

pytestmark = pytest.mark.django_db


def test_an_order_waits_for_its_consent_and_goes_on_once_signed(consent_order, consent):
    assert consent_order.status == OrderStatus.AWAITING_REQUIREMENTS
    assert [r.sentence for r in documents.missing_documents(consent_order)] == [
        "Ketamine consent not signed"
    ]

    signed = sign(consent_order.patient, consent, png=drawn_png())

    consent_order.refresh_from_db()
    assert consent_order.status == OrderStatus.PROCESSING
    assert documents.missing_documents(consent_order) == []
    assert signed.text == "Consent to ketamine treatment\n\n" + CONSENT_BODY
    assert signed.text_sha256 == hashlib.sha256(signed.text.encode()).hexdigest()
    assert (signed.ip_address, signed.user_agent) == ("203.0.113.7", "Mozilla/5.0 (test)")
    assert bytes(signed.signature_png) == drawn_png()
    [record] = documents.signed_documents_for_order(consent_order)
    assert (record.template, record.version, record.typed_name) == (
        "Ketamine consent",
        1,
        "Ada Lovelace",
    )
    assert record.ip_address == "203.0.113.7" and record.drawn_signature
    assert record.pdf_sha256 == signed.pdf_sha256


def test_the_typed_name_alone_signs(consent_order, consent):
    signed = sign(consent_order.patient, consent, png=None, name="  ada   LOVELACE ")
    assert signed.signature_png is None and signed.typed_name == "ada LOVELACE"
    consent_order.refresh_from_db()
    assert consent_order.status == OrderStatus.PROCESSING


def test_the_signed_pdf_is_stored_once_and_never_changes(consent_order, consent):
    signed = sign(consent_order.patient, consent, png=drawn_png())
    stored = bytes(SignedDocument.objects.get(pk=signed.pk).pdf)
    assert stored.startswith(b"%PDF-")
    assert hashlib.sha256(stored).hexdigest() == signed.pdf_sha256

    # Rendering again (a later library, a later clock) makes other bytes; the stored ones stay.
    again = documents.render_signed_pdf(
        clinic_name="Other",
        document_name="Ketamine consent",
        version=1,
        title="t",
        body="b",
        patient_name="Ada Lovelace",
        typed_name="Ada Lovelace",
        signed_at=signed.signed_at,
        ip_address=None,
        user_agent="",
        text_sha256=signed.text_sha256,
        signature_png=None,
    )
    assert hashlib.sha256(again).hexdigest() != signed.pdf_sha256
    for _ in range(3):
        documents.signed_documents_for_order(consent_order)
        list(documents.signed_documents_of(consent_order.patient))
    reread = SignedDocument.objects.get(pk=signed.pk)
    assert bytes(reread.pdf) == stored and reread.pdf_sha256 == signed.pdf_sha256

    reread.typed_name = "Someone else"
    with pytest.raises(ValueError):
        reread.save()
    with pytest.raises(ValueError):
        reread.delete()
    assert bytes(SignedDocument.objects.get(pk=signed.pk).pdf) == stored


def test_a_new_version_never_rewrites_the_old_one_and_new_orders_need_it(
    consent_order, consent, system
):
    sign(consent_order.patient, consent)
    v2 = documents.revise_template(
        template=consent, title="Consent to ketamine treatment", body="New words.", actor=system
    )
    assert v2.version == 2
    v1 = DocumentVersion.objects.get(template=consent, version=1)
    assert v1.body == CONSENT_BODY
    v1.body = "rewritten"
    with pytest.raises(ValueError):
        v1.save()
    # The order placed under version 1 is satisfied; a new order needs version 2 signed.
    assert documents.missing_documents(consent_order) == []
    product = consent_order.items.get().product
    later = make_order(patient=consent_order.patient, products=[product])
    assert [r.in_force.version for r in documents.missing_documents(later)] == [2]
    with pytest.raises(StateConflict) as same:
        documents.revise_template(
            template=consent, title="Consent to ketamine treatment", body="New words.", actor=system
        )
    assert same.value.code == "document.unchanged"


def test_signing_refuses_words_changed_meanwhile_a_wrong_name_and_a_second_signature(
    consent_order, consent, system
):
    patient = consent_order.patient
    shown = consent.current
    documents.revise_template(template=consent, title="Consent", body="Changed.", actor=system)
    with pytest.raises(StateConflict) as changed:
        documents.sign_document(
            patient=patient,
            version=shown,
            shown_sha256=shown.text_sha256,
            typed_name=patient.full_name,
            signature_png=None,
            actor=system,
        )
    assert changed.value.code == "document.changed"
    with pytest.raises(InvalidInput) as wrong:
        sign(patient, consent, name="Grace Hopper")
    assert wrong.value.code == "document.name_mismatch"
    with pytest.raises(InvalidInput) as bad:
        sign(patient, consent, png=b"\x89PNG\r\n\x1a\nnot really")
    assert bad.value.code == "document.bad_signature"
    sign(patient, consent)
    with pytest.raises(StateConflict) as twice:
        sign(patient, consent)
    assert twice.value.code == "document.already_signed"
    assert SignedDocument.objects.filter(patient=patient).count() == 1


def test_a_document_made_after_the_order_does_not_hold_it_back(consent_order, system):
    later = documents.create_template(
        name="Payment terms", kind="PAYMENT_TERMS", title="Terms", body="Pay.", actor=system
    )
    consent_order.items.get().product.required_documents.add(later)
    assert [r.template.name for r in documents.missing_documents(consent_order)] == [
        "Ketamine consent"
    ]
