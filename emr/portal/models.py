"""What the portal itself records: that a patient read what a subscription change would and
would not do before confirming it."""

from django.db import models

from audit.models import audit_trail
from emr.models import Patient
from subscriptions.models import Subscription


class SubscriptionChange(models.TextChoices):
    CANCEL = "cancel", "Cancel now"
    PAUSE = "pause", "Pause"
    RESUME = "resume", "Resume"
    SCHEDULE_CANCELLATION = "schedule-cancellation", "Schedule cancellation"
    WITHDRAW_CANCELLATION = "withdraw-cancellation", "Withdraw scheduled cancellation"


class ConsequencesAcknowledgement(models.Model):
    """The text a patient was shown before confirming a change, as shown (and its SHA-256, so
    a billing admin can tell it was not edited since), when, and from which address and
    browser. Written in the same transaction as the change: there is one exactly when the
    change was made. Never edited."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="consequences_acknowledgements"
    )
    change = models.CharField(max_length=30, choices=SubscriptionChange.choices)
    shown_text = models.TextField()
    shown_sha256 = models.CharField(max_length=64)
    confirmed_at = models.DateTimeField(auto_now_add=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    history = audit_trail()

    class Meta:
        ordering = ["-confirmed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(change__in=SubscriptionChange.values),
                name="consequences_change_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} {self.change} confirmed {self.confirmed_at:%Y-%m-%d %H:%M}"
