"""Input no view can handle is refused at the door, before a view or the database sees it.

PostgreSQL refuses NUL characters in text, Python's JSON parser recurses once per nesting
level, and Django raises on a body over its upload limit: each used to surface as a 500 from
deep inside a view. Here each is a 400 (or 413) in the API's {code, detail} shape, and nothing
behind it runs.
"""

from urllib.parse import unquote_to_bytes

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

# Deeper than any document the API or a partner's webhook sends, far shallower than what makes
# the parser recurse out of stack.
MAX_JSON_DEPTH = 32
_NUL_ESCAPES = (b"\x00", b"\\u0000")


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = refusal_for(request)
        if refusal is not None:
            return refusal
        return self.get_response(request)


def refusal_for(request: HttpRequest) -> HttpResponse | None:
    query = unquote_to_bytes(request.META.get("QUERY_STRING", ""))
    if "\x00" in request.path or b"\x00" in query:
        return _refuse(400, "request.nul_byte", "The address contains a NUL character.")
    try:
        body = request.body
    except RequestDataTooBig:
        return _refuse(413, "request.too_large", "The request body is larger than allowed.")
    if any(escape in body for escape in _NUL_ESCAPES):
        return _refuse(400, "request.nul_byte", "The request body contains a NUL character.")
    if "json" in request.content_type and json_depth(body) > MAX_JSON_DEPTH:
        return _refuse(
            400,
            "request.too_deep",
            f"The JSON document is nested more than {MAX_JSON_DEPTH} levels deep.",
        )
    return None


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in `body`, without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _refuse(status: int, code: str, detail: str) -> HttpResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)
