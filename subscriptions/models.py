from django.db import models

from audit.models import audit_trail
from billing.models import PaymentMethod
from emr.models import Patient
from emr.status_guard import GuardedStatusModel
from orders.models import Product
from subscriptions.states import BillingInterval, SubscriptionStatus, subscription_transitions


class Plan(models.Model):
    name = models.CharField(max_length=200)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="plans")
    price_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    interval = models.CharField(max_length=10, choices=BillingInterval.choices)
    interval_count = models.PositiveSmallIntegerField(default=1)
    # Financed plans: treatment up front, paid over this many cycles. While required cycles
    # remain the patient has a recovery balance and cannot pause or cancel on their own.
    financed_cycles = models.PositiveSmallIntegerField(null=True, blank=True)
    # Fixed-term plans end EXPIRED after this many cycles.
    term_cycles = models.PositiveSmallIntegerField(null=True, blank=True)
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
        ]
        permissions = [("switch_plan", "Can switch a subscription to another plan")]

    def __str__(self) -> str:
        return self.name


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
    cycles_billed = models.PositiveIntegerField(default=0)
    cancelled_at = models.DateTimeField(null=True, blank=True)
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
        ]
        permissions = [
            ("override_recovery_balance", "Can cancel or pause despite a recovery balance"),
        ]

    def __str__(self) -> str:
        return f"SUB-{self.pk:06d}" if self.pk else "new subscription"

    @property
    def recovery_cycles_remaining(self) -> int:
        if not self.plan.financed_cycles:
            return 0
        return max(self.plan.financed_cycles - self.cycles_billed, 0)
