"""Production settings: the dev secret key is refused and `check --deploy` passes."""

import os
import subprocess
import sys

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "production-like-key-" + "x9" * 30,
    "ALLOWED_HOSTS": "billing.clinic.example",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/emr_billing",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # A clean environment: nothing a test fixture set (e.g. the browser tests' async flag).
    inherited = {"PATH", "HOME", "LANG", "VIRTUAL_ENV", "PYTHONPATH"}
    environment = {k: v for k, v in os.environ.items() if k in inherited} | env
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_the_dev_secret_key():
    result = _manage("check", **(PRODUCTION | {"SECRET_KEY": ""}))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_pass_the_deploy_check():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
