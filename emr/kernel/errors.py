"""Domain errors: every refusal the product can give, each with a stable code.

Services raise these; each door turns them into its own shape (the API's {"code", "detail"},
an admin message, a portal sentence). `detail` is written for the person at the door: a
support agent or a patient, never a stack trace.
"""

from emr.kernel.card_numbers import scrub_card_numbers


class DomainError(Exception):
    code = "error"
    # The HTTP status an API door answers with: 400 bad input, 404 missing, 409 the current
    # state forbids it, 502 a gateway or integration failed.
    http_status = 409
    # More the caller can act on, answered beside code and detail (say, the refund quote a
    # refusal was measured against). Plain JSON values only.
    extra: dict = {}

    def __init__(self, detail: str, *, code: str | None = None):
        # A detail is shown, stored and emitted; one quoting a partner's text must not carry
        # a card number along.
        detail = scrub_card_numbers(detail)
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class InvalidInput(DomainError):
    code = "invalid"
    http_status = 400


class Forbidden(DomainError):
    code = "permission_denied"
    http_status = 403


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class StateConflict(DomainError):
    code = "conflict"
    http_status = 409


class IntegrationFailed(DomainError):
    code = "integration_failed"
    http_status = 502


class InvalidTransition(StateConflict):
    """A status change the transition table does not allow."""

    def __init__(self, detail: str, *, code: str, current: str, target: str):
        super().__init__(detail, code=code)
        self.current = current
        self.target = target
