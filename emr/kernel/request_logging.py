"""One JSON line and one latency observation per request, under the request's id.

First in the middleware stack, so every answer is counted, the request guard's refusals
included. The id is the caller's `X-Request-ID` when well formed (a proxy's), else a new one,
and is echoed in the response. Latency is labelled by the resolved view name, never the raw
path: paths carry ids, and one label per order would swamp the metrics.
"""

import logging
import time

from django.http import HttpRequest, HttpResponse

from emr.kernel import metrics, request_id

logger = logging.getLogger("emr.requests")

UNRESOLVED = "unresolved"  # 404s and answers given before URL resolution


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_id.bound(request_id.accept(request.headers.get(request_id.HEADER))) as rid:
            started = time.perf_counter()
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            view = view_name(request)
            metrics.HTTP_REQUESTS.labels(view, request.method, str(response.status_code)).inc()
            metrics.HTTP_SECONDS.labels(view, request.method).observe(seconds)
            logger.info(
                "%s %s %s",
                request.method,
                view,
                response.status_code,
                extra={
                    "fields": {
                        "kind": "request",
                        "method": request.method,
                        "view": view,
                        "status": response.status_code,
                        "duration_ms": round(seconds * 1000, 1),
                    }
                },
            )
        response[request_id.HEADER] = rid
        return response


def view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNRESOLVED
    return match.view_name or match._func_path
