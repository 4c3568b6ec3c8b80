"""The refusals every API operation can answer, written into the OpenAPI schema.

drf-spectacular documents only the success of an operation; a client (and the fuzzer in
tests/test_api_fuzz.py) must also know that a refusal is one `{code, detail}` shape and which
statuses it comes with (`emr.kernel.errors`, `emr.kernel.api_errors`,
`emr.kernel.request_guard`).
"""

ERROR_SCHEMA = {
    "type": "object",
    "description": "A refusal: a stable code and a sentence for the person at the door.",
    "properties": {
        "code": {"type": "string", "example": "payment.declined"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": True,
            "description": "Invalid input only: what is wrong with each field.",
        },
    },
    "required": ["code", "detail"],
}

# Status -> when it is answered. Any operation can meet these.
EVERY_OPERATION = {
    "400": "Invalid input: a parameter or the body is refused (a NUL character included).",
    "401": "No credentials, or an unknown API token.",
    "403": "Your role does not allow this.",
    "404": "No such record, or you may not see it.",
    "429": "Too many requests (or wrong tokens) from this token or address: wait and retry.",
}
# And a write, which runs a service that may call a gateway or a partner.
EVERY_WRITE = {
    "402": "The card was declined, or its token is unknown to the gateway: send another card.",
    "409": "The record's current state does not allow this.",
    "413": "The request body is larger than allowed.",
    "502": "A payment gateway or partner failed or is not configured; nothing was changed.",
}
WRITES = {"post", "put", "patch", "delete"}


def document_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: add the Error component and, to each operation,
    the refusals it may answer (a status it documents already is left as it is)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            statuses = EVERY_OPERATION | (EVERY_WRITE if method in WRITES else {})
            responses = operation.setdefault("responses", {})
            for status, description in statuses.items():
                responses.setdefault(status, _error(description))
    return result


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
