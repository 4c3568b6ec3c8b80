"""Every gateway call, timed, counted and logged in one place: `registry.gateway_for` wraps
each adapter in `Instrumented`, so billing's services need not remember to.

The log line names the gateway, the operation, the outcome and the duration (the request id
comes with the line); never an amount's owner, a token or a card.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from emr.kernel import metrics
from integrations.gateways.base import (
    ChargeResult,
    DisputeEvidenceGateway,
    GatewayError,
    PaymentGateway,
    RefundResult,
    SavedCard,
)

logger = logging.getLogger("integrations.gateways")

Result = TypeVar("Result")


class Instrumented(PaymentGateway):
    def __init__(self, adapter: PaymentGateway):
        super().__init__(merchant_account=adapter.merchant_account)
        self.adapter = adapter
        self.name = adapter.name

    def __repr__(self) -> str:
        return f"Instrumented({self.adapter!r})"

    def save_card(self, **kwargs) -> SavedCard:
        return self._call("save_card", lambda: self.adapter.save_card(**kwargs))

    def charge(self, **kwargs) -> ChargeResult:
        return self._call("charge", lambda: self.adapter.charge(**kwargs))

    def find_charge(self, **kwargs) -> ChargeResult | None:
        return self._call("find_charge", lambda: self.adapter.find_charge(**kwargs))

    def refund(self, **kwargs) -> RefundResult:
        return self._call("refund", lambda: self.adapter.refund(**kwargs))

    def find_refund(self, **kwargs) -> RefundResult | None:
        return self._call("find_refund", lambda: self.adapter.find_refund(**kwargs))

    def upload_dispute_evidence(self, **kwargs) -> str:
        return self._call(
            "upload_dispute_evidence", lambda: self.adapter.upload_dispute_evidence(**kwargs)
        )

    def submit_dispute_evidence(self, **kwargs) -> str:
        return self._call(
            "submit_dispute_evidence", lambda: self.adapter.submit_dispute_evidence(**kwargs)
        )

    @property
    def takes_dispute_evidence(self) -> bool:
        return isinstance(self.adapter, DisputeEvidenceGateway)

    def _call(self, operation: str, call: Callable[[], Result]) -> Result:
        started = time.perf_counter()
        outcome = "crashed"
        try:
            result = call()
            outcome = _outcome(result)
            return result
        except GatewayError as error:
            outcome = error.code
            raise
        finally:
            seconds = time.perf_counter() - started
            gateway = str(self.name)
            metrics.GATEWAY_CALLS.labels(gateway, operation, outcome).inc()
            metrics.GATEWAY_SECONDS.labels(gateway, operation).observe(seconds)
            logger.info(
                "gateway %s %s: %s",
                gateway,
                operation,
                outcome,
                extra={
                    "fields": {
                        "kind": "gateway_call",
                        "gateway": gateway,
                        "operation": operation,
                        "outcome": outcome,
                        "duration_ms": round(seconds * 1000, 1),
                    }
                },
            )


def _outcome(result) -> str:
    if result is None:
        return "not_found"
    if isinstance(result, RefundResult):
        return str(result.status)
    return "succeeded"
