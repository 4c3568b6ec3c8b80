"""What can go wrong talking to Beluga, each with a stable code and a sentence CS can act on.

The client raises these; the API answers them as {"code", "detail"} (502 for Beluga's
failures), the admin shows `detail` on the page.
"""

from emr.kernel.errors import IntegrationFailed, StateConflict
from integrations.http import PartnerNotConfigured, PartnerTimeout, PartnerUnreachable


class BelugaNotConfigured(PartnerNotConfigured):
    code = "beluga.not_configured"
    partner = "Beluga"


class BelugaError(IntegrationFailed):
    """Beluga answered, and said no (in the body, by HTTP status, or both)."""

    code = "beluga.error"

    def __init__(self, beluga_message: str, *, http_status: int | None = None):
        self.beluga_message = beluga_message
        self.beluga_http_status = http_status
        super().__init__(f"Beluga refused the request: {beluga_message}")


class BelugaUnreachable(PartnerUnreachable):
    code = "beluga.error"
    partner = "Beluga"


class BelugaTimeout(PartnerTimeout):
    code = "beluga.timeout"
    partner = "Beluga"
    retry_note = (
        "Trying again is safe: Beluga treats a repeated request for the same visit as the same "
        "request."
    )


class VisitNotSubmitted(StateConflict):
    code = "beluga.not_submitted"

    def __init__(self):
        super().__init__(
            "This visit was never submitted to Beluga, so there is nothing to cancel there. "
            "Retry the submission first, or leave it: an unsubmitted visit has no medical effect."
        )
