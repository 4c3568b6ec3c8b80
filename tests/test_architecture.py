"""The house rules a reviewer would otherwise check by hand (docs/architecture.md).

The layering itself is import-linter's job (`lint-imports`, contracts in pyproject.toml); these
tests keep what it cannot see: that every module has a place in the layers, that a
function-local import of our code says why, and that every domain event has its reactions in
the one table.
"""

import ast
import dataclasses
import importlib
import tomllib
from pathlib import Path

import pytest

from emr.reactions import REACTIONS

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("emr", "orders", "billing", "subscriptions", "integrations", "audit")


def project_modules():
    for path in sorted(ROOT.glob("*/**/*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] not in PROJECT or "migrations" in parts or "fakes" in parts:
            continue
        yield path, ".".join(parts)[: -len(".py")].removesuffix(".__init__")


def test_a_function_local_import_of_our_code_says_why():
    unexplained = []
    for path, module in project_modules():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    names = [inner.module or ""]
                elif isinstance(inner, ast.Import):
                    names = [alias.name for alias in inner.names]
                else:
                    continue
                if not any(name.split(".")[0] in PROJECT for name in names):
                    continue
                here, above = lines[inner.lineno - 1], lines[inner.lineno - 2].strip()
                if "#" not in here and not above.startswith("#"):
                    unexplained.append(f"{module}:{inner.lineno}")
    assert unexplained == []


def test_every_module_has_a_place_in_the_layers():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(
        contract
        for contract in config["tool"]["importlinter"]["contracts"]
        if contract["type"] == "layers" and "containers" not in contract
    )
    placed = [
        name.strip().strip("()")
        for layer in contract["layers"]
        for name in layer.replace("|", ":").split(":")
    ]
    unplaced = [
        module
        for _, module in project_modules()
        if not any(module == name or module.startswith(f"{name}.") for name in placed)
        and module not in ALLOWED_OUTSIDE_THE_LAYERS
        and not module.endswith((".apps", ".__init__"))
        and module not in PROJECT
        and module.count(".") > 0
    ]
    assert unplaced == []


# Django's wiring and packages that only hold other modules.
ALLOWED_OUTSIDE_THE_LAYERS = {
    "emr.settings",
    "emr.celery",
    "emr.wsgi",
    "emr.kernel",
    "integrations.beluga",
    "integrations.pharmacy",
    "integrations.gateways",
    "emr.workflows",
    "emr.support",
    "emr.portal",
}


def event_classes():
    for path, module in project_modules():
        if path.name != "events.py" or module.startswith("emr.kernel"):
            continue
        loaded = importlib.import_module(module)
        for value in vars(loaded).values():
            if dataclasses.is_dataclass(value) and value.__module__ == module:
                yield value


@pytest.mark.parametrize("event_type", list(event_classes()), ids=lambda cls: cls.__name__)
def test_every_domain_event_has_its_reactions_in_the_table(event_type):
    assert REACTIONS.get(event_type), f"{event_type.__name__} is published but nothing reacts"


def test_the_table_lists_only_published_events():
    assert set(REACTIONS) <= set(event_classes())


@pytest.mark.django_db
def test_every_history_table_is_append_only():
    # The trigger is installed after every migrate (audit.apps), so a history table added by a
    # later migration gets it too; this fails if one was created some other way.
    from audit.chain import append_only_tables, tables_without_trigger

    assert len(append_only_tables()) > 20
    assert tables_without_trigger() == []
