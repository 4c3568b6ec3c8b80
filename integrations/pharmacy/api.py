"""Staff API for pharmacy orders. Thin: each action calls the service."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictCharField, StrictModelSerializer
from emr.kernel.errors import InvalidInput
from integrations.pharmacy import services
from integrations.pharmacy.errors import ManualVerificationRequired
from integrations.pharmacy.models import FulfilmentCheck, PharmacyOrder
from integrations.pharmacy.states import VOIDABLE_PHARMACIES, FulfilmentFinding


class PharmacyActionReasonSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500)


class FulfilmentCheckInputSerializer(serializers.Serializer):
    finding = serializers.ChoiceField(choices=FulfilmentFinding.choices)
    note = StrictCharField(max_length=2000)


class FulfilmentCheckSerializer(StrictModelSerializer):
    class Meta:
        model = FulfilmentCheck
        fields = ["id", "finding", "note", "checked_by", "checked_at"]
        read_only_fields = fields


class PharmacyOrderSerializer(StrictModelSerializer):
    order_number = StrictCharField(source="order.number", read_only=True)
    cancellation = serializers.SerializerMethodField(
        help_text="How a cancellation works at this pharmacy: `void` (DispensePro, before "
        "shipment) or `verify_with_pharmacy`, with the sentence CS needs."
    )
    fulfilment_checks = FulfilmentCheckSerializer(many=True, read_only=True)

    class Meta:
        model = PharmacyOrder
        fields = [
            "id",
            "order",
            "order_number",
            "pharmacy",
            "reference",
            "external_id",
            "status",
            "last_error",
            "submit_attempts",
            "submitted_at",
            "shipped_at",
            "carrier",
            "tracking_number",
            "voided_at",
            "cancelled_at",
            "cancellation",
            "fulfilment_checks",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_cancellation(self, pharmacy_order: PharmacyOrder) -> dict:
        if pharmacy_order.pharmacy in VOIDABLE_PHARMACIES:
            return {"how": "void", "detail": "DispensePro can void this order before shipment."}
        return {
            "how": "verify_with_pharmacy",
            "detail": ManualVerificationRequired(pharmacy_order.pharmacy).detail,
        }


class PharmacyOrderViewSet(
    mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    queryset = PharmacyOrder.objects.select_related("order").prefetch_related("fulfilment_checks")
    serializer_class = PharmacyOrderSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "void": "pharmacy.void_pharmacyorder",
        "send": "pharmacy.submit_pharmacyorder",
        "refresh": "pharmacy.submit_pharmacyorder",
        "fulfilment_check": "pharmacy.record_fulfilment_check",
    }

    @extend_schema(
        parameters=[OpenApiParameter("order", int, description="only this order's fulfilment")]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        order = self.request.query_params.get("order") if self.action == "list" else None
        if order:
            if not order.isdigit():
                raise InvalidInput("order must be an id (a whole number).", code="invalid")
            queryset = queryset.filter(order_id=int(order))
        return queryset

    @extend_schema(request=PharmacyActionReasonSerializer, responses=PharmacyOrderSerializer)
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        """DispensePro only, before shipment: status `voided`. Not a refund; the order, its
        invoice and the subscription stay as they are. 409 after shipment, and for pharmacies
        without a void (CS verifies with the pharmacy instead)."""
        pharmacy_order = services.void_pharmacy_order(
            pharmacy_order=self.get_object(),
            actor=self._actor(request),
            reason=self._reason(request),
        )
        return self._answer(pharmacy_order)

    @extend_schema(request=PharmacyActionReasonSerializer, responses=PharmacyOrderSerializer)
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """DispensePro: (re)submit through its API. Other pharmacies: record that staff sent
        it. Either way the order moves to AWAITING_SHIPMENT."""
        pharmacy_order = self.get_object()
        reason = self._reason(request)
        if pharmacy_order.pharmacy in services.API_PHARMACIES:
            send = services.send_to_dispensepro
        else:
            send = services.record_sent_manually
        pharmacy_order = send(
            pharmacy_order=pharmacy_order, actor=self._actor(request), reason=reason
        )
        return self._answer(pharmacy_order)

    @extend_schema(request=None, responses=PharmacyOrderSerializer)
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Ask DispensePro where the order stands; record a shipment or void we missed."""
        pharmacy_order = services.refresh_from_dispensepro(
            pharmacy_order=self.get_object(), actor=self._actor(request)
        )
        return self._answer(pharmacy_order)

    @extend_schema(
        request=FulfilmentCheckInputSerializer, responses={201: FulfilmentCheckSerializer}
    )
    @action(detail=True, methods=["post"], url_path="fulfilment-checks")
    def fulfilment_check(self, request, pk=None):
        """Record what a pharmacy without a void told CS about this fulfilment."""
        payload = FulfilmentCheckInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        check = services.record_fulfilment_check(
            pharmacy_order=self.get_object(),
            actor=self._actor(request),
            **payload.validated_data,
        )
        return Response(FulfilmentCheckSerializer(check).data, status=status.HTTP_201_CREATED)

    def _answer(self, pharmacy_order: PharmacyOrder) -> Response:
        return Response(PharmacyOrderSerializer(self.get_queryset().get(pk=pharmacy_order.pk)).data)

    @staticmethod
    def _actor(request) -> Actor:
        return Actor.staff(request.user, door=Door.API)

    @staticmethod
    def _reason(request) -> str:
        payload = PharmacyActionReasonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return payload.validated_data["reason"]
