"""Documents patients sign (refund-policy-enforcement.txt, "Store Signed Policies and Consents in
the Chart"): consents, treatment disclaimers, payment terms.

- A `DocumentTemplate` keeps its words in versions; every edit is a new `DocumentVersion`,
  never changed after (`create_template`, `revise_template`), as refund policies are.
- A product lists the templates it needs (`Product.required_documents`). An order needs, for
  each, a signature of the version in force when it was placed or a later one; a template made
  after the order was placed does not hold it back. Until then a paid order waits in
  AWAITING_REQUIREMENTS (`orders.recalculation`), and the admin's order page names what is
  missing (`missing_documents`).
- The patient signs in the portal (`sign_document`): the exact text shown (its hash checked
  against the version in force, so words revised meanwhile are refused rather than signed
  unseen), the typed name, an optional drawn signature, when, address and browser. The PDF is
  rendered once, then and there, and stored with its hash; nothing renders it again.
  `DocumentSigned` recalculates the orders that waited (`emr/reactions.py`).
- `signed_documents_for_order(order)` is what an order's evidence shows: who signed what, when
  and from where, with the hashes.
"""

import base64
import binascii
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone
from PIL import Image, UnidentifiedImageError
from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Image as PdfImage
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from emr.events import DocumentSigned
from emr.kernel.actors import Actor
from emr.kernel.errors import InvalidInput, StateConflict
from emr.kernel.events import publish
from emr.kernel.services import service_transaction
from emr.models import DocumentKind, DocumentTemplate, DocumentVersion, Patient, SignedDocument
from orders.models import Order, OrderItem
from orders.states import IN_PROGRESS, PAYMENT_ONLY_KINDS, UNPAID

# Orders a signature can still move on: not closed by staff, not shipped or completed.
OPEN_STATUSES = frozenset({*UNPAID, *IN_PROGRESS})

# A drawn signature: a PNG from the page's canvas, small.
SIGNATURE_MAX_BYTES = 200_000
SIGNATURE_MAX_SIDE = 2000
_DATA_URL = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=\s]+)")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# What a signature row is read with when its PDF and image are not needed.
_LIGHT = ("pdf", "signature_png", "text")


# --- Templates and their versions -------------------------------------------------------------


def document_text(title: str, body: str) -> str:
    """The exact text a patient reads and signs: the title, a blank line, the body."""
    return f"{title.strip()}\n\n{_clean_body(body)}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create_template(
    *, name: str, kind: str, title: str, body: str, actor: Actor
) -> DocumentTemplate:
    name = _required(name, "A document needs a name.", "document.name_required")
    if kind not in DocumentKind.values:
        raise InvalidInput(
            f"kind must be one of: {', '.join(DocumentKind.values)}.", code="document.invalid_kind"
        )
    title, body = _words(title, body)
    with service_transaction(actor, reason=f"Document {name} created"):
        if DocumentTemplate.objects.filter(name=name).exists():
            raise StateConflict(
                f"A document named {name!r} exists already: make a new version of it instead.",
                code="document.name_taken",
            )
        template = DocumentTemplate.objects.create(name=name, kind=kind)
        _add_version(template, title, body, number=1, actor=actor)
    return template


def revise_template(
    *, template: DocumentTemplate, title: str, body: str, actor: Actor
) -> DocumentVersion:
    """Version n+1. Earlier versions, and every signature of them, stay as they were; orders
    placed from now on need a signature of the new one."""
    title, body = _words(title, body)
    with service_transaction(actor, reason=f"Document {template.name} revised"):
        template = DocumentTemplate.objects.select_for_update().get(pk=template.pk)
        latest = template.versions.order_by("-version").first()
        if latest is not None and document_text(title, body) == document_text(
            latest.title, latest.body
        ):
            raise StateConflict(
                f"Version {latest.version} of {template.name} already has these words.",
                code="document.unchanged",
            )
        number = latest.version + 1 if latest is not None else 1
        return _add_version(template, title, body, number=number, actor=actor)


def _add_version(template, title: str, body: str, *, number: int, actor: Actor):
    return DocumentVersion.objects.create(
        template=template,
        version=number,
        title=title,
        body=body,
        text_sha256=text_hash(document_text(title, body)),
        created_by_label=actor.label,
    )


def _words(title: str, body: str) -> tuple[str, str]:
    title = _required(title, "A document needs a title.", "document.title_required")[:200]
    body = _required(_clean_body(body), "A document needs its text.", "document.body_required")
    return title, body


