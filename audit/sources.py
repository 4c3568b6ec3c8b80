"""What the audit trail is made of, one source per kind of entry.

Every source answers the same two questions: which of its rows belong to a record's trail (a
patient, an order, a subscription) as a query with the trail's common columns, so all sources
are one UNION ALL that the database sorts and pages; and what a page of its rows says, loaded
in a fixed number of queries however long the trail is.

The kinds: the history diffs of every audited model, workflow events with their runs, gateway
calls (charges and refunds, with their outcome), inbound webhooks, and the patient's own
confirmations in the portal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    BooleanField,
    CharField,
    Exists,
    F,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, StrIndex

from audit.models import DecisionRecord
from audit.timeline import HEADLINE_SUFFIXES, TimelineEntry, history_entry
from billing.models import (
    Dispute,
    GatewayEvent,
    GatewaySettings,
    Invoice,
    Payment,
    PaymentMethod,
    PolicyAcknowledgement,
    RefundAttempt,
    SessionPackage,
    SessionRedemption,
)
from emr.kernel.money import format_cents
from emr.models import IntakeResponse, Patient, Prescription, SentMessage
from emr.portal.models import ConsequencesAcknowledgement
from emr.support.models import Escalation
from emr.workflows.models import Workflow, WorkflowEvent, WorkflowRun, WorkflowStep
from integrations.beluga.models import BelugaVisit, BelugaWebhookEvent
from integrations.pharmacy.models import PharmacyOrder, PharmacyWebhookEvent, ProductPharmacyRoute
from orders.models import Order, OrderItem, Product
from orders.states import OrderStatus
from subscriptions.models import Plan, PlanSwitch, Subscription, SubscriptionCycle

# The columns every source's rows have in the union, in this order.
COLUMNS = ("t_at", "t_kind", "t_pk", "t_actor", "t_door", "t_reason")


@dataclass(frozen=True)
class Scope:
    """The records one timeline covers, as id subqueries (None: that kind is not covered)."""

    title: str  # "order ORD-000123"
    slug: str  # "order-ORD-000123": names an export file (no patient name in it)
    patients: QuerySet | None = None
    orders: QuerySet | None = None
    subscriptions: QuerySet | None = None
    patient: Patient | None = None  # whose record this is, for the access log


def patient_scope(patient: Patient) -> Scope:
    return Scope(
        title=f"patient {patient.full_name} (#{patient.pk})",
        slug=f"patient-{patient.pk}",
        patients=Patient.objects.filter(pk=patient.pk).values("pk"),
        orders=Order.objects.filter(patient_id=patient.pk).values("pk"),
        subscriptions=Subscription.objects.filter(patient_id=patient.pk).values("pk"),
        patient=patient,
    )


def order_scope(order: Order) -> Scope:
    return Scope(
        title=f"order {order.number}",
        slug=f"order-{order.number}",
        orders=Order.objects.filter(pk=order.pk).values("pk"),
        patient=order.patient,
    )


def subscription_scope(subscription: Subscription) -> Scope:
    # A subscription's trail holds the orders that bill it (its cycles, a switch's payoff).
    return Scope(
        title=f"subscription {subscription}",
        slug=f"subscription-{subscription}",
        orders=Order.objects.filter(
            Q(subscription_id=subscription.pk)
            | Q(subscription_cycle__subscription_id=subscription.pk)
        ).values("pk"),
        subscriptions=Subscription.objects.filter(pk=subscription.pk).values("pk"),
        patient=subscription.patient,
    )


ScopeQ = Callable[[Scope], Q | None]


def any_of(**paths: str) -> ScopeQ:
    """Rows whose `path` is in the scope's patients, orders or subscriptions (the keyword)."""

    def scoped(scope: Scope) -> Q | None:
        parts = [
            Q(**{f"{path}__in": getattr(scope, covered)})
            for covered, path in paths.items()
            if getattr(scope, covered) is not None
        ]
        if not parts:
            return None
        combined = parts[0]
        for part in parts[1:]:
            combined |= part
        return combined

    return scoped


