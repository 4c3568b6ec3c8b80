"""Tamper evidence: every history row is sealed into one hash chain, and the chain is checked.

Saving a record never waits for the chain: history rows are written as simple-history writes
them, and a sealer (`seal_pending`, beat every minute and at the start of every check) appends
a `ChainLink` for each row not yet sealed, under one advisory lock so two sealers never fork
the chain. A link holds the row's hash (SHA-256 of a stable JSON of all its columns) and the
chain hash, sha256(previous chain hash + row hash). `verify()` re-reads every sealed row and
re-computes the chain: a row changed, removed, or inserted behind the app's back, or a link
touched, breaks it at a named record. The digests of the chain's head (`write_digest`, daily)
pin it down, so rewriting the whole chain from some row on is caught too.

On PostgreSQL a trigger also makes every history table and the chain's own tables
append-only: UPDATE and DELETE raise. TRUNCATE (the test suite's flush) is not a row operation
and passes; the chain reports what it removed. There is no switch to turn the trigger off for
a session: a person who may ALTER the tables could also turn off such a switch, and the chain,
not the trigger, is the evidence.
"""

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from itertools import groupby

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from simple_history.models import HistoricalChanges

from audit.models import AccessLogEntry, ChainDigest, ChainLayout, ChainLink, DecisionRecord

GENESIS = "0" * 64
# pg_advisory_xact_lock key of the sealer ("audit" in ASCII): taken by sealers only.
SEAL_LOCK = 0x6175646974
TRIGGER = "audit_append_only"
BATCH = 2000


def history_models() -> list[type]:
    """Every historical model (simple-history's), by table name."""
    found = [model for model in apps.get_models() if issubclass(model, HistoricalChanges)]
    return sorted(found, key=lambda model: model._meta.db_table)


def append_only_tables() -> list[str]:
    own = [ChainLayout, ChainLink, ChainDigest, DecisionRecord, AccessLogEntry]
    return [model._meta.db_table for model in history_models() + own]


# --- Content and hashes ---------------------------------------------------------------------


def _plain(value):
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"No stable form for {type(value).__name__}")


def row_hash(table: str, columns: list[str], values) -> str:
    content = json.dumps(
        dict(zip(columns, values, strict=True)),
        sort_keys=True,
        separators=(",", ":"),
        default=_plain,
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{table}\n{content}".encode()).hexdigest()


def chain_hash(previous: str, row: str) -> str:
    return hashlib.sha256(f"{previous}{row}".encode()).hexdigest()


def _columns(model) -> list[str]:
    return sorted(field.column for field in model._meta.concrete_fields)


def _select(table: str, columns: list[str]) -> str:
    # Names of our own tables and columns, quoted; never input (the noqa: S608 below).
    quote = connection.ops.quote_name
    return f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)}"  # noqa: S608


# --- Sealing --------------------------------------------------------------------------------


def seal_pending() -> int:
    """Seal every history row not yet in the chain; returns how many were sealed."""
    sealed = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK])
            count = _seal_batch()
        sealed += count
        if count == 0:
            return sealed


def _seal_batch() -> int:
    """Up to BATCH unsealed rows of each table, in (table, history id) order.

    A table's rows are taken lowest id first, so the highest sealed id passes only sealed rows,
    except a row whose transaction committed after a later one's: its time is recent, and the
    grace window still finds it. A row older than that below the highest sealed id was not
    written by the app as it runs: `verify` reports it.
    """
    head = ChainLink.objects.order_by("-sequence").first()
    sequence, previous = (head.sequence, head.chain_hash) if head else (0, GENESIS)
    since = timezone.now() - datetime.timedelta(seconds=settings.AUDIT_CHAIN_GRACE_SECONDS)
    now, links = timezone.now(), []
    for model in history_models():
        table, columns = model._meta.db_table, _columns(model)
        layout = _layout(table, columns)
        # One table at a time: the (table, history id) index answers it without a scan.
        highest = ChainLink.objects.filter(table_name=table).aggregate(top=Max("history_id"))
        rows = _unsealed_rows(
            table,
            columns,
            recent=" AND (h.history_id > %s OR h.history_date >= %s)",
            params=[highest["top"] or 0, since],
            limit=BATCH,
        )
        at = columns.index("history_id")
        for values in rows:
            row = row_hash(table, columns, values)
            sequence += 1
            previous = chain_hash(previous, row)
            links.append(
                ChainLink(
                    sequence=sequence,
                    table_name=table,
                    history_id=values[at],
                    layout=layout,
                    row_hash=row,
                    chain_hash=previous,
                    sealed_at=now,
                )
            )
    ChainLink.objects.bulk_create(links)
    return len(links)


