"""Settings for the worker process the worker tests start: production settings with the clock
knobs turned down, so a crashed worker's lease and a webhook's backoff expire within a test."""

from emr.settings import *  # noqa: F403

WORKFLOW_RUN_LEASE_SECONDS = 2
WORKFLOW_RETRY_DELAYS = [0.5, 1.0]
# The tests' webhook receiver listens on loopback.
WORKFLOW_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
WORKFLOW_WEBHOOK_REQUIRE_HTTPS = False