def _invoices(scope: Scope) -> QuerySet | None:
    if scope.orders is None:
        return None
    return Invoice.objects.filter(order_id__in=scope.orders).values("pk")


def _payments(scope: Scope) -> QuerySet | None:
    if scope.orders is None:
        return None
    return Payment.objects.filter(invoice__order_id__in=scope.orders).values("pk")


class IsDistinctFrom(Func):
    # NULL-safe "changed": a value set for the first time, or cleared, is a change.
    arg_joiner = " IS DISTINCT FROM "
    template = "(%(expressions)s)"
    output_field = BooleanField()


@dataclass(frozen=True)
class Filters:
    """What a source itself filters on (the common columns are filtered in audit.trail)."""

    field: str = ""
    event_type: str = ""


def _text(value: str) -> Value:
    return Value(value, output_field=CharField())


class Source:
    kind: str  # the key a billing admin filters on, and the entry's record kind
    label: str
    category: str
    event_type_field: str | None = None

    def rows(self, scope: Scope | None, filters: Filters) -> QuerySet | None:
        """The source's rows in the trail as COLUMNS (None: nothing of it can match)."""
        raise NotImplementedError

    def entries(self, rows: list[dict[str, Any]]) -> dict[int, TimelineEntry]:
        """The entries for a page of this source's union rows, by t_pk."""
        raise NotImplementedError

    def _event_type(self, queryset: QuerySet, filters: Filters) -> QuerySet | None:
        if not filters.event_type:
            return queryset
        if self.event_type_field is None:
            return None
        return queryset.filter(**{self.event_type_field: filters.event_type})


class HistorySource(Source):
    """The history rows of one audited model, each diffed against the object's previous row."""

    category = "history"

    def __init__(self, kind, label, model, name, scoped: ScopeQ | None, *, skip_created=False):
        self.kind, self.label, self.model, self.name = kind, label, model, name
        self.scoped, self.skip_created = scoped, skip_created
        history = model.history.model
        self.fields = {
            tracked.name: tracked.attname
            for tracked in history.tracked_fields
            if tracked.name not in {"updated_at"}
        }

    def rows(self, scope, filters):
        if filters.event_type:
            return None
        queryset = self.model.history.all()
        if self.skip_created:
            # The gateway call entry says what its creation did.
            queryset = queryset.exclude(history_type="+")
        if scope is not None:
            if self.scoped is None or (where := self.scoped(scope)) is None:
                return None
            queryset = queryset.filter(where)
        if filters.field:
            if filters.field not in self.fields:
                return None
            queryset = self._changed(queryset, filters.field)
        return queryset.annotate(
            t_at=F("history_date"),
            t_kind=_text(self.kind),
            t_pk=F("history_id"),
            t_actor=F("history_actor"),
            t_door=F("history_door"),
            t_reason=Coalesce("history_change_reason", _text("")),
        ).values(*COLUMNS)

    def _previous(self):
        return self.model.history.filter(
            id=OuterRef("id"), history_id__lt=OuterRef("history_id")
        ).order_by("-history_id")

    def _changed(self, queryset, name):
        attname = self.fields[name]
        before = Subquery(self._previous().values(attname)[:1])
        changed = Q(history_type="~") & Q(IsDistinctFrom(F(attname), before))
        if name.endswith(HEADLINE_SUFFIXES):  # a created record shows its status and money
            changed |= Q(history_type="+") & Q(**{f"{attname}__isnull": False})
        return queryset.filter(changed)

    def entries(self, rows):
        found = list(
            self.model.history.filter(history_id__in=[row["t_pk"] for row in rows]).annotate(
                previous_id=Subquery(self._previous().values("history_id")[:1])
            )
        )
        previous = self.model.history.in_bulk(
            [row.previous_id for row in found if row.previous_id], field_name="history_id"
        )
        return {
            row.history_id: history_entry(row, previous.get(row.previous_id), label=self.name(row))
            for row in found
        }


def _entry(row: dict, *, record: str, action: str, kind: str, details=()) -> TimelineEntry:
    return TimelineEntry(
        at=row["t_at"],
        record=record,
        action=action,
        actor=row["t_actor"],
        door=row["t_door"],
        reason=row["t_reason"],
        kind=kind,
        details=tuple(line for line in details if line),
    )


