from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.access_log import record_access
from audit.models import AccessedPage
from emr.communications import messages_for
from emr.documents import signed_documents_of
from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictModelSerializer
from emr.models import Patient, SentMessage, SignedDocument
from emr.portal.accounts import invite_patient


class PatientSerializer(StrictModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "first_name", "last_name", "email", "phone", "date_of_birth", "created_at"]
        read_only_fields = ["id", "created_at"]


class PortalInviteSerializer(serializers.Serializer):
    patient = serializers.IntegerField(source="patient.pk")
    email = serializers.EmailField()
    expires_at = serializers.DateTimeField()


class SignedDocumentSerializer(serializers.ModelSerializer):
    """What the patient signed: the document and version, the exact text and its hash, who,
    when, from where, and the hash of the PDF stored at signing."""

    template = serializers.CharField(source="version.template.name")
    kind = serializers.CharField(source="version.template.kind")
    version = serializers.IntegerField(source="version.version")
    title = serializers.CharField(source="version.title")
    drawn_signature = serializers.BooleanField(source="drawn")

    class Meta:
        model = SignedDocument
        fields = [
            "id",
            "template",
            "kind",
            "version",
            "title",
            "text",
            "text_sha256",
            "typed_name",
            "drawn_signature",
            "signed_at",
            "ip_address",
            "user_agent",
            "pdf_sha256",
        ]
        read_only_fields = fields


class SentMessageSerializer(serializers.ModelSerializer):
    order_number = serializers.CharField(
        source="order.number", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = SentMessage
        fields = [
            "id",
            "channel",
            "kind",
            "recipient",
            "subject",
            "body_sha256",
            "body_length",
            "sent_by",
            "status",
            "status_detail",
            "attempts",
            "sent_at",
            "opened_at",
            "order",
            "order_number",
        ]


class PatientViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Patient.objects.all()
    serializer_class = PatientSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": "emr.add_patient",
        "portal_invite": "emr.change_patient",
        "messages": "emr.view_sentmessage",
    }

    def retrieve(self, request, *args, **kwargs):
        patient = self.get_object()
        record_access(
            request,
            page=AccessedPage.API_PATIENT,
            record=f"patient #{patient.pk} ({patient.full_name})",
            patient=patient,
        )
        return Response(self.get_serializer(patient).data)

    @extend_schema(request=None, responses={201: PortalInviteSerializer})
    @action(detail=True, methods=["post"], url_path="portal-invite")
    def portal_invite(self, request, pk=None):
        """Email the patient a single-use, expiring link to set their portal password."""
        invitation = invite_patient(
            patient=self.get_object(), actor=Actor.staff(request.user, door=Door.API)
        )
        return Response(PortalInviteSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=SentMessageSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="messages")
    def messages(self, request, pk=None):
        """The communication log: every message sent to the patient (channel, recipient,
        subject, SHA-256 of the body, when, delivery status) and when they opened it in the
        portal, newest first."""
        patient = self.get_object()
        page = self.paginate_queryset(messages_for(patient=patient))
        return self.get_paginated_response(SentMessageSerializer(page, many=True).data)


class PatientSignedDocumentsView(generics.ListAPIView):
    """What the patient signed (consents, disclaimers, payment terms), newest first, with the
    exact text, its hash, when, from where, and the hash of the PDF stored at signing."""

    queryset = SignedDocument.objects.all()  # what the read permission is checked against
    serializer_class = SignedDocumentSerializer
    permission_classes = [ActionPermission]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator, no request
            return SignedDocument.objects.none()
        patient = get_object_or_404(Patient, pk=self.kwargs["patient_id"])
        record_access(
            self.request,
            page=AccessedPage.API_PATIENT,
            record=f"signed documents of patient #{patient.pk} ({patient.full_name})",
            patient=patient,
        )
        return signed_documents_of(patient).defer(None).defer("pdf", "signature_png")
