"""Mounted under /api/v1/ by emr/api_urls.py: `path("", include("emr.support.urls"))`."""

from rest_framework.routers import SimpleRouter

from emr.support.api import EscalationViewSet

router = SimpleRouter()
router.register("escalations", EscalationViewSet, basename="escalation")

urlpatterns = router.urls
