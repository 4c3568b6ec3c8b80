"""Who looked at a patient's record: every staff view of a chart, an audit timeline or an
export is written to the access log (HIPAA's audit controls), with the address and browser."""

from audit.models import AccessedPage, AccessLogEntry


def record_access(request, *, page: str, record: str, patient=None) -> AccessLogEntry:
    """Log that the signed-in staff member behind `request` viewed `record` on `page`."""
    page = AccessedPage(page)  # an unknown page is a programming error: ValueError
    user = request.user if request.user.is_authenticated else None
    return AccessLogEntry.objects.create(
        user=user,
        user_label=user.get_username() if user else "anonymous",
        patient=patient,
        page=page,
        record=record[:200],
        path=request.get_full_path()[:500],
        ip_address=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )
