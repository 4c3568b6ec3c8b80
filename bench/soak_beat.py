"""Celery beat for the soak (bench/soak.py): the production app and schedule (emr/celery.py),
every entry due every SOAK_BEAT_SECONDS instead of minutes, so the janitors and sweeps run many
times within a soak. Only beat uses this module; the workers run the production app.

    celery -A bench.soak_beat beat
"""

import os

from emr.celery import app

SECONDS = float(os.environ.get("SOAK_BEAT_SECONDS", "3"))

app.conf.beat_schedule = {
    name: {
        **entry,
        "schedule": SECONDS,
        # As in production: a sweep that could not start before the next one is due is dropped.
        "options": {**entry.get("options", {}), "expires": SECONDS},
    }
    for name, entry in app.conf.beat_schedule.items()
}