def _clean_body(body: str) -> str:
    return "\n".join(
        line.rstrip() for line in (body or "").replace("\r\n", "\n").split("\n")
    ).strip()


def _required(value: str, sentence: str, code: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(sentence, code=code)
    return value


# --- What an order needs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One document an order needs: the version in force when it was placed (or a later one
    must be signed), and the signature that satisfies it, if any."""

    order_id: int
    template: DocumentTemplate
    in_force: DocumentVersion
    signed: SignedDocument | None

    @property
    def missing(self) -> bool:
        return self.signed is None

    @property
    def sentence(self) -> str:
        return f"{self.template.name} not signed"


def requirements(orders: Iterable[Order]) -> dict[int, list[Requirement]]:
    """Every required document of each order, by order id, in three queries however many
    orders, items, versions and signatures there are. Payment-only orders (a recovery cycle, a
    payoff) need nothing: their treatment went out with an earlier order."""
    orders = list(orders)
    found: dict[int, list[Requirement]] = {order.pk: [] for order in orders}
    orders = [order for order in orders if order.kind not in PAYMENT_ONLY_KINDS]
    if not orders:
        return found
    pairs = (
        OrderItem.objects.filter(
            order__in=[order.pk for order in orders], product__required_documents__isnull=False
        )
        .values_list("order_id", "product__required_documents")
        .distinct()
    )
    needed: dict[int, set[int]] = {}
    for order_id, template_id in pairs:
        needed.setdefault(order_id, set()).add(template_id)
    template_ids = set().union(*needed.values()) if needed else set()
    if not template_ids:
        return found
    versions: dict[int, list[DocumentVersion]] = {}
    for version in (
        DocumentVersion.objects.filter(template_id__in=template_ids)
        .select_related("template")
        .order_by("version")
    ):
        versions.setdefault(version.template_id, []).append(version)
    signatures: dict[tuple[int, int], list[SignedDocument]] = {}
    for signed in (
        SignedDocument.objects.filter(
            patient_id__in={order.patient_id for order in orders},
            version__template_id__in=template_ids,
        )
        .defer(*_LIGHT)
        .select_related("version")
        .order_by("-signed_at", "-id")
    ):
        signatures.setdefault((signed.patient_id, signed.version.template_id), []).append(signed)
    for order in orders:
        for template_id in sorted(needed.get(order.pk, ())):
            placed = [v for v in versions.get(template_id, []) if v.created_at <= order.created_at]
            if not placed:
                continue  # the document did not exist when the order was placed
            in_force = placed[-1]
            signed = next(
                (
                    s
                    for s in signatures.get((order.patient_id, template_id), [])
                    if s.version.version >= in_force.version
                ),
                None,
            )
            found[order.pk].append(Requirement(order.pk, in_force.template, in_force, signed))
        found[order.pk].sort(key=lambda requirement: requirement.template.name)
    return found


def missing_documents(order: Order) -> list[Requirement]:
    """What the order still waits for the patient to sign ("Ketamine consent not signed")."""
    return [r for r in requirements([order])[order.pk] if r.missing]


def documents_signed(order: Order) -> tuple[bool, bool]:
    """(the order needs documents, all of them are signed): the recalculation's facts."""
    found = requirements([order])[order.pk]
    return bool(found), all(not r.missing for r in found)


@dataclass(frozen=True)
class ToSign:
    """A document the patient should sign now: its version in force, and the orders waiting."""

    template: DocumentTemplate
    version: DocumentVersion
    order_numbers: list[str]


def documents_to_sign(patient: Patient) -> list[ToSign]:
    """What the patient's open orders wait for them to sign, one entry per document (the
    current version), in a fixed number of queries."""
    orders = list(
        Order.objects.filter(patient=patient, status__in=OPEN_STATUSES).order_by("created_at", "id")
    )
    waiting: dict[int, list[str]] = {}
    templates: dict[int, DocumentTemplate] = {}
    numbers = {order.pk: order.number for order in orders}
    for order_id, found in requirements(orders).items():
        number = numbers[order_id]
        for requirement in found:
            if requirement.missing:
                waiting.setdefault(requirement.template.pk, []).append(number)
                templates[requirement.template.pk] = requirement.template
    if not waiting:
        return []
    current = {}
    for version in DocumentVersion.objects.filter(template_id__in=waiting).order_by("version"):
        current[version.template_id] = version
    return sorted(
        (
            ToSign(templates[tid], current[tid], numbers)
            for tid, numbers in waiting.items()
            if tid in current
        ),
        key=lambda entry: entry.template.name,
    )


