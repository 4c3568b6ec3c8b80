from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework.routers import DefaultRouter

from billing.api import (
    ActiveGatewayView,
    DisputeViewSet,
    OrderEvidencePacketView,
    PackageViewSet,
    PatientPaymentMethodsView,
    PayInvoiceView,
    RefundPolicyViewSet,
)
from emr.api import PatientSignedDocumentsView, PatientViewSet
from orders.api import OrderViewSet, ProductViewSet

router = DefaultRouter()
router.register("patients", PatientViewSet)
router.register("products", ProductViewSet)
router.register("orders", OrderViewSet)
router.register("refund-policies", RefundPolicyViewSet)
router.register("packages", PackageViewSet)
router.register("disputes", DisputeViewSet)

urlpatterns = [
    path("", include(router.urls)),
    path("", include("integrations.beluga.urls")),
    path("", include("integrations.pharmacy.urls")),
    path("", include("emr.workflows.urls")),
    path("", include("subscriptions.urls")),
    path("", include("emr.support.urls")),
    path(
        "patients/<int:patient_id>/payment-methods/",
        PatientPaymentMethodsView.as_view(),
        name="patient-payment-methods",
    ),
    path(
        "patients/<int:patient_id>/signed-documents/",
        PatientSignedDocumentsView.as_view(),
        name="patient-signed-documents",
    ),
    path(
        "orders/<int:order_id>/evidence-packet/",
        OrderEvidencePacketView.as_view(),
        name="order-evidence-packet",
    ),
    path("invoices/<int:invoice_id>/pay/", PayInvoiceView.as_view(), name="invoice-pay"),
    path("settings/active-gateway/", ActiveGatewayView.as_view(), name="active-gateway"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