class WorkflowEventSource(Source):
    kind, label, category = "workflow event", "Workflow event", "event"
    event_type_field = "event_type"

    def rows(self, scope, filters):
        if filters.field:
            return None
        queryset = WorkflowEvent.objects.all()
        if scope is not None:
            queryset = queryset.filter(self._subjects(scope))
        queryset = self._event_type(queryset, filters)
        if queryset is None:
            return None
        return queryset.annotate(
            t_at=F("occurred_at"),
            t_kind=_text(self.kind),
            t_pk=F("id"),
            t_actor=F("actor"),
            t_door=F("actor_door"),
            t_reason=_text(""),
        ).values(*COLUMNS)

    @staticmethod
    def _subjects(scope: Scope) -> Q:
        def about(model, ids):
            if ids is None:
                return Q(pk__in=[])
            return Q(subject_type=ContentType.objects.get_for_model(model), subject_id__in=ids)

        intakes = any_of(patients="patient_id", orders="order_id")(scope)
        return (
            about(Order, scope.orders)
            | about(Invoice, _invoices(scope))
            | about(Payment, _payments(scope))
            | about(Subscription, scope.subscriptions)
            | about(
                IntakeResponse,
                IntakeResponse.objects.filter(intakes).values("pk") if intakes else None,
            )
        )

    def entries(self, rows):
        runs = WorkflowRun.objects.select_related("workflow").order_by("id")
        events = WorkflowEvent.objects.filter(id__in=[row["t_pk"] for row in rows])
        events = {event.pk: event for event in events.prefetch_related(Prefetch("runs", runs))}
        entries = {}
        for row in rows:
            event = events[row["t_pk"]]
            payload = event.payload if isinstance(event.payload, dict) else {}
            details = [
                f"workflow “{run.workflow.name}”: {run.get_status_display()}"
                + (f" — {run.last_error}" if run.last_error else "")
                for run in event.runs.all()
            ]
            if not details:
                details.append(
                    "no workflow runs on this event"
                    if event.dispatch_status == "DISPATCHED"
                    else "not dispatched to workflows yet"
                )
            change = payload.get("statusChange") or {}
            if change.get("to"):
                before = _order_status(change.get("from")) or "(new order)"
                details.insert(0, f"status {before} → {_order_status(change['to'])}")
            entries[event.pk] = _entry(
                row,
                record=_event_subject(event.subject_key, payload),
                action=f"event {event.event_type}",
                kind=self.kind,
                details=details,
            )
        return entries


def _order_status(value: str | None) -> str | None:
    return OrderStatus(value).label if value in OrderStatus.values else value


def _event_subject(subject_key: str, payload: dict) -> str:
    subject, _, pk = subject_key.partition(":")
    order = (payload.get("order") or {}).get("orderNumber")
    if subject == "order" and order:
        return f"order {order}"
    return f"{subject} #{pk}" + (f" of order {order}" if order else "")


def _first_history(model, column: str):
    # A payment row has no actor column: who made it is on its first history row.
    return Subquery(
        model.history.filter(id=OuterRef("pk"), history_type="+").values(column)[:1],
        output_field=CharField(),
    )


