"""Mounted under /api/v1/ by emr/api_urls.py: `path("", include("subscriptions.urls"))`.

A SimpleRouter: the project's DefaultRouter already serves the API root."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from subscriptions.api import PlanViewSet, SubscriptionViewSet
from subscriptions.intake_api import IntakeViewSet

router = SimpleRouter()
router.register("plans", PlanViewSet)
router.register("subscriptions", SubscriptionViewSet)
router.register("intakes", IntakeViewSet)

urlpatterns = [path("", include(router.urls))]
