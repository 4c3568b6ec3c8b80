"""void_pharmacy_order: DispensePro only, before shipment. A void is not a refund: the order,
its invoice and payments and the subscription stay exactly as they were."""

import pytest

from billing.models import Payment
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.workflows.models import WorkflowEvent
from integrations.pharmacy import services
from integrations.pharmacy.models import PharmacyOrder
from integrations.pharmacy.states import ALREADY_SHIPPED, PharmacyOrderStatus, PharmacyType
from orders.states import OrderStatus
from tests.fixtures.beluga import order_awaiting_script, snapshot
from tests.fixtures.dispensepro import order_at_pharmacy

pytestmark = pytest.mark.django_db

REASON = "Patient cancelled before shipment"


@pytest.fixture
def actor(cs_user):
    return Actor.staff(cs_user, door=Door.ADMIN)


@pytest.fixture
def pharmacy_order(dispensepro):
    return order_at_pharmacy(PharmacyType.DISPENSE_PRO)


def money_and_order(pharmacy_order):
    order = pharmacy_order.order
    invoice = order.invoice
    return snapshot(order, invoice, *Payment.objects.filter(invoice=invoice), order.subscription)


def voided_events(order):
    return WorkflowEvent.objects.filter(
        event_type="pharmacy.order_voided", subject_key=f"order:{order.pk}"
    )


def test_void_before_shipment_voids_at_dispensepro_and_here_and_nothing_else(
    pharmacy_order, dispensepro, actor
):
    before = money_and_order(pharmacy_order)

    services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=REASON)

    pharmacy_order.refresh_from_db()
    assert pharmacy_order.status == PharmacyOrderStatus.VOIDED == "voided"
    assert pharmacy_order.voided_at is not None
    assert dispensepro.orders()[pharmacy_order.external_id]["status"] == "voided"
    assert dispensepro.requests()[-1]["body"] == {"reason": REASON}
    assert money_and_order(pharmacy_order) == before
    assert pharmacy_order.order.status == OrderStatus.AWAITING_SHIPMENT
    assert voided_events(pharmacy_order.order).get().actor == "cs-agent"
    last = pharmacy_order.history.latest("history_id")
    assert (last.history_change_reason, last.history_door) == (REASON, "admin")


def test_after_shipment_here_it_is_refused_with_the_guides_sentence(
    pharmacy_order, dispensepro, actor
):
    services.record_shipment(pharmacy_order=pharmacy_order, actor=actor, reason="Shipped")
    calls = len(dispensepro.requests())
    before = [*snapshot(pharmacy_order), *money_and_order(pharmacy_order)]

    with pytest.raises(DomainError) as refused:
        services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=REASON)

    assert refused.value.code == "pharmacy.already_shipped"
    assert refused.value.http_status == 409
    assert refused.value.detail == ALREADY_SHIPPED
    assert "return/refund policy issue" in refused.value.detail
    assert len(dispensepro.requests()) == calls  # DispensePro was not asked
    assert [*snapshot(pharmacy_order), *money_and_order(pharmacy_order)] == before
    assert not voided_events(pharmacy_order.order).exists()


def test_shipped_at_dispensepro_before_we_heard_is_refused_too(pharmacy_order, dispensepro, actor):
    dispensepro.ship(pharmacy_order.external_id)  # the webhook has not reached us yet
    before = snapshot(pharmacy_order)

    with pytest.raises(DomainError) as refused:
        services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=REASON)

    assert refused.value.code == "pharmacy.already_shipped"
    assert snapshot(pharmacy_order) == before


@pytest.mark.parametrize(
    "pharmacy", [PharmacyType.OWN, PharmacyType.BELUGA, PharmacyType.BELMAR_LIFEFILE]
)
def test_other_pharmacies_need_manual_verification(dispensepro, actor, pharmacy):
    pharmacy_order = order_at_pharmacy(pharmacy)
    before = snapshot(pharmacy_order)

    with pytest.raises(DomainError) as refused:
        services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=REASON)

    assert refused.value.code == "pharmacy.manual_verification_required"
    assert refused.value.http_status == 409
    assert "before promising the patient a cancellation" in refused.value.detail
    assert PharmacyType(pharmacy).label in refused.value.detail
    assert dispensepro.requests() == []
    assert snapshot(pharmacy_order) == before


@pytest.mark.parametrize(
    ("fault", "code"), [("http_error", "pharmacy.error"), ("hang", "pharmacy.timeout")]
)
def test_dispensepro_failures_change_nothing(
    pharmacy_order, dispensepro, actor, settings, fault, code
):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.3
    dispensepro.inject(fault, on="void", seconds=1.0)
    before = [*snapshot(pharmacy_order), *money_and_order(pharmacy_order)]

    with pytest.raises(DomainError) as failed:
        services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=REASON)

    assert failed.value.code == code
    assert failed.value.http_status == 502
    assert [*snapshot(pharmacy_order), *money_and_order(pharmacy_order)] == before
    assert not voided_events(pharmacy_order.order).exists()


def test_voiding_twice_is_refused_and_emits_once(pharmacy_order, dispensepro, actor):
    services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=REASON)

    with pytest.raises(DomainError) as refused:
        services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=REASON)

    assert refused.value.code == "pharmacy.already_voided"
    assert voided_events(pharmacy_order.order).count() == 1


def test_an_order_never_sent_has_nothing_to_void(dispensepro, actor):
    pharmacy_order = PharmacyOrder.objects.create(
        order=order_awaiting_script(), pharmacy=PharmacyType.DISPENSE_PRO, reference="R-unsent"
    )

    with pytest.raises(DomainError) as refused:
        services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=REASON)

    assert refused.value.code == "pharmacy.not_submitted"
    assert dispensepro.requests() == []


def test_a_reason_is_required(pharmacy_order, actor):
    with pytest.raises(DomainError) as refused:
        services.void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=" ")
    assert refused.value.code == "reason_required"


def test_the_order_page_offers_the_void_the_service_would_accept(dispensepro, actor):
    sent = order_at_pharmacy(PharmacyType.DISPENSE_PRO)
    manual = order_at_pharmacy(PharmacyType.OWN)

    assert services.voidable_pharmacy_order(sent.order) == sent
    assert services.voidable_pharmacy_order(manual.order) is None
    assert services.refusal_to_void(manual).code == "pharmacy.manual_verification_required"

    shipped = services.record_shipment(pharmacy_order=sent, actor=actor, reason="Shipped")

    assert services.voidable_pharmacy_order(sent.order) is None
    assert services.refusal_to_void(shipped).code == "pharmacy.already_shipped"