class ChargeAndRefundSource(Source):
    """Each money movement at a gateway (a Payment row) and its outcome."""

    kind, label, category = "gateway call", "Gateway call (charge or refund)", "gateway"

    def rows(self, scope, filters):
        if filters.field or filters.event_type:
            return None
        queryset = Payment.objects.all()
        if scope is not None:
            if scope.orders is None:
                return None
            queryset = queryset.filter(invoice__order_id__in=scope.orders)
        return queryset.annotate(
            t_at=F("created_at"),
            t_kind=_text(self.kind),
            t_pk=F("id"),
            t_actor=Coalesce(_first_history(Payment, "history_actor"), _text("")),
            t_door=Coalesce(_first_history(Payment, "history_door"), _text("")),
            t_reason=Coalesce(_first_history(Payment, "history_change_reason"), _text("")),
        ).values(*COLUMNS)

    def entries(self, rows):
        payments = Payment.objects.select_related("invoice").in_bulk([row["t_pk"] for row in rows])
        entries = {}
        for row in rows:
            payment = payments[row["t_pk"]]
            money = format_cents(payment.amount_cents, payment.currency)
            entries[payment.pk] = _entry(
                row,
                record=f"{payment.kind.lower()} payment #{payment.pk} on {payment.invoice.number}",
                action=f"{payment.get_kind_display().lower()} of {money} through "
                f"{payment.get_gateway_display()}: {payment.get_status_display().lower()}",
                kind=self.kind,
                details=[
                    payment.card_last4 and f"card {payment.card_brand} ····{payment.card_last4}",
                    payment.transaction_id and f"gateway transaction {payment.transaction_id}",
                    payment.failure_message and f"gateway said: {payment.failure_message}",
                    payment.needs_review and f"needs review: {payment.review_note}",
                ],
            )
        return entries


class RefundAttemptSource(Source):
    """Each refund request, committed before its gateway call, and what came of it."""

    kind, label, category = "refund attempt", "Refund attempt", "gateway"

    def rows(self, scope, filters):
        if filters.field or filters.event_type:
            return None
        queryset = RefundAttempt.objects.all()
        if scope is not None:
            if scope.orders is None:
                return None
            queryset = queryset.filter(order_id__in=scope.orders)
        return queryset.annotate(
            t_at=F("created_at"),
            t_kind=_text(self.kind),
            t_pk=F("id"),
            t_actor=F("requested_by_label"),
            t_door=F("door"),
            t_reason=Cast("reason", CharField()),
        ).values(*COLUMNS)

    def entries(self, rows):
        attempts = RefundAttempt.objects.select_related("order").in_bulk(
            [row["t_pk"] for row in rows]
        )
        entries = {}
        for row in rows:
            attempt = attempts[row["t_pk"]]
            money = format_cents(attempt.amount_cents, attempt.currency)
            entries[attempt.pk] = _entry(
                row,
                record=f"refund attempt #{attempt.pk} on {attempt.order.number}",
                action=f"refund of {money} requested through {attempt.get_gateway_display()}: "
                f"{attempt.get_status_display().lower()}",
                kind=self.kind,
                details=[
                    attempt.error_code
                    and f"refused: {attempt.error_code} — {attempt.error_message}",
                    attempt.resolved_at and f"resolved {_when(attempt.resolved_at)}",
                    f"idempotency key {attempt.reference}",
                ],
            )
        return entries


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


class InboxSource(Source):
    """Webhooks a partner sent (integrations/inbox.py rows) that name a record in the trail."""

    category = "webhook"
    event_type_field = "event_type"

    def __init__(self, kind, label, model, sender: Callable, actor, scoped: ScopeQ):
        self.kind, self.label, self.model = kind, label, model
        self.sender, self.actor, self.scoped = sender, actor, scoped

    def rows(self, scope, filters):
        if filters.field:
            return None
        queryset = self.queryset()
        if scope is not None:
            if (where := self.scoped(scope)) is None:
                return None
            queryset = queryset.filter(where)
        queryset = self._event_type(queryset, filters)
        if queryset is None:
            return None
        return queryset.annotate(
            t_at=F("received_at"),
            t_kind=_text(self.kind),
            t_pk=F("id"),
            t_actor=self.actor,
            t_door=_text("webhook"),
            t_reason=Cast("outcome_detail", CharField()),
        ).values(*COLUMNS)

    def queryset(self) -> QuerySet:
        return self.model.objects.all()

    def entries(self, rows):
        events = self.model.objects.in_bulk([row["t_pk"] for row in rows])
        entries = {}
        for row in rows:
            event = events[row["t_pk"]]
            entries[event.pk] = _entry(
                row,
                record=f"{self.sender(event)} event {event.event_id}",
                action=f"webhook {event.event_type}: {event.get_outcome_display().lower()}",
                kind=self.kind,
                details=[event.deliveries > 1 and f"sent {event.deliveries} times"],
            )
        return entries