# --- Signing ----------------------------------------------------------------------------------


def sign_document(
    *,
    patient: Patient,
    version: DocumentVersion,
    shown_sha256: str,
    typed_name: str,
    signature_png: bytes | None,
    actor: Actor,
    ip_address: str | None = None,
    user_agent: str = "",
) -> SignedDocument:
    """The patient signs `version` as shown (`shown_sha256` is the hash of the text the page
    showed). The typed name is the signature; a drawn one is kept with it when given. The PDF
    is rendered now and stored with its hash; the orders waiting for it are recalculated."""
    typed_name = _check_name(patient, typed_name)
    signature_png = check_signature(signature_png)
    template = version.template
    with service_transaction(actor, reason=f"Signed {template.name} (version {version.version})"):
        # One signature at a time per patient: a double click does not sign twice.
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        current = template.versions.order_by("-version").first()
        if current.pk != version.pk or shown_sha256 != current.text_sha256:
            raise StateConflict(
                f"{template.name} was updated while the page was open. Read the new version "
                "and sign it.",
                code="document.changed",
            )
        if SignedDocument.objects.filter(patient=patient, version=current).exists():
            raise StateConflict(
                f"You already signed this version of {template.name}.",
                code="document.already_signed",
            )
        text = document_text(current.title, current.body)
        signed_at = timezone.now()
        pdf = render_signed_pdf(
            clinic_name=settings.CLINIC_NAME,
            document_name=template.name,
            version=current.version,
            title=current.title,
            body=current.body,
            patient_name=patient.full_name,
            typed_name=typed_name,
            signed_at=signed_at,
            ip_address=ip_address,
            user_agent=user_agent,
            text_sha256=current.text_sha256,
            signature_png=signature_png,
        )
        signed = SignedDocument.objects.create(
            patient=patient,
            version=current,
            text=text,
            text_sha256=current.text_sha256,
            typed_name=typed_name,
            signature_png=signature_png,
            signed_at=signed_at,
            ip_address=ip_address or None,
            user_agent=(user_agent or "")[:300],
            signed_by_label=actor.label,
            pdf=pdf,
            pdf_sha256=hashlib.sha256(pdf).hexdigest(),
        )
        publish(DocumentSigned(signed=signed, actor=actor))
    return signed


def orders_waiting_for(signed: SignedDocument) -> list[Order]:
    """The patient's open orders that need the signed document's template (to recalculate)."""
    return list(
        Order.objects.filter(
            patient_id=signed.patient_id,
            status__in=OPEN_STATUSES,
            items__product__required_documents=signed.version.template_id,
        )
        .distinct()
        .order_by("id")
    )


def _normal(name: str) -> str:
    return " ".join((name or "").split()).casefold()


def _check_name(patient: Patient, typed_name: str) -> str:
    typed = " ".join((typed_name or "").split())
    if not typed:
        raise InvalidInput("Type your full name to sign.", code="document.name_required")
    if _normal(typed) != _normal(patient.full_name):
        raise InvalidInput(
            f"Type your full name as it is on your record: {patient.full_name}.",
            code="document.name_mismatch",
        )
    return typed[:200]


