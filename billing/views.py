from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.nmi_webhook import NmiEvent, receive_nmi_event
from billing.stripe_webhook import receive_stripe_event
from emr.kernel.errors import DomainError
from integrations.inbox import Malformed
from integrations.webhooks import count_webhook, receipt_outcome, receive_signed, signed_like_nmi


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        receipt = receive_stripe_event(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except DomainError as error:
        count_webhook("stripe", error.code)
        return JsonResponse({"code": error.code, "detail": error.detail}, status=error.http_status)
    count_webhook("stripe", receipt_outcome(receipt))
    if receipt.malformed:
        return JsonResponse({"code": Malformed.code, "detail": receipt.detail}, status=400)
    return JsonResponse(
        {"received": receipt.event_id, "outcome": receipt.outcome}, status=receipt.http_status
    )


@csrf_exempt
@require_POST
def nmi_webhook(request):
    """NMI's events (billing/nmi_webhook.py); answers as every signed webhook's
    (integrations/webhooks.py)."""
    return receive_signed(
        request,
        sender="NMI",
        key_setting="NMI_WEBHOOK_SIGNING_KEY",
        signature=signed_like_nmi,
        parse=NmiEvent.parse,
        receive=receive_nmi_event,
    )