def _gateway_events_naming(scope: Scope) -> Q | None:
    # A gateway event names our payment by its transaction id somewhere in its payload (Stripe
    # and NMI nest it differently), so the payload's text is searched for the trail's ids.
    payments = _payments(scope)
    if payments is None:
        return None
    naming = (
        Payment.objects.filter(pk__in=payments)
        .exclude(transaction_id="")
        .annotate(found=StrIndex(OuterRef("payload_text"), F("transaction_id")))
        .filter(found__gt=0)
    )
    return Q(Exists(naming))


class GatewayEventSource(InboxSource):
    def __init__(self):
        super().__init__(
            "gateway webhook",
            "Gateway webhook (Stripe, NMI)",
            GatewayEvent,
            lambda event: event.get_gateway_display(),
            Concat(_text("system:"), F("gateway"), _text("-webhook"), output_field=CharField()),
            _gateway_events_naming,
        )

    def queryset(self):
        return GatewayEvent.objects.annotate(payload_text=Cast("payload", TextField()))


class ConfirmationSource(Source):
    """What the patient read and confirmed in the portal before a subscription change."""

    kind, label, category = "portal confirmation", "Patient's portal confirmation", "portal"

    def rows(self, scope, filters):
        if filters.field or filters.event_type:
            return None
        queryset = ConsequencesAcknowledgement.objects.all()
        if scope is not None:
            where = any_of(patients="patient_id", subscriptions="subscription_id")(scope)
            if where is None:
                return None
            queryset = queryset.filter(where)
        return queryset.annotate(
            t_at=F("confirmed_at"),
            t_kind=_text(self.kind),
            t_pk=F("id"),
            t_actor=Concat(
                _text("patient:"),
                Coalesce("patient__user__username", "patient__email", output_field=CharField()),
                output_field=CharField(),
            ),
            t_door=_text("portal"),
            t_reason=_text(""),
        ).values(*COLUMNS)

    def entries(self, rows):
        confirmations = ConsequencesAcknowledgement.objects.in_bulk([row["t_pk"] for row in rows])
        entries = {}
        for row in rows:
            confirmation = confirmations[row["t_pk"]]
            entries[confirmation.pk] = _entry(
                row,
                record=f"subscription SUB-{confirmation.subscription_id:06d}",
                action=f"patient confirmed “{confirmation.get_change_display()}” in the portal",
                kind=self.kind,
                details=[
                    f"read before confirming: {confirmation.shown_text}",
                    f"text SHA-256 {confirmation.shown_sha256}",
                    f"from {confirmation.ip_address or 'an unknown address'}"
                    + (f", {confirmation.user_agent}" if confirmation.user_agent else ""),
                ],
            )
        return entries


class MessageSource(Source):
    """What the app sent the patient (the communication log, emr/communications.py)."""

    kind, label, category = "message", "Message sent to the patient", "message"

    def rows(self, scope, filters):
        if filters.field or filters.event_type:
            return None
        queryset = SentMessage.objects.all()
        if scope is not None:
            where = any_of(patients="patient_id", orders="order_id")(scope)
            if where is None:
                return None
            queryset = queryset.filter(where)
        return queryset.annotate(
            t_at=F("sent_at"),
            t_kind=_text(self.kind),
            t_pk=F("id"),
            t_actor=Concat(_text("system:"), F("sent_by"), output_field=CharField()),
            t_door=_text("system"),
            t_reason=_text(""),
        ).values(*COLUMNS)

    def entries(self, rows):
        sent = SentMessage.objects.select_related("order").in_bulk([row["t_pk"] for row in rows])
        entries = {}
        for row in rows:
            message = sent[row["t_pk"]]
            entries[message.pk] = _entry(
                row,
                record=f"{message.get_channel_display().lower()} to {message.recipient}"
                + (f" about {message.order.number}" if message.order else ""),
                action=f"{message.get_kind_display().lower()} "
                + (f"“{message.subject}” " if message.subject else "")
                + message.get_status_display().lower(),
                kind=self.kind,
                details=[
                    f"body SHA-256 {message.body_sha256} ({message.body_length} characters)",
                    message.attempts > 1 and f"attempted {message.attempts} times",
                    message.status_detail and f"server said: {message.status_detail}",
                    message.opened_at and f"opened by the patient {_when(message.opened_at)}",
                ],
            )
        return entries


