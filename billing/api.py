from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import payments
from billing.models import GatewaySettings, Invoice, PaymentMethod
from billing.states import Gateway
from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictCharField, StrictModelSerializer
from emr.models import Patient
from orders.api import PaymentSerializer


class PaymentMethodSerializer(StrictModelSerializer):
    """What staff see of a card: never the gateway token, never the number."""

    class Meta:
        model = PaymentMethod
        fields = [
            "id",
            "gateway",
            "brand",
            "last4",
            "exp_month",
            "exp_year",
            "is_default",
            "created_at",
        ]


class SaveCardSerializer(serializers.Serializer):
    gateway = serializers.ChoiceField(choices=Gateway.choices)
    token = StrictCharField(max_length=255)


class PayInvoiceSerializer(serializers.Serializer):
    payment_method = serializers.IntegerField(required=False)
    gateway = serializers.ChoiceField(choices=Gateway.choices, required=False)
    token = StrictCharField(max_length=255, required=False)

    def validate(self, data):
        saved = "payment_method" in data
        one_off = "gateway" in data or "token" in data
        if saved == one_off:
            raise serializers.ValidationError(
                "Send either payment_method (a saved card id) or gateway and token, not both."
            )
        if one_off and not ("gateway" in data and "token" in data):
            raise serializers.ValidationError("A one-off payment needs both gateway and token.")
        return data


class ActiveGatewaySerializer(serializers.Serializer):
    gateway = serializers.ChoiceField(choices=Gateway.choices)
    reason = StrictCharField(max_length=500, required=False, default="Active gateway changed")


class PatientPaymentMethodsView(APIView):
    permission_classes = [ActionPermission]
    action_permissions = {"post": "billing.add_paymentmethod"}

    @extend_schema(responses=PaymentMethodSerializer(many=True))
    def get(self, request, patient_id: int):
        patient = get_object_or_404(Patient, pk=patient_id)
        cards = patient.payment_methods.filter(removed_at__isnull=True)
        return Response(PaymentMethodSerializer(cards, many=True).data)

    @extend_schema(request=SaveCardSerializer, responses={201: PaymentMethodSerializer})
    def post(self, request, patient_id: int):
        patient = get_object_or_404(Patient, pk=patient_id)
        payload = SaveCardSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        card = payments.save_card(
            patient=patient,
            actor=Actor.staff(request.user, door=Door.API),
            **payload.validated_data,
        )
        return Response(PaymentMethodSerializer(card).data, status=status.HTTP_201_CREATED)


class PayInvoiceView(APIView):
    permission_classes = [ActionPermission]
    action_permissions = {"post": "billing.add_payment"}

    @extend_schema(request=PayInvoiceSerializer, responses={201: PaymentSerializer})
    def post(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice.objects.select_related("order"), pk=invoice_id)
        payload = PayInvoiceSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        card = None
        if "payment_method" in data:
            card = PaymentMethod.objects.filter(pk=data["payment_method"]).first()
            if card is None:
                return Response(
                    {"code": "payment.card_not_found", "detail": "No saved card with that id."},
                    status=status.HTTP_400_BAD_REQUEST,
                )
        payment = payments.charge_invoice(
            invoice=invoice,
            actor=Actor.staff(request.user, door=Door.API),
            payment_method=card,
            one_off=payments.OneOffCard(data["gateway"], data["token"]) if card is None else None,
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


class ActiveGatewayView(APIView):
    permission_classes = [ActionPermission]
    action_permissions = {"put": "billing.change_gatewaysettings"}

    @extend_schema(responses=ActiveGatewaySerializer)
    def get(self, request):
        return Response({"gateway": GatewaySettings.load().active_gateway})

    @extend_schema(request=ActiveGatewaySerializer, responses=ActiveGatewaySerializer)
    def put(self, request):
        payload = ActiveGatewaySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        current = payments.set_active_gateway(
            actor=Actor.staff(request.user, door=Door.API), **payload.validated_data
        )
        return Response({"gateway": current.active_gateway})
