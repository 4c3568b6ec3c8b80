"""Escalation routes and statuses (refunds-cancellations-guide.txt, "CS Escalation Checklist").

An escalation is routed to the team that can act on it, and is open until someone of that team
resolves it with a note. RESOLVED is final: a case that comes back is a new escalation, so the
first one keeps reading as it was handled.
"""

from django.db import models

from emr.kernel.errors import InvalidTransition
from emr.kernel.transitions import TransitionTable


class EscalationRoute(models.TextChoices):
    BILLING = "BILLING", "Billing/admin operations"
    FULFILMENT = "FULFILMENT", "Fulfilment"
    MEDICAL = "MEDICAL", "Medical operations"


# Who may resolve an escalation on each route: each team resolves its own.
RESOLVE_PERMISSIONS = {
    EscalationRoute.BILLING: "support.resolve_billing_escalation",
    EscalationRoute.FULFILMENT: "support.resolve_fulfilment_escalation",
    EscalationRoute.MEDICAL: "support.resolve_medical_escalation",
}


class EscalationStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    RESOLVED = "RESOLVED", "Resolved"


escalation_transitions = TransitionTable(
    {EscalationStatus.OPEN: {EscalationStatus.RESOLVED}, EscalationStatus.RESOLVED: set()},
    refuse=lambda current, target: InvalidTransition(
        "This escalation is already resolved. If the case came back, open a new escalation.",
        code="escalation.already_resolved",
        current=current,
        target=target,
    ),
)
