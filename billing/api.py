from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import dispute_evidence, evidence_packet, packages, payments, policies
from billing.models import (
    Dispute,
    EvidenceSubmission,
    GatewaySettings,
    Invoice,
    PaymentMethod,
    RefundPolicy,
    RefundPolicyVersion,
    SessionPackage,
    SessionRedemption,
)
from billing.states import Gateway
from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictCharField, StrictModelSerializer
from emr.models import Patient
from orders.api import PaymentSerializer
from orders.models import Order


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


class PolicyVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RefundPolicyVersion
        fields = ["version", "rules", "text", "text_sha256", "created_at", "created_by_label"]


class RefundPolicySerializer(StrictModelSerializer):
    """A policy as its newest version says, with every version and the products using it."""

    version = serializers.SerializerMethodField()
    rules = serializers.JSONField(write_only=True)
    text = serializers.SerializerMethodField()
    versions = PolicyVersionSerializer(many=True, read_only=True)
    products = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = RefundPolicy
        fields = ["id", "name", "version", "rules", "text", "versions", "products", "created_at"]
        # Names are checked by the service, which says which policy has the name already.
        extra_kwargs = {"name": {"validators": []}}

    def _newest(self, policy) -> RefundPolicyVersion:
        return max(policy.versions.all(), key=lambda version: version.version)

    def get_version(self, policy) -> int:
        return self._newest(policy).version

    def get_text(self, policy) -> str:
        return self._newest(policy).text

    def to_representation(self, policy):
        data = super().to_representation(policy)
        data["rules"] = self._newest(policy).rules
        return data


class RefundPolicyViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Refund policies as data; PUT makes version n+1, earlier versions never change."""

    queryset = RefundPolicy.objects.prefetch_related("versions", "products")
    serializer_class = RefundPolicySerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": "billing.add_refundpolicy",
        "update": "billing.change_refundpolicy",
    }

    def create(self, request):
        payload = RefundPolicySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        policy = policies.create_policy(
            name=payload.validated_data["name"],
            rules=payload.validated_data["rules"],
            actor=Actor.staff(request.user, door=Door.API),
        )
        return Response(self._fresh(policy), status=status.HTTP_201_CREATED)

    @extend_schema(request=RefundPolicySerializer, responses=RefundPolicySerializer)
    def update(self, request, pk=None):
        policy = self.get_object()
        payload = RefundPolicySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        policies.revise_policy(
            policy=policy,
            name=payload.validated_data["name"],
            rules=payload.validated_data["rules"],
            actor=Actor.staff(request.user, door=Door.API),
        )
        return Response(self._fresh(policy))

    def _fresh(self, policy):
        return RefundPolicySerializer(self.get_queryset().get(pk=policy.pk)).data


class RedemptionSerializer(StrictModelSerializer):
    at = serializers.DateTimeField(source="redeemed_at")

    class Meta:
        model = SessionRedemption
        fields = ["id", "at", "provider", "appointment_ref", "note", "recorded_by_label"]
        read_only_fields = ["id", "recorded_by_label"]


class PackageSerializer(serializers.ModelSerializer):
    order = serializers.CharField(source="order_item.order.number")
    product = serializers.CharField(source="order_item.description")
    total = serializers.IntegerField(source="sessions_total")
    used = serializers.IntegerField(source="sessions_used")
    remaining = serializers.SerializerMethodField()
    redemptions = RedemptionSerializer(many=True, read_only=True)

    class Meta:
        model = SessionPackage
        fields = [
            "id",
            "patient",
            "order",
            "product",
            "total",
            "used",
            "remaining",
            "opened_at",
            "expires_at",
            "redemptions",
        ]

    def get_remaining(self, package) -> int:
        return package.sessions_total - package.sessions_used


class PackageViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Session packages and their usage log."""

    queryset = packages.with_usage(
        SessionPackage.objects.select_related("order_item__order").prefetch_related("redemptions")
    ).order_by("-opened_at", "-id")
    serializer_class = PackageSerializer
    permission_classes = [ActionPermission]
    action_permissions = {"redemptions": "billing.add_sessionredemption"}

    @extend_schema(request=RedemptionSerializer, responses={201: RedemptionSerializer})
    @action(detail=True, methods=["post"])
    def redemptions(self, request, pk=None):
        """Record a session used: when, by which provider, for which appointment, the note."""
        package = self.get_object()
        payload = RedemptionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        redemption = packages.redeem_session(
            package=package,
            redemption=packages.Redemption(
                redeemed_at=data["redeemed_at"],
                provider=data["provider"],
                appointment_ref=data.get("appointment_ref", ""),
                note=data.get("note", ""),
            ),
            actor=Actor.staff(request.user, door=Door.API),
        )
        return Response(RedemptionSerializer(redemption).data, status=status.HTTP_201_CREATED)


# --- Disputes and evidence ----------------------------------------------------------------


class EvidenceSubmissionSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvidenceSubmission
        fields = [
            "status",
            "file_id",
            "packet_sha256",
            "attempts",
            "error_code",
            "error_message",
            "submitted_at",
        ]


class DisputeSerializer(serializers.ModelSerializer):
    order = serializers.IntegerField(source="payment.invoice.order_id", read_only=True)
    order_number = serializers.CharField(source="payment.invoice.order.number", read_only=True)
    submission = serializers.SerializerMethodField()

    class Meta:
        model = Dispute
        fields = [
            "id",
            "gateway",
            "gateway_dispute_id",
            "payment",
            "order",
            "order_number",
            "amount_cents",
            "currency",
            "reason",
            "status",
            "evidence_due_by",
            "opened_at",
            "closed_at",
            "submission",
        ]

    @extend_schema_field(EvidenceSubmissionSerializer(allow_null=True))
    def get_submission(self, dispute):
        submission = getattr(dispute, "submission", None)
        return EvidenceSubmissionSerializer(submission).data if submission else None


class DisputeViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Disputes on charges, the soonest evidence due first."""

    queryset = Dispute.objects.select_related("payment__invoice__order", "submission")
    serializer_class = DisputeSerializer
    permission_classes = [ActionPermission]
    action_permissions = {"submit_evidence": "billing.submit_evidence"}

    @extend_schema(request=None, responses={200: DisputeSerializer})
    @action(detail=True, methods=["post"], url_path="submit-evidence")
    def submit_evidence(self, request, pk=None):
        """Upload the order's evidence packet to Stripe and submit it as the dispute's evidence,
        once: a retry answers with the submission already made. NMI: 409
        `dispute.download_only` (download the packet from the order's evidence-packet)."""
        dispute = self.get_object()
        order = dispute.payment.invoice.order
        dispute_evidence.submit_evidence(
            dispute=dispute,
            build_packet=lambda: evidence_packet.render(order),
            actor=Actor.staff(request.user, door=Door.API),
        )
        return Response(DisputeSerializer(self.get_queryset().get(pk=dispute.pk)).data)


class OrderEvidencePacketView(APIView):
    """The order's evidence packet, a PDF: order and items, refund terms and their acceptance,
    sessions used, messages sent, proof of payment, refunds, disputes, the audit trail."""

    permission_classes = [ActionPermission]
    queryset = Dispute.objects.all()  # reading it needs billing.view_dispute

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(
                response=OpenApiTypes.BINARY, description="The evidence packet (PDF)."
            )
        }
    )
    def get(self, request, order_id: int):
        order = get_object_or_404(Order, pk=order_id)
        packet = evidence_packet.render(order)
        response = HttpResponse(packet.content, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{packet.filename}"'
        return response
