"""The patient chart: who the patient is, what they answered, what was prescribed."""

from django.conf import settings
from django.db import models

from audit.models import audit_trail
from emr.kernel.numbering import NumberSequence

__all__ = ["IntakeResponse", "IntakeStatus", "NumberSequence", "Patient", "Prescription"]


class Patient(models.Model):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    phone = models.CharField(max_length=32, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    # The patient's portal login; staff never log in as a patient.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="patient",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        ordering = ["last_name", "first_name", "id"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def full_name(self) -> str:
        return str(self)


class IntakeStatus(models.TextChoices):
    PENDING = "PENDING", "Pending (not submitted)"
    SUBMITTED = "SUBMITTED", "Submitted"
    APPROVED = "APPROVED", "Approved"
    NEEDS_CORRECTION = "NEEDS_CORRECTION", "Needs correction"
    REJECTED = "REJECTED", "Rejected"


class IntakeResponse(models.Model):
    """A patient's answers to the questionnaire an order's product requires."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="intakes")
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="intakes"
    )
    questionnaire = models.CharField(max_length=100)
    status = models.CharField(
        max_length=20, choices=IntakeStatus.choices, default=IntakeStatus.PENDING
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audit_trail()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=IntakeStatus.values), name="intake_status_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.questionnaire} ({self.get_status_display()})"

    @property
    def is_complete(self) -> bool:
        return self.status in {IntakeStatus.SUBMITTED, IntakeStatus.APPROVED}


class Prescription(models.Model):
    """Written by the prescriber (Beluga's RX_WRITTEN): the boundary before fulfilment."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="prescriptions"
    )
    medication = models.CharField(max_length=200)
    prescriber = models.CharField(max_length=200, blank=True)
    written_at = models.DateTimeField()

    history = audit_trail()

    def __str__(self) -> str:
        return f"{self.medication} ({self.written_at:%Y-%m-%d})"