def _unsealed_rows(table: str, columns: list[str], *, recent="", params=(), limit: int):
    links = connection.ops.quote_name(ChainLink._meta.db_table)
    sql = (
        f"{_select(table, columns)} AS h WHERE NOT EXISTS (SELECT 1 FROM {links} c"  # noqa: S608
        f" WHERE c.table_name = %s AND c.history_id = h.history_id){recent}"
        " ORDER BY h.history_id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [table, *params, limit])
        return cursor.fetchall()


def _layout(table: str, columns: list[str]) -> ChainLayout:
    digest = hashlib.sha256(json.dumps([table, columns]).encode()).hexdigest()
    layout, _ = ChainLayout.objects.get_or_create(
        digest=digest, defaults={"table_name": table, "columns": columns}
    )
    return layout


# --- Verifying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """The first record where the chain does not hold."""

    table: str
    history_id: int | None
    record: str  # the object the history row is about, e.g. "order 12 (ORD-000012)"
    problem: str  # changed, removed, inserted after sealing out of order, link …

    def __str__(self) -> str:
        where = f"{self.table} history_id={self.history_id}" if self.history_id else self.table
        return f"{where} ({self.record}): {self.problem}"


@dataclass(frozen=True)
class Verdict:
    sealed: int  # rows sealed by this check before verifying
    checked: int  # links re-computed
    broken: Break | None


def verify() -> Verdict:
    """Seal what is pending, then re-compute the whole chain and every recorded digest."""
    sealed = seal_pending()
    models = {model._meta.db_table: model for model in history_models()}
    layouts = {layout.pk: layout.columns for layout in ChainLayout.objects.all()}
    checked, expected, previous = 0, 1, GENESIS
    links = ChainLink.objects.order_by("sequence").iterator(chunk_size=BATCH)
    while chunk := [link for _, link in zip(range(BATCH), links, strict=False)]:
        rows = _rows_of(chunk, layouts)
        for link in chunk:
            broken = _check_link(link, expected, previous, rows, layouts, models)
            if broken:
                return Verdict(sealed, checked, broken)
            checked, expected, previous = checked + 1, link.sequence + 1, link.chain_hash
    broken = _check_digests() or _unsealed_row(models)
    return Verdict(sealed, checked, broken)


def _rows_of(chunk: list[ChainLink], layouts) -> dict[tuple[str, int], tuple]:
    found = {}
    for (table, layout), links in groupby(
        sorted(chunk, key=lambda link: (link.table_name, link.layout_id, link.history_id)),
        key=lambda link: (link.table_name, link.layout_id),
    ):
        columns = layouts[layout]
        ids = [link.history_id for link in links]
        at = columns.index("history_id")
        marks = ", ".join(["%s"] * len(ids))
        with connection.cursor() as cursor:
            cursor.execute(f"{_select(table, columns)} WHERE history_id IN ({marks})", ids)
            for values in cursor.fetchall():
                found[(table, values[at])] = values
    return found


def _check_link(link, expected, previous, rows, layouts, models) -> Break | None:
    record = _describe(
        link.table_name,
        rows.get((link.table_name, link.history_id)),
        layouts[link.layout_id],
        models,
    )
    if link.sequence != expected:
        return Break(
            link.table_name,
            link.history_id,
            record,
            f"chain link {expected} is missing (the next one is {link.sequence}): a link was "
            "removed",
        )
    if chain_hash(previous, link.row_hash) != link.chain_hash:
        return Break(
            link.table_name,
            link.history_id,
            record,
            f"chain link {link.sequence} was altered: its hashes do not follow from the one before",
        )
    values = rows.get((link.table_name, link.history_id))
    if values is None:
        return Break(
            link.table_name, link.history_id, record, "removed: the sealed history row is gone"
        )
    if row_hash(link.table_name, layouts[link.layout_id], values) != link.row_hash:
        return Break(
            link.table_name,
            link.history_id,
            record,
            f"changed: the row no longer has the content sealed at link {link.sequence} "
            f"({link.sealed_at:%Y-%m-%d %H:%M} UTC)",
        )
    return None


def _describe(table: str, values, columns, models) -> str:
    model = models.get(table)
    name = model.instance_type._meta.verbose_name if model else table
    if values is None:
        return name
    row = dict(zip(columns, values, strict=True))
    number = row.get("number")
    return f"{name} {row.get('id')}" + (f" ({number})" if number else "")


def _check_digests() -> Break | None:
    hashes = dict(ChainLink.objects.values_list("sequence", "chain_hash"))
    for digest in ChainDigest.objects.order_by("sequence"):
        if digest.sequence and hashes.get(digest.sequence) != digest.chain_hash:
            return Break(
                ChainLink._meta.db_table,
                None,
                f"digest of {digest.taken_at:%Y-%m-%d %H:%M} UTC",
                f"the chain no longer passes through link {digest.sequence} with hash "
                f"{digest.chain_hash}: it was rewritten after that digest",
            )
    return None


def _unsealed_row(models) -> Break | None:
    """A row the sealer did not take: older than the grace window yet below sealed ids."""
    for table, model in models.items():
        columns = _columns(model)
        found = _unsealed_rows(table, columns, limit=1)
        values = found[0] if found else None
        if values is not None:
            row = dict(zip(columns, values, strict=True))
            return Break(
                table,
                row["history_id"],
                _describe(table, values, columns, models),
                f"inserted after sealing, out of order: dated {row['history_date']}, below rows "
                "already sealed, so not written by the app",
            )
    return None


# --- Digests --------------------------------------------------------------------------------


def write_digest() -> ChainDigest:
    """Seal, then record the chain's head: a row, and a line appended to a file under
    AUDIT_DIGEST_DIR that an auditor copies away and later compares."""
    seal_pending()
    head = ChainLink.objects.order_by("-sequence").first()
    digest = ChainDigest.objects.create(
        sequence=head.sequence if head else 0,
        chain_hash=head.chain_hash if head else GENESIS,
        taken_at=timezone.now(),
    )
    folder = settings.AUDIT_DIGEST_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "chain-heads.log").open("a") as log:
        log.write(digest_line(digest) + "\n")
    return digest


def digest_line(digest: ChainDigest) -> str:
    return f"{digest.taken_at.isoformat()} sequence={digest.sequence} sha256={digest.chain_hash}"


# --- The append-only trigger (PostgreSQL) ----------------------------------------------------

TRIGGER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %: the audit trail is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def install_append_only_triggers(using=connection) -> None:
    """Make every history table and the chain's tables append-only; safe to run again (after
    each migrate, so a history table added later gets it too)."""
    if using.vendor != "postgresql":
        return
    existing = set(using.introspection.table_names())
    quote = using.ops.quote_name
    with using.cursor() as cursor:
        cursor.execute(TRIGGER_FUNCTION)
        for table in append_only_tables():
            if table in existing:
                cursor.execute(
                    f"CREATE OR REPLACE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON "
                    f"{quote(table)} FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
                )


def tables_without_trigger(using=connection) -> list[str]:
    """Append-only tables that lack the trigger (always none off PostgreSQL)."""
    if using.vendor != "postgresql":
        return []
    with using.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s AND t.tgenabled <> 'D'",
            [TRIGGER],
        )
        protected = {name for (name,) in cursor.fetchall()}
    return [table for table in append_only_tables() if table not in protected]
