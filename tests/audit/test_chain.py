# ruff: noqa: S608  (the SQL names our own history table, never input)
"""Tamper evidence: history rows are sealed into one hash chain; a change, removal or insertion
made directly in PostgreSQL is named by `verify_audit_trail`, and the trigger refuses UPDATE and
DELETE on history tables."""

from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit import chain
from audit.models import ChainDigest, ChainLink
from emr.models import Patient
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

TABLE = Patient.history.model._meta.db_table


def verify() -> str:
    out = []
    call_command("verify_audit_trail", stdout=type("O", (), {"write": out.append})())
    return "".join(out)


def behind_the_apps_back(sql: str, params=()) -> None:
    """What someone with the database password could do: turn the trigger off, write, turn
    it back on."""
    with connection.cursor() as cursor:
        # Foreign keys are checked at commit; ALTER TABLE wants no check pending on the table.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {chain.TRIGGER}")
        cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {chain.TRIGGER}")


@pytest.fixture
def patients():
    """Three patients, one edited: four history rows, all sealed."""
    first, second, third = PatientFactory(), PatientFactory(), PatientFactory()
    second.phone = "+1 555 0199"
    second.save()
    chain.seal_pending()
    return first, second, third


def test_a_clean_trail_verifies_with_a_count(patients):
    PatientFactory()  # written after the last seal: the check seals it first
    out = verify()
    assert "Audit trail verified:" in out
    assert f"{ChainLink.objects.count()} history record(s) chained (1 sealed now)" in out


def test_history_tables_refuse_update_and_delete(patients):
    row = Patient.history.filter(id=patients[0].pk).first()
    for sql in (
        f"UPDATE {TABLE} SET email = 'x@example.com' WHERE history_id = %s",
        f"DELETE FROM {TABLE} WHERE history_id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="the audit trail is append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [row.history_id])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        ChainLink.objects.update(row_hash="0" * 64)


def test_an_update_behind_the_apps_back_is_named(patients):
    edited = Patient.history.filter(id=patients[1].pk).order_by("history_id").first()
    behind_the_apps_back(
        f"UPDATE {TABLE} SET email = 'someone-else@example.com' WHERE history_id = %s",
        [edited.history_id],
    )

    with pytest.raises(CommandError) as broken:
        verify()

    message = str(broken.value)
    assert f"{TABLE} history_id={edited.history_id} (patient {patients[1].pk})" in message
    assert "changed: the row no longer has the content sealed" in message


def test_a_delete_behind_the_apps_back_is_named(patients):
    gone = Patient.history.get(id=patients[2].pk)
    behind_the_apps_back(f"DELETE FROM {TABLE} WHERE history_id = %s", [gone.history_id])

    with pytest.raises(CommandError) as broken:
        verify()

    assert f"{TABLE} history_id={gone.history_id} (patient)" in str(broken.value)
    assert "removed: the sealed history row is gone" in str(broken.value)


def test_a_row_inserted_behind_sealed_ones_is_named(patients):
    columns = chain._columns(Patient.history.model)
    copied = ", ".join(
        {"history_id": "-7", "history_date": "%s"}.get(column, column) for column in columns
    )
    behind_the_apps_back(
        f"INSERT INTO {TABLE} ({', '.join(columns)}) SELECT {copied} FROM {TABLE} "
        "WHERE history_id = %s",
        [datetime(2026, 1, 5, tzinfo=UTC), Patient.history.get(id=patients[0].pk).history_id],
    )

    with pytest.raises(CommandError) as broken:
        verify()

    assert f"{TABLE} history_id=-7 (patient {patients[0].pk})" in str(broken.value)
    assert "inserted after sealing, out of order" in str(broken.value)


def test_the_daily_digest_is_written_where_an_auditor_reads_it(patients, settings, tmp_path):
    settings.AUDIT_DIGEST_DIR = tmp_path
    digest = chain.write_digest()
    head = ChainLink.objects.order_by("-sequence").first()

    line = (tmp_path / "chain-heads.log").read_text().strip()
    assert (
        line == f"{digest.taken_at.isoformat()} sequence={head.sequence} sha256={head.chain_hash}"
    )
    out = []
    call_command("verify_audit_trail", "--digest", stdout=type("O", (), {"write": out.append})())
    assert line in "".join(out)
    assert ChainDigest.objects.get().chain_hash == head.chain_hash
