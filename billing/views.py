from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.stripe_webhook import receive_stripe_event
from emr.kernel.errors import DomainError


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        receipt = receive_stripe_event(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except DomainError as error:
        return JsonResponse({"code": error.code, "detail": error.detail}, status=error.http_status)
    return JsonResponse(
        {"received": receipt.event_id, "outcome": receipt.outcome}, status=receipt.http_status
    )
