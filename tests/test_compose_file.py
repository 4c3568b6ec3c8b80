"""docker-compose.yml is a valid Compose file (the specification's JSON schema, vendored in
deploy/) after the interpolation `docker compose` does, and runs N web and N worker processes
with exactly one beat."""

from __future__ import annotations

import json
import re
import shlex

import jsonschema
import pytest
import yaml

from tests.fixtures.servers import PROJECT_ROOT

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a dollar.
VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
ENVIRONMENT = {"SECRET_KEY": "set-by-the-operator"}


def interpolate(value, env):
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match):
        if match.group() == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        given = env.get(name)
        missing = not given if op and op.startswith(":") else given is None
        if op and missing:
            if op.endswith("?"):
                raise KeyError(f"{name}: {arg}")
            return arg
        return given or ""

    return VARIABLE.sub(substitute, value)


def validator(schema) -> jsonschema.Draft201909Validator:
    # The schema names draft 2019-09 with an address jsonschema does not know by that spelling.
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


@pytest.fixture(scope="module")
def schema():
    return json.loads((PROJECT_ROOT / "deploy" / "compose-spec.json").read_text())


@pytest.fixture(scope="module")
def compose():
    return interpolate(
        yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text()), ENVIRONMENT
    )


def test_docker_compose_yml_follows_the_compose_specification(schema, compose):
    errors = [
        f"{error.json_path}: {error.message}" for error in validator(schema).iter_errors(compose)
    ]
    assert errors == []
    mistyped = {**compose, "services": {**compose["services"], "web": {"replica": 2}}}
    assert not validator(schema).is_valid(mistyped)


def test_it_runs_several_web_and_worker_processes_and_one_beat(compose):
    services = compose["services"]
    commands = {
        name: shlex.split(str(service.get("command", ""))) for name, service in services.items()
    }
    beats = [name for name, argv in commands.items() if "beat" in argv or "-B" in argv]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["web"]["deploy"]["replicas"] >= 2
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "--beat" not in commands["worker"]
    # Replicas cannot share one host port: each takes one from a range.
    assert all("-" in port.split(":")[0] for port in services["web"]["ports"])
    # Every process that counts shares the metrics directory any web process sums up.
    for name in ("web", "worker", "beat"):
        directory = services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert any(volume.endswith(f":{directory}") for volume in services[name]["volumes"])
