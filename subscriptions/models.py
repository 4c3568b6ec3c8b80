from django.db import models, transaction

from audit.models import audit_trail
from billing.models import PaymentMethod
from emr.kernel.errors import StateConflict
from emr.kernel.transitions import GuardedStatusModel
from emr.models import Patient
from orders.models import Order, Product
from subscriptions.states import (
    OPEN_SWITCH_STATUSES,
    BillingInterval,
    CancellationCause,
    SubscriptionStatus,
    SwitchStatus,
    subscription_transitions,
    switch_transitions,
)


class Plan(models.Model):
    # What a subscriber pays, for what, how often and for how long: every renewal bills the
    # plan's price and product as they are then (`billing_cycle.plan_line`), and the recovery
    # balance is the remaining financed cycles times the price. Once a subscription or a switch
    # uses the plan these never change, whoever saves it; a new price is a new plan.
    TERMS = (
        "product",
        "price_cents",
        "currency",
        "interval",
        "interval_count",
        "financed_cycles",
        "term_cycles",
        "payoff_switch_allowed",
    )

    name = models.CharField(max_length=200)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="plans")
    price_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    interval = models.CharField(max_length=10, choices=BillingInterval.choices)
    interval_count = models.PositiveSmallIntegerField(default=1)
    # Financed plans: treatment up front, paid over this many cycles (the first included). While
    # required cycles remain the patient has a recovery balance and cannot pause or cancel on
    # their own.
    financed_cycles = models.PositiveSmallIntegerField(null=True, blank=True)
    # Fixed-term plans end EXPIRED after this many cycles.
    term_cycles = models.PositiveSmallIntegerField(null=True, blank=True)
    # Whether a patient with a recovery balance may switch away at once by paying it off; if not,
    # the switch waits for the final recovery payment.
    payoff_switch_allowed = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_cents__gt=0), name="plan_price_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(interval__in=BillingInterval.values), name="plan_interval_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(interval_count__gte=1), name="plan_interval_count_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(financed_cycles__isnull=True) | models.Q(financed_cycles__gte=1),
                name="plan_financed_cycles_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(term_cycles__isnull=True) | models.Q(term_cycles__gte=1),
                name="plan_term_cycles_positive",
            ),
            # A term shorter than the financing would end the plan with money still owed.
            models.CheckConstraint(
                condition=models.Q(term_cycles__isnull=True)
                | models.Q(financed_cycles__isnull=True)
                | models.Q(term_cycles__gte=models.F("financed_cycles")),
                name="plan_term_covers_financing",
            ),
        ]
        permissions = [("switch_plan", "Can switch a subscription to another plan")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if self.pk is None:
            return super().save(*args, **kwargs)
        attnames = [self._meta.get_field(name).attname for name in self.TERMS]
        with transaction.atomic():
            # The row lock waits for, then holds off, a subscription or switch being created on
            # this plan (its foreign key takes a share lock on the row): "not in use" stays true
            # until this save commits.
            stored = Plan.objects.select_for_update().filter(pk=self.pk).values(*attnames).first()
            changed = stored is not None and any(
                stored[attname] != getattr(self, attname) for attname in attnames
            )
            if changed and self.in_use:
                raise StateConflict(
                    f"Patients subscribe to {self.name}: its product, price, cadence, financing "
                    "and term can no longer change. A new price is a new plan (add it, then "
                    "untick Active here).",
                    code="plan.in_use",
                )
            return super().save(*args, **kwargs)

    def clean(self) -> None:
        # 0 financed cycles is how a form says "not financed"; the column says it with null.
        self.financed_cycles = self.financed_cycles or None

    @property
    def in_use(self) -> bool:
        """Whether a subscription is (or was) on this plan, or a switch leads to it."""
        return self.pk is not None and (
            Subscription.objects.filter(plan_id=self.pk).exists()
            or PlanSwitch.objects.filter(target_plan_id=self.pk).exists()
        )


class Subscription(GuardedStatusModel):
    transitions = subscription_transitions

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(
        max_length=10,
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.ACTIVE,
        editable=False,
    )
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField()
    next_billing_at = models.DateTimeField(null=True, blank=True)
    # Cycle orders created so far; the next cycle is number cycles_billed + 1.
    cycles_billed = models.PositiveIntegerField(default=0)
    # Required financed payments settled, by cycle payments or by a payoff.
    financed_cycles_paid = models.PositiveIntegerField(default=0)
    # PAUSED until an open cycle invoice is paid (the first payment, or payment recovery);
    # paying it reactivates the subscription. False when staff or the patient paused it.
    awaiting_payment = models.BooleanField(default=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancellation_cause = models.CharField(
        max_length=20, choices=CancellationCause.choices, blank=True
    )
    # A cancellation requested while a recovery balance remained: it runs after the final
    # required payment. Who asked, when and why, for CS to read before answering the patient.
    cancellation_scheduled_at = models.DateTimeField(null=True, blank=True)
    cancellation_scheduled_by = models.CharField(max_length=150, blank=True)
    cancellation_scheduled_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audit_trail()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=SubscriptionStatus.values),
                name="subscription_status_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=SubscriptionStatus.CANCELLED)
                | models.Q(cancelled_at__isnull=False),
                name="cancelled_subscription_has_cancelled_at",
            ),
            models.CheckConstraint(
                condition=models.Q(cancellation_cause="")
                | models.Q(cancellation_cause__in=CancellationCause.values),
                name="subscription_cancellation_cause_valid",
            ),
        ]
        indexes = [
            # The renewal sweep: ACTIVE subscriptions in billing-date order.
            models.Index(
                fields=["next_billing_at", "id"],
                condition=models.Q(status=SubscriptionStatus.ACTIVE),
                name="subscription_due_idx",
            ),
        ]
        permissions = [
            ("override_recovery_balance", "Can cancel or pause despite a recovery balance"),
        ]

    def __str__(self) -> str:
        return f"SUB-{self.pk:06d}" if self.pk else "new subscription"

    @property
    def recovery_cycles_remaining(self) -> int:
        """Required financed payments still to make (the open cycle's included)."""
        if not self.plan.financed_cycles:
            return 0
        return max(self.plan.financed_cycles - self.financed_cycles_paid, 0)

    @property
    def recovery_balance_cents(self) -> int:
        return self.recovery_cycles_remaining * self.plan.price_cents

    @property
    def has_scheduled_cancellation(self) -> bool:
        return self.cancellation_scheduled_at is not None

    @property
    def term_complete(self) -> bool:
        """A fixed-term plan whose last cycle was billed: its next date is its end date."""
        term = self.plan.term_cycles
        return term is not None and self.cycles_billed >= term


