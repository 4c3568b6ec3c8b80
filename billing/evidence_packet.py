"""An order's evidence packet: one PDF a clinic hands a processor when a patient disputes the
charge ("If you're not documenting it, it doesn't exist — at least in a dispute").

The packet is a list of sections (`SECTIONS`), each a function that reads one kind of record
and returns its heading and lines; `render(order)` draws them in order with reportlab. A new
kind of evidence is one function added to `SECTIONS` (signed documents follow the refund
policy, where the processor reads the patient's agreement).

It reads everything (orders, billing, the chart, the communication log, the audit trail), so
it sits with the CS console's read-models; it writes nothing.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from audit.sources import order_scope
from audit.trail import TrailFilter, walk
from billing.models import Dispute, Payment, PolicyAcknowledgement, SessionPackage
from billing.packages import with_usage
from billing.policies import versions_of
from billing.states import PaymentKind
from emr.communications import messages_for
from emr.documents import missing_documents, signed_documents_for_order
from emr.kernel.money import format_cents
from orders.models import Order

# The audit timeline is the packet's last section; a very long one is cut (the full trail is
# on the audit pages and in their export).
TIMELINE_LIMIT = 300


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    empty: str = "None recorded."


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def order_section(order: Order) -> Section:
    section = Section("Order and items")
    patient = order.patient
    section.lines += [
        f"Order {order.number}, placed {_when(order.created_at)}; status "
        f"{order.get_status_display()}.",
        f"Patient: {patient.full_name}, {patient.email}"
        + (f", {patient.phone}" if patient.phone else ""),
        f"Total {format_cents(order.total_cents, order.currency)}; refunded "
        f"{format_cents(order.refunded_cents, order.currency)}.",
    ]
    invoice = getattr(order, "invoice", None)
    if invoice is not None:
        section.lines.append(
            f"Invoice {invoice.number}: {invoice.get_status_display()}, "
            f"{format_cents(invoice.amount_cents, invoice.currency)}, issued "
            f"{_when(invoice.issued_at)}"
            + (f", paid {_when(invoice.paid_at)}" if invoice.paid_at else "")
        )
    for item in order.items.all():
        section.lines.append(
            f"Item: {item.description} x {item.quantity} at "
            f"{format_cents(item.unit_price_cents, order.currency)} = "
            f"{format_cents(item.total_cents, order.currency)}"
        )
    return section


def refund_policy_section(order: Order) -> Section:
    section = Section(
        "Refund policy and the patient's acceptance", empty="Sold under no refund policy."
    )
    acknowledgements = {
        ack.policy_version_id: ack
        for ack in PolicyAcknowledgement.objects.filter(order=order).order_by("acknowledged_at")
    }
    for version in versions_of(order):
        section.lines += [
            f"Policy “{version.policy.name}”, version {version.version} (text SHA-256 "
            f"{version.text_sha256}):",
            *[f"    {line}" for line in version.text.splitlines() if line.strip()],
        ]
        ack = acknowledgements.get(version.pk)
        if ack is None:
            section.lines.append("Acceptance: none recorded for this order.")
        else:
            section.lines.append(
                f"Accepted {_when(ack.acknowledged_at)} through {ack.get_channel_display()} "
                f"(recorded by {ack.recorded_by_label}), from IP "
                f"{ack.ip_address or 'not recorded'}, browser "
                f"“{ack.user_agent or 'not recorded'}”; accepted text SHA-256 {ack.text_sha256}"
                + (
                    " (matches the version above)."
                    if ack.text_sha256 == version.text_sha256
                    else " (DIFFERS from the version above)."
                )
            )
    return section


def signed_documents_section(order: Order) -> Section:
    section = Section("Signed documents", empty="This order required no signed document.")
    for signed in signed_documents_for_order(order):
        section.lines.append(
            f"{signed.title} (“{signed.template}”, version {signed.version}): signed "
            f"{_when(signed.signed_at)} as “{signed.typed_name}”"
            + (" with a drawn signature" if signed.drawn_signature else " by typed name")
            + f", from IP {signed.ip_address or 'not recorded'}, browser "
            f"“{signed.user_agent or 'not recorded'}”; text SHA-256 {signed.text_sha256}, "
            f"signed PDF SHA-256 {signed.pdf_sha256}."
        )
    section.lines += [f"{missing.sentence}." for missing in missing_documents(order)]
    return section


def package_usage_section(order: Order) -> Section:
    section = Section("Session package usage", empty="No session package on this order.")
    packages = with_usage(SessionPackage.objects.filter(order_item__order=order)).prefetch_related(
        "redemptions"
    )
    for package in packages.select_related("order_item"):
        section.lines.append(
            f"{package.order_item.description}: {package.sessions_used} of "
            f"{package.sessions_total} sessions used; opened {_when(package.opened_at)}, "
            f"expires {_when(package.expires_at) if package.expires_at else 'never'}."
        )
        for redemption in package.redemptions.all():
            section.lines.append(
                f"    Session {_when(redemption.redeemed_at)} with {redemption.provider}"
                + (
                    f", appointment {redemption.appointment_ref}"
                    if redemption.appointment_ref
                    else ""
                )
                + f" (recorded by {redemption.recorded_by_label})"
                + (f": {redemption.note}" if redemption.note else "")
            )
    return section


def communication_section(order: Order) -> Section:
    section = Section("Communication log", empty="No message was sent to the patient.")
    for message in messages_for(order=order).order_by("sent_at", "id"):
        section.lines.append(
            f"{_when(message.sent_at)} {message.get_channel_display()} to {message.recipient}"
            + (f", “{message.subject}”" if message.subject else "")
            + f" ({message.sent_by}): {message.get_status_display()}"
            + (f", opened by the patient {_when(message.opened_at)}" if message.opened_at else "")
            + f"; body SHA-256 {message.body_sha256}"
        )
        if message.body:
            section.lines += [f"    {line}" for line in message.body.splitlines() if line.strip()]
    return section


def payment_section(order: Order) -> Section:
    section = Section("Proof of payment", empty="No charge was taken.")
    charges = Payment.objects.filter(invoice__order=order, kind=PaymentKind.CHARGE)
    for charge in charges.order_by("created_at", "id"):
        section.lines.append(
            f"{_when(charge.created_at)} charge of "
            f"{format_cents(charge.amount_cents, charge.currency)} through "
            f"{charge.get_gateway_display()}: {charge.get_status_display()}; transaction id "
            f"{charge.transaction_id or 'none'}"
            + (f"; merchant account {charge.merchant_account}" if charge.merchant_account else "")
            + (
                f"; card {charge.card_brand} ending {charge.card_last4}"
                if charge.card_last4
                else "; card not reported"
            )
            + f"; AVS {charge.avs_result or 'not given by the gateway'}"
            + f"; CVV {charge.cvv_result or 'not given by the gateway'}."
        )
    return section


def refunds_section(order: Order) -> Section:
    section = Section("Refunds", empty="No refund was made.")
    refunds = Payment.objects.filter(invoice__order=order, kind=PaymentKind.REFUND)
    for refund in refunds.select_related("refund_attempt").order_by("created_at", "id"):
        attempt = getattr(refund, "refund_attempt", None)
        section.lines.append(
            f"{_when(refund.created_at)} refund of "
            f"{format_cents(refund.amount_cents, refund.currency)} through "
            f"{refund.get_gateway_display()}: {refund.get_status_display()}; gateway id "
            f"{refund.transaction_id or 'none'}"
            + (f"; by {attempt.requested_by_label}: {attempt.reason}" if attempt else "")
        )
    return section


def disputes_section(order: Order) -> Section:
    section = Section("Disputes", empty="No dispute recorded.")
    for dispute in Dispute.objects.filter(payment__invoice__order=order).order_by("opened_at"):
        section.lines.append(
            f"{dispute.get_gateway_display()} dispute {dispute.gateway_dispute_id}: "
            f"{format_cents(dispute.amount_cents, dispute.currency)}, reason {dispute.reason}, "
            f"{dispute.get_status_display()}; opened {_when(dispute.opened_at)}, evidence due "
            f"{_when(dispute.evidence_due_by)}."
        )
    return section


def timeline_section(order: Order) -> Section:
    section = Section("Audit timeline (oldest first)", empty="No audit entries.")
    entries = []
    for entry in walk(TrailFilter(scope=order_scope(order))):
        entries.append(entry)
        if len(entries) >= TIMELINE_LIMIT:
            section.lines.append(
                f"(the newest {TIMELINE_LIMIT} entries; the full trail is on the audit pages)"
            )
            break
    for entry in reversed(entries):
        changes = "; ".join(f"{c.field}: {c.old} → {c.new}" for c in entry.worded)
        section.lines.append(
            f"{_when(entry.at)} {entry.record}: {entry.action} by {entry.who}"
            + (f" via {entry.door}" if entry.door else "")
            + (f" ({entry.reason})" if entry.reason else "")
            + (f" — {changes}" if changes else "")
        )
    return section


# The packet, in the order a processor reads it. Add a kind of evidence here.
SECTIONS: list[Callable[[Order], Section]] = [
    order_section,
    refund_policy_section,
    signed_documents_section,
    package_usage_section,
    communication_section,
    payment_section,
    refunds_section,
    disputes_section,
    timeline_section,
]


@dataclass(frozen=True)
class Packet:
    filename: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def sections_of(order: Order) -> list[Section]:
    return [build(order) for build in SECTIONS]


def render(order: Order) -> Packet:
    order = Order.objects.select_related("patient", "invoice").get(pk=order.pk)
    styles = getSampleStyleSheet()
    body = ParagraphStyle("line", parent=styles["BodyText"], fontSize=9, leading=11)
    muted = ParagraphStyle("muted", parent=body, textColor=colors.grey)
    story = [
        Paragraph(
            escape(f"{settings.CLINIC_NAME}: evidence for order {order.number}"), styles["Title"]
        ),
        Paragraph(escape(f"Prepared {_when(timezone.now())} from the clinic's records."), muted),
        Spacer(1, 0.15 * inch),
    ]
    for number, section in enumerate(sections_of(order), start=1):
        story.append(Paragraph(escape(f"{number}. {section.title}"), styles["Heading2"]))
        for line in section.lines or [section.empty]:
            indent = 12 if line.startswith("    ") else 0
            style = ParagraphStyle(f"i{indent}", parent=body, leftIndent=indent)
            story.append(Paragraph(escape(line.strip()), style))
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        title=f"Evidence for order {order.number}",
        author=settings.CLINIC_NAME,
        leftMargin=0.7 * inch,
        rightMargin=0.7 * inch,
        topMargin=0.7 * inch,
        bottomMargin=0.7 * inch,
        # A packet of the same records is the same bytes: no creation date or random id inside.
        invariant=True,
    ).build(story)
    return Packet(filename=f"evidence-{order.number}.pdf", content=buffer.getvalue())
