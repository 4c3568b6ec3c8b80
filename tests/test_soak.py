"""The soak (bench/soak.py) with small numbers: two gunicorn web processes, two Celery workers
(one SIGKILLed part-way) and two beats against PostgreSQL, Redis and the fake gateways with
faults switched on; every invariant must hold."""

import pytest

from bench.soak import SHORT, run_soak

pytestmark = [pytest.mark.soak, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_short_soak_across_processes_keeps_every_invariant(tmp_path):
    report = run_soak(SHORT, work_dir=tmp_path, out=lambda line: None)

    assert not report.broken, report.text
    assert "faults injected:" in report.text
    assert any(line.lstrip().startswith(("drop ", "slow ", "refuse ")) for line in report.lines), (
        report.text
    )
