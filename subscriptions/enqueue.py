"""Hand subscription work to a worker after commit, without ever failing the caller.

The database is the source of truth: if the broker is down, the beat sweep
(`subscriptions.run_scheduled_changes`) finds the committed rows and runs them.
"""

import logging

logger = logging.getLogger(__name__)


def run_switch(switch_id: int) -> None:
    from subscriptions import tasks  # tasks are doors; loaded lazily, like the outbox's

    try:
        tasks.run_switch.delay(switch_id)
    except Exception:  # the broker's errors are many; the sweep recovers from all of them
        logger.exception("Could not enqueue plan switch %s; the beat sweep will run it.", switch_id)
