from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from billing.views import nmi_webhook, stripe_webhook
from emr import staff_two_factor
from emr.health import healthz, readyz
from emr.metrics_view import metrics
from integrations.beluga import webhooks as beluga_webhooks
from integrations.pharmacy import webhooks as pharmacy_webhooks

# The admin's sign-in asks for the authenticator code of whoever has set one up.
admin.site.login_form = staff_two_factor.StaffSignInForm

# An API address that matches no pattern answers in the API's shape.
handler404 = "emr.kernel.api_errors.page_not_found"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/two-factor/", staff_two_factor.set_up, name=staff_two_factor.SETUP_URL_NAME),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include("emr.api_urls")),
    path("patient/", include("emr.portal.urls")),
    path("audit/dashboard/", include("audit.dashboard_urls")),
    path("audit/", include("audit.urls")),
    path("webhooks/stripe/", stripe_webhook, name="stripe-webhook"),
    path("webhooks/nmi/", nmi_webhook, name="nmi-webhook"),
    path("webhooks/beluga/", beluga_webhooks.receive, name="beluga-webhook"),
    path(
        "webhooks/dispensepro/", pharmacy_webhooks.receive_dispensepro, name="dispensepro-webhook"
    ),
    path(
        "webhooks/pharmacy-partner/",
        pharmacy_webhooks.receive_own_partner,
        name="pharmacy-partner-webhook",
    ),
]