def signature_from_data_url(value: str) -> bytes | None:
    """The PNG bytes a canvas posts as a data URL; None when nothing was drawn."""
    value = (value or "").strip()
    if not value:
        return None
    match = _DATA_URL.fullmatch(value)
    if match is None:
        raise InvalidInput(
            "The drawn signature could not be read. Clear it and draw it again, or sign with "
            "your typed name only.",
            code="document.bad_signature",
        )
    try:
        return base64.b64decode("".join(match[1].split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "The drawn signature could not be read. Clear it and draw it again.",
            code="document.bad_signature",
        ) from None


def check_signature(png: bytes | None) -> bytes | None:
    """A drawn signature is a small, real PNG image, or nothing."""
    if not png:
        return None
    refusal = InvalidInput(
        "The drawn signature could not be read. Clear it and draw it again, or sign with your "
        "typed name only.",
        code="document.bad_signature",
    )
    if len(png) > SIGNATURE_MAX_BYTES or not png.startswith(_PNG_MAGIC):
        raise refusal
    try:
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise refusal from None
    if not (0 < width <= SIGNATURE_MAX_SIDE and 0 < height <= SIGNATURE_MAX_SIDE):
        raise refusal
    return png


# --- The PDF, rendered once at signing --------------------------------------------------------


def render_signed_pdf(
    *,
    clinic_name: str,
    document_name: str,
    version: int,
    title: str,
    body: str,
    patient_name: str,
    typed_name: str,
    signed_at: datetime,
    ip_address: str | None,
    user_agent: str,
    text_sha256: str,
    signature_png: bytes | None,
) -> bytes:
    """The signed document as a PDF: the exact text, then who signed, when, from where, the
    text's hash and the drawn signature. Called once, by `sign_document`; the stored bytes are
    what every later read serves."""
    styles = getSampleStyleSheet()
    out = io.BytesIO()
    pdf = SimpleDocTemplate(
        out,
        pagesize=LETTER,
        title=f"{document_name} (version {version}), signed",
        author=clinic_name,
        subject=f"Signed by {typed_name}",
        leftMargin=0.9 * inch,
        rightMargin=0.9 * inch,
        topMargin=0.8 * inch,
        bottomMargin=0.8 * inch,
    )
    story = [
        Paragraph(escape(clinic_name), styles["Normal"]),
        Paragraph(escape(title), styles["Title"]),
        Paragraph(escape(f"{document_name}, version {version}"), styles["Italic"]),
        Spacer(1, 12),
    ]
    for paragraph in _clean_body(body).split("\n\n"):
        story.append(Paragraph(escape(paragraph).replace("\n", "<br/>"), styles["BodyText"]))
        story.append(Spacer(1, 6))
    story += [Spacer(1, 18), Paragraph("Signature", styles["Heading2"])]
    if signature_png:
        image = PdfImage(io.BytesIO(signature_png))
        image._restrictSize(3.5 * inch, 1.4 * inch)
        story.append(image)
    rows = [
        ("Signed by (typed name)", typed_name),
        ("Patient on record", patient_name),
        ("Signed at (UTC)", signed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")),
        ("IP address", ip_address or "not recorded"),
        ("Browser", (user_agent or "not recorded")[:300]),
        ("SHA-256 of the text", text_sha256),
        ("Drawn signature", "above" if signature_png else "none: signed with the typed name"),
    ]
    cell = styles["BodyText"]
    table = Table(
        [[Paragraph(escape(k), cell), Paragraph(escape(v), cell)] for k, v in rows],
        colWidths=[1.8 * inch, 4.9 * inch],
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
            ]
        )
    )
    story += [Spacer(1, 8), table]
    pdf.build(story)
    return out.getvalue()


# --- What was signed ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRecord:
    """One signature, as an order's evidence or an API reader shows it."""

    id: int
    template: str
    kind: str
    version: int
    title: str
    signed_at: datetime
    ip_address: str | None
    user_agent: str
    typed_name: str
    text_sha256: str
    pdf_sha256: str
    drawn_signature: bool


def signed_record(signed: SignedDocument) -> SignedRecord:
    version = signed.version
    return SignedRecord(
        id=signed.pk,
        template=version.template.name,
        kind=version.template.kind,
        version=version.version,
        title=version.title,
        signed_at=signed.signed_at,
        ip_address=signed.ip_address,
        user_agent=signed.user_agent,
        typed_name=signed.typed_name,
        text_sha256=signed.text_sha256,
        pdf_sha256=signed.pdf_sha256,
        drawn_signature=bool(getattr(signed, "drawn", signed.signature_png)),
    )


def signed_documents_for_order(order: Order) -> list[SignedRecord]:
    """What the patient signed that this order required: for each required document, the
    signature that satisfies it (template name, version, when, address, browser, typed name,
    hashes). The stored PDF is `SignedDocument.objects.get(pk=record.id).pdf`."""
    found = [r.signed for r in requirements([order]).get(order.pk, []) if r.signed is not None]
    if not found:
        return []
    rows = _signed_rows().filter(pk__in=[signed.pk for signed in found])
    return [signed_record(signed) for signed in rows]


def signed_documents_of(patient: Patient):
    """Every document the patient signed, newest first, without the PDFs' bytes."""
    return _signed_rows().filter(patient=patient)


def _signed_rows():
    return (
        SignedDocument.objects.defer(*_LIGHT)
        .select_related("version__template")
        .annotate(
            drawn=ExpressionWrapper(Q(signature_png__isnull=False), output_field=BooleanField())
        )
        .order_by("-signed_at", "-id")
    )