class DecisionSource(Source):
    """The checklist staff were shown when they refunded, cancelled, voided or rejected,
    stored with the action (audit/decisions.py): it sits beside the change it led to."""

    kind, label, category = "decision", "What staff saw when deciding", "decision"

    def rows(self, scope, filters):
        if filters.field or filters.event_type:
            return None
        queryset = DecisionRecord.objects.all()
        if scope is not None:
            where = any_of(
                patients="patient_id", orders="order_id", subscriptions="subscription_id"
            )(scope)
            if where is None:
                return None
            queryset = queryset.filter(where)
        return queryset.annotate(
            t_at=F("at"),
            t_kind=_text(self.kind),
            t_pk=F("id"),
            t_actor=F("actor"),
            t_door=F("door"),
            t_reason=F("reason"),
        ).values(*COLUMNS)

    def entries(self, rows):
        decisions = DecisionRecord.objects.in_bulk([row["t_pk"] for row in rows])
        entries = {}
        for row in rows:
            decision = decisions[row["t_pk"]]
            shown = [
                f"{item['state'].upper()} {item['label']}: {item['sentence']}"
                for item in decision.items
            ]
            entries[decision.pk] = _entry(
                row,
                record=decision.record_label,
                action=f"confirmed {decision.action.rsplit('.', 1)[-1].replace('_', ' ')} "
                "after reading the checklist",
                kind=self.kind,
                details=[
                    decision.heading,
                    *shown,
                    "said it does not automatically: " + "; ".join(decision.will_not_do)
                    if decision.will_not_do
                    else "",
                ],
            )
        return entries


