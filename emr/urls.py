from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from billing.views import stripe_webhook
from emr.health import healthz
from integrations.beluga import webhooks as beluga_webhooks
from integrations.pharmacy import webhooks as pharmacy_webhooks

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("emr.api_urls")),
    path("patient/", include("emr.portal.urls")),
    path("webhooks/stripe/", stripe_webhook, name="stripe-webhook"),
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
