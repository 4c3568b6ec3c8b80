"""What can go wrong with a pharmacy action, each with a stable code and a sentence CS can act
on. The API answers them as {"code", "detail"}; the admin shows `detail`."""

from emr.kernel.errors import IntegrationFailed, StateConflict
from integrations.http import PartnerNotConfigured, PartnerTimeout, PartnerUnreachable
from integrations.pharmacy.states import ALREADY_SHIPPED, PharmacyType


class PharmacyNotConfigured(PartnerNotConfigured):
    code = "pharmacy.not_configured"
    partner = "DispensePro"


class PharmacyError(IntegrationFailed):
    """DispensePro answered, and said no; or it could not be reached."""

    code = "pharmacy.error"

    def __init__(self, message: str, *, provider_code: str = "", http_status: int | None = None):
        self.provider_code = provider_code
        self.provider_http_status = http_status
        super().__init__(f"DispensePro refused the request: {message}")


class PharmacyUnreachable(PartnerUnreachable):
    code = "pharmacy.error"
    partner = "DispensePro"


class PharmacyTimeout(PartnerTimeout):
    code = "pharmacy.timeout"
    partner = "DispensePro"
    retry_note = (
        "Nothing was changed here. Trying again is safe: DispensePro treats a repeated request "
        "for the same order as the same request."
    )


class AlreadyShipped(StateConflict):
    code = "pharmacy.already_shipped"

    def __init__(self):
        super().__init__(ALREADY_SHIPPED)


class ManualVerificationRequired(StateConflict):
    code = "pharmacy.manual_verification_required"

    def __init__(self, pharmacy: str):
        label = PharmacyType(pharmacy).label
        super().__init__(
            f"{label} has no void in its integration: the app cannot cancel this fulfilment. "
            f"Verify the fulfilment state and the pharmacy's process with {label} before "
            "promising the patient a cancellation, then record what they told you. Nothing was "
            "changed."
        )


class PrescriptionRequired(StateConflict):
    code = "pharmacy.prescription_required"

    def __init__(self):
        super().__init__(
            "The prescription is not confirmed yet (no RX_WRITTEN for this order), and "
            "fulfilment starts only after it. Nothing was sent to a pharmacy."
        )