SOURCES: tuple[Source, ...] = (
    HistorySource(
        "patient",
        "Patient chart",
        Patient,
        lambda row: f"patient #{row.id} ({row.first_name} {row.last_name})",
        any_of(patients="id"),
    ),
    HistorySource(
        "intake",
        "Intake",
        IntakeResponse,
        lambda row: f"intake #{row.id} ({row.questionnaire})",
        any_of(patients="patient_id", orders="order_id"),
    ),
    HistorySource(
        "prescription",
        "Prescription",
        Prescription,
        lambda row: f"prescription #{row.id} ({row.medication})",
        any_of(patients="patient_id", orders="order_id"),
    ),
    HistorySource(
        "order",
        "Order",
        Order,
        lambda row: f"order {row.number}",
        any_of(patients="patient_id", orders="id", subscriptions="subscription_id"),
    ),
    HistorySource(
        "order item",
        "Order item",
        OrderItem,
        lambda row: f"item {row.description}",
        any_of(orders="order_id"),
    ),
    HistorySource(
        "invoice",
        "Invoice",
        Invoice,
        lambda row: f"invoice {row.number}",
        any_of(orders="order_id"),
    ),
    HistorySource(
        "payment",
        "Payment",
        Payment,
        lambda row: f"{row.kind.lower()} payment #{row.id}",
        lambda scope: None if scope.orders is None else Q(invoice_id__in=_invoices(scope)),
        skip_created=True,
    ),
    HistorySource(
        "refund attempt history",
        "Refund attempt (changes)",
        RefundAttempt,
        lambda row: f"refund attempt #{row.id}",
        any_of(orders="order_id"),
        skip_created=True,
    ),
    HistorySource(
        "saved card",
        "Saved card",
        PaymentMethod,
        lambda row: f"card {row.brand} ····{row.last4}",
        any_of(patients="patient_id"),
    ),
    HistorySource(
        "subscription",
        "Subscription",
        Subscription,
        lambda row: f"subscription SUB-{row.id:06d}",
        any_of(patients="patient_id", subscriptions="id"),
    ),
    HistorySource(
        "subscription cycle",
        "Subscription cycle",
        SubscriptionCycle,
        lambda row: f"cycle {row.number} of SUB-{row.subscription_id:06d}",
        any_of(subscriptions="subscription_id", orders="order_id"),
    ),
    HistorySource(
        "plan switch",
        "Plan switch",
        PlanSwitch,
        lambda row: f"plan switch #{row.id} of SUB-{row.subscription_id:06d}",
        any_of(subscriptions="subscription_id"),
    ),
    HistorySource(
        "escalation",
        "Escalation",
        Escalation,
        lambda row: f"escalation {row.number} (to {row.get_route_display()})",
        any_of(patients="patient_id", orders="order_id", subscriptions="subscription_id"),
    ),
    HistorySource(
        "telehealth visit",
        "Beluga visit",
        BelugaVisit,
        lambda row: f"Beluga visit {row.master_id}",
        any_of(orders="order_id"),
    ),
    HistorySource(
        "pharmacy order",
        "Pharmacy order",
        PharmacyOrder,
        lambda row: f"pharmacy order {row.reference}",
        any_of(orders="order_id"),
    ),
    # The clinic's set-up: in the search, never in one patient's trail.
    HistorySource("product", "Product", Product, lambda row: f"product {row.name}", None),
    HistorySource("plan", "Plan", Plan, lambda row: f"plan {row.name}", None),
    HistorySource(
        "gateway settings",
        "Gateway settings",
        GatewaySettings,
        lambda row: "gateway settings",
        None,
    ),
    HistorySource("workflow", "Workflow", Workflow, lambda row: f"workflow {row.name}", None),
    HistorySource(
        "workflow step",
        "Workflow step",
        WorkflowStep,
        lambda row: f"step {row.position} of workflow #{row.workflow_id}",
        None,
    ),
    HistorySource(
        "pharmacy route",
        "Product's pharmacy",
        ProductPharmacyRoute,
        lambda row: f"pharmacy route of product #{row.product_id}",
        None,
    ),
    WorkflowEventSource(),
    ChargeAndRefundSource(),
    RefundAttemptSource(),
    GatewayEventSource(),
    InboxSource(
        "telehealth webhook",
        "Beluga webhook",
        BelugaWebhookEvent,
        lambda event: "Beluga",
        _text("system:beluga-webhook"),
        lambda scope: (
            None
            if scope.orders is None
            else Q(
                master_id__in=BelugaVisit.objects.filter(order_id__in=scope.orders).values(
                    "master_id"
                )
            )
        ),
    ),
    InboxSource(
        "pharmacy webhook",
        "Pharmacy webhook",
        PharmacyWebhookEvent,
        lambda event: event.get_source_display(),
        Concat(_text("system:"), F("source"), _text("-webhook"), output_field=CharField()),
        any_of(orders="pharmacy_order__order_id"),
    ),
    ConfirmationSource(),
    DecisionSource(),
    MessageSource(),
    HistorySource(
        "dispute",
        "Dispute (chargeback)",
        Dispute,
        lambda row: f"dispute {row.gateway_dispute_id}",
        lambda scope: (
            None if scope.orders is None else Q(payment__invoice__order_id__in=scope.orders)
        ),
    ),
    HistorySource(
        "policy acceptance",
        "Refund terms accepted",
        PolicyAcknowledgement,
        lambda row: f"acceptance of refund terms #{row.id} (order #{row.order_id})",
        any_of(patients="patient_id", orders="order_id"),
    ),
    HistorySource(
        "session package",
        "Session package",
        SessionPackage,
        lambda row: f"session package #{row.id}",
        any_of(patients="patient_id", orders="order_item__order_id"),
    ),
    HistorySource(
        "session redemption",
        "Session used",
        SessionRedemption,
        lambda row: f"session of package #{row.package_id} ({row.provider})",
        any_of(patients="package__patient_id", orders="package__order_item__order_id"),
    ),
)

BY_KIND = {source.kind: source for source in SOURCES}
# Every field name a history diff can show, for the "field changed" filter.
FIELDS = sorted(
    {name for source in SOURCES if isinstance(source, HistorySource) for name in source.fields}
)
