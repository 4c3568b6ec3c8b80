"""The patient as our partners receive them with a visit (Beluga) or an order (DispensePro):
who they are and how to reach them, nothing of their chart."""

from typing import Any


def patient_for_partner(patient) -> dict[str, Any]:
    """`patient`: an emr.models.Patient."""
    return {
        "firstName": patient.first_name,
        "lastName": patient.last_name,
        "dob": patient.date_of_birth.isoformat() if patient.date_of_birth else None,
        "email": patient.email,
        "phone": patient.phone,
    }