class SubscriptionCycle(models.Model):
    """One billing period of a subscription and the order that bills it.

    The unique (subscription, number) and (subscription, period_start) are the database's own
    guarantee that a period is never billed twice, whatever runs concurrently.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="cycles")
    number = models.PositiveIntegerField()
    period_start = models.DateTimeField()
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="subscription_cycle")
    # Counts toward the financed payments (the first cycle and the payment-only recovery cycles).
    financed = models.BooleanField(default=False)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["subscription", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "number"], name="one_order_per_subscription_cycle"
            ),
            models.UniqueConstraint(
                fields=["subscription", "period_start"], name="one_cycle_per_billing_period"
            ),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="cycle_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} cycle {self.number}"


class PlanSwitch(GuardedStatusModel):
    """A request to move a patient to another plan. The old subscription is never edited: a
    replacement subscription is created, and the old one is cancelled only once the
    replacement's first charge succeeded."""

    transitions = switch_transitions

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="switches"
    )
    target_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=SwitchStatus.choices, editable=False)
    # The old plan's remaining financed balance, billed separately from the replacement.
    payoff_order = models.OneToOneField(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="payoff_for_switch"
    )
    replacement = models.OneToOneField(
        Subscription,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaces_switch",
    )
    requested_by = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    history = audit_trail()

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name_plural = "plan switches"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=SwitchStatus.values), name="switch_status_valid"
            ),
            models.UniqueConstraint(
                fields=["subscription"],
                condition=models.Q(status__in=OPEN_SWITCH_STATUSES),
                name="one_open_switch_per_subscription",
            ),
        ]

    def __str__(self) -> str:
        return f"Switch of {self.subscription} to {self.target_plan} ({self.status})"


class RenewalNotice(models.Model):
    """`subscription.upcoming_renewal` was emitted for this renewal date: once, never twice."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="renewal_notices"
    )
    renews_at = models.DateTimeField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "renews_at"], name="one_notice_per_renewal"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} renews {self.renews_at:%Y-%m-%d}"
