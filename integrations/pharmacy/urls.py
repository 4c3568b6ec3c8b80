"""Pharmacy's staff API routes, included under /api/v1/ (a SimpleRouter: the API root view
belongs to emr/api_urls.py)."""

from rest_framework.routers import SimpleRouter

from integrations.pharmacy.api import PharmacyOrderViewSet

router = SimpleRouter()
router.register("pharmacy-orders", PharmacyOrderViewSet)

urlpatterns = router.urls
