"""Beluga's staff API routes, included under /api/v1/ (a SimpleRouter: the API root view
belongs to emr/api_urls.py)."""

from rest_framework.routers import SimpleRouter

from integrations.beluga.api import BelugaLogViewSet, BelugaVisitViewSet

router = SimpleRouter()
router.register("beluga-visits", BelugaVisitViewSet)
router.register("beluga-logs", BelugaLogViewSet)

urlpatterns = router.urls
