"""Session packages: opened when a PACKAGE item is paid, drawn down by redemptions, announced
to the clinic's automations before and when they expire.

The redemptions are the usage log a clinic shows in a refund argument: when, which provider,
which appointment, the chart note.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from billing.models import SessionPackage, SessionRedemption
from emr.kernel.actors import Actor
from emr.kernel.errors import InvalidInput, StateConflict
from emr.kernel.services import service_transaction
from emr.workflows.outbox import emit
from orders.models import Order, ProductKind
from orders.services import items_of


def open_packages(*, order: Order, actor: Actor) -> list[SessionPackage]:
    """The packages the order's paid PACKAGE items grant (once: a second payment event for the
    same order opens nothing more). Runs in the payment's transaction."""
    if not any(item.product.kind == ProductKind.PACKAGE for item in items_of(order)):
        return []  # most orders: read from the items the payment's recalculation loaded
    opened = []
    now = timezone.now()
    items = order.items.select_related("product", "refund_policy_version").filter(
        product__kind=ProductKind.PACKAGE, product__sessions__isnull=False, package__isnull=True
    )
    for item in items:
        rules = item.refund_policy_version.rules if item.refund_policy_version else {}
        expires_days = rules.get("package_expires_days")
        opened.append(
            SessionPackage.objects.create(
                patient_id=order.patient_id,
                order_item=item,
                sessions_total=item.product.sessions * item.quantity,
                opened_at=now,
                expires_at=now + timedelta(days=expires_days) if expires_days else None,
            )
        )
    return opened


@dataclass(frozen=True)
class Redemption:
    redeemed_at: datetime
    provider: str
    appointment_ref: str = ""
    note: str = ""


def redeem_session(
    *, package: SessionPackage, redemption: Redemption, actor: Actor
) -> SessionRedemption:
    provider = (redemption.provider or "").strip()
    if not provider:
        raise InvalidInput(
            "Say which provider saw the patient for this session.",
            code="package.provider_required",
        )
    with service_transaction(actor, reason=f"Session redeemed with {provider}"):
        package = SessionPackage.objects.select_for_update().get(pk=package.pk)
        if package.expires_at and redemption.redeemed_at >= package.expires_at:
            raise StateConflict(
                f"This package expired on {package.expires_at:%d %b %Y}; a session on "
                f"{redemption.redeemed_at:%d %b %Y} cannot be taken from it.",
                code="package.expired",
            )
        used = package.redemptions.count()
        if used >= package.sessions_total:
            raise StateConflict(
                f"All {package.sessions_total} sessions of this package are used; none remain.",
                code="package.exhausted",
            )
        return SessionRedemption.objects.create(
            package=package,
            redeemed_at=redemption.redeemed_at,
            provider=provider,
            appointment_ref=redemption.appointment_ref.strip(),
            note=redemption.note,
            recorded_by_label=actor.label,
        )


@dataclass(frozen=True)
class Ledger:
    """A package as CS read it: what was bought, what is used and left, every session."""

    package: SessionPackage
    used: int
    remaining: int
    expired: bool
    redemptions: list[SessionRedemption]


def ledgers(packages) -> list[Ledger]:
    """`packages` (a queryset) with their order and every redemption, in two queries."""
    found = packages.select_related("order_item__order").prefetch_related(
        Prefetch("redemptions", queryset=SessionRedemption.objects.order_by("redeemed_at", "id"))
    )
    now = timezone.now()
    result = []
    for package in found.order_by("-opened_at", "-id"):
        redemptions = list(package.redemptions.all())
        used = len(redemptions)
        expired = package.expires_at is not None and package.expires_at <= now
        result.append(
            Ledger(package, used, max(0, package.sessions_total - used), expired, redemptions)
        )
    return result


def with_usage(packages):
    """`packages` with `sessions_used` counted in the same query."""
    return packages.annotate(sessions_used=Count("redemptions"))


def announce_expiry(*, now: datetime | None = None) -> int:
    """Emit `package.expiring` (notice days ahead) and `package.expired`, each once per
    package; the beat runs it daily. Returns how many events were emitted."""
    now = now or timezone.now()
    notice = timedelta(days=settings.PACKAGE_EXPIRY_NOTICE_DAYS)
    actor = Actor.system("package_expiry")
    emitted = 0
    due = SessionPackage.objects.filter(expires_at__isnull=False).filter(
        Q(expired_announced_at__isnull=True, expires_at__lte=now)
        | Q(expiring_announced_at__isnull=True, expires_at__lte=now + notice, expires_at__gt=now)
    )
    for package_id in due.values_list("pk", flat=True):
        with service_transaction(actor, reason="Package expiry announced"):
            package = SessionPackage.objects.select_for_update().get(pk=package_id)
            if package.expires_at <= now and package.expired_announced_at is None:
                package.expired_announced_at = now
                package.save()
                emit("package.expired", subject=package)
                emitted += 1
            elif package.expires_at > now and package.expiring_announced_at is None:
                package.expiring_announced_at = now
                package.save()
                emit("package.expiring", subject=package)
                emitted += 1
    return emitted
