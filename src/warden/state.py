"""The state store: one embedded SQLite database (sessions, key/value, audit trail).

Every SQL statement warden runs lives in this module, behind the small `_exec`/`_rows`
wrappers, so a second dialect (PostgreSQL) can be added later without touching callers.
Placeholders are `?`.

Concurrency model: connections run in autocommit mode (`isolation_level=None`); every write
that reads before it writes runs inside `Store.transaction()`, which starts with
`BEGIN IMMEDIATE` and so takes the database's write lock up front. Two warden processes can
therefore never interleave a check and a write. `busy_timeout` makes waiting writers queue
for up to 30 s, and the rare immediate SQLITE_BUSY is retried with backoff, so "database is
locked" never reaches the user under normal contention.

Migrations: `MIGRATIONS` is an ordered list of `(version, sql)`; `PRAGMA user_version` holds
the version applied. To add tables, APPEND a tuple with the next version number to the list in
this module (never edit or reorder an applied one). Every process must know every migration,
whatever else it imported, which is why they live here and not in the modules that use them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress

from warden._record import dataclass
from warden.errors import StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

__all__ = [
    "MIGRATIONS",
    "AuditRow",
    "Event",
    "SessionInfo",
    "StateError",
    "Store",
    "open_store",
]

if TYPE_CHECKING:
    T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
_RETRIES = 6
_RETRY_BASE_S = 0.01
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            ts REAL NOT NULL,
            event TEXT NOT NULL,
            tool TEXT,
            data TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS events_session_ts ON events (session_id, ts);
        CREATE TABLE IF NOT EXISTS kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated REAL NOT NULL,
            updated_by TEXT
        );
        CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            actor TEXT NOT NULL,
            kind TEXT NOT NULL,
            action TEXT,
            record TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS audit_prev_hash ON audit (prev_hash);
        CREATE UNIQUE INDEX IF NOT EXISTS audit_hash ON audit (hash);
        CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN
            SELECT RAISE(ABORT, 'the audit trail is append-only');
        END;
        CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN
            SELECT RAISE(ABORT, 'the audit trail is append-only');
        END;
        """,
    ),
    (
        2,
        """
        CREATE TABLE IF NOT EXISTS executions (
            id TEXT PRIMARY KEY,
            action TEXT NOT NULL,
            action_hash TEXT NOT NULL,
            plan_hash TEXT NOT NULL,
            params TEXT NOT NULL,
            params_key TEXT NOT NULL,
            status TEXT NOT NULL,
            exit_code INTEGER,
            actor TEXT NOT NULL,
            proposal_id TEXT,
            idem_key TEXT,
            rate_keys TEXT NOT NULL DEFAULT '[]',
            started REAL NOT NULL,
            ended REAL,
            pid INTEGER,
            pid_start TEXT,
            root TEXT NOT NULL DEFAULT '',
            reasons TEXT NOT NULL DEFAULT '[]',
            gates TEXT NOT NULL DEFAULT '[]',
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX IF NOT EXISTS executions_action_started ON executions (action, started);
        CREATE INDEX IF NOT EXISTS executions_status ON executions (status);
        CREATE TABLE IF NOT EXISTS execution_steps (
            execution_id TEXT NOT NULL REFERENCES executions (id),
            idx INTEGER NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            started REAL,
            ended REAL,
            duration_ms REAL,
            exit_code INTEGER,
            stdout TEXT NOT NULL DEFAULT '',
            stderr TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            snapshots TEXT NOT NULL DEFAULT '[]',
            undo TEXT NOT NULL DEFAULT '{}',
            child TEXT NOT NULL DEFAULT '{}',
            rollback TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (execution_id, idx)
        );
        CREATE TABLE IF NOT EXISTS rate_slots (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            ts REAL NOT NULL,
            execution_id TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS rate_slots_key_ts ON rate_slots (key, ts);
        CREATE TABLE IF NOT EXISTS idem_claims (
            key TEXT PRIMARY KEY,
            execution_id TEXT NOT NULL,
            ts REAL NOT NULL
        );
        CREATE TABLE IF NOT EXISTS proposals (
            id TEXT PRIMARY KEY,
            action TEXT NOT NULL,
            action_hash TEXT NOT NULL,
            plan_hash TEXT NOT NULL,
            params TEXT NOT NULL,
            params_key TEXT NOT NULL,
            proposer TEXT NOT NULL,
            status TEXT NOT NULL,
            required INTEGER NOT NULL DEFAULT 1,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            dry_run_id TEXT,
            execution_id TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX IF NOT EXISTS proposals_action ON proposals (action, params_key, status);
        CREATE TABLE IF NOT EXISTS approvals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            proposal_id TEXT NOT NULL REFERENCES proposals (id),
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            ts REAL NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            action_hash TEXT NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS approvals_once
            ON approvals (proposal_id, actor) WHERE kind = 'approve';
        CREATE TABLE IF NOT EXISTS dry_runs (
            id TEXT PRIMARY KEY,
            action TEXT NOT NULL,
            params_key TEXT NOT NULL,
            action_hash TEXT NOT NULL,
            plan_hash TEXT NOT NULL,
            ts REAL NOT NULL,
            actor TEXT NOT NULL,
            ok INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX IF NOT EXISTS dry_runs_lookup ON dry_runs (action, params_key, ts);
        """,
    ),
]


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded event of an agent session."""

    id: int
    session_id: str
    ts: float
    event: str
    tool: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Summary of one session's recorded events."""

    session_id: str
    events: int
    first_ts: float
    last_ts: float


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One raw row of the audit table (`record` still JSON text)."""

    seq: int
    ts: float
    actor: str
    kind: str
    action: str | None
    record: str
    prev_hash: str
    hash: str


def dumps(value: Any) -> str:
    """Compact JSON as stored in the database (keys sorted, UTF-8 kept)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise StateError(f"cannot store value: not JSON-serialisable ({exc})") from exc
    return text


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StateError(f"state database holds invalid JSON: {exc}") from exc


EXECUTION_COLUMNS = (
    "id",
    "action",
    "action_hash",
    "plan_hash",
    "params",
    "params_key",
    "status",
    "exit_code",
    "actor",
    "proposal_id",
    "idem_key",
    "rate_keys",
    "started",
    "ended",
    "pid",
    "pid_start",
    "root",
    "reasons",
    "gates",
    "detail",
)
STEP_COLUMNS = (
    "execution_id",
    "idx",
    "name",
    "kind",
    "status",
    "started",
    "ended",
    "duration_ms",
    "exit_code",
    "stdout",
    "stderr",
    "detail",
    "snapshots",
    "undo",
    "child",
    "rollback",
)
PROPOSAL_COLUMNS = (
    "id",
    "action",
    "action_hash",
    "plan_hash",
    "params",
    "params_key",
    "proposer",
    "status",
    "required",
    "created",
    "updated",
    "note",
    "dry_run_id",
    "execution_id",
    "detail",
)
APPROVAL_COLUMNS = ("id", "proposal_id", "kind", "actor", "ts", "note", "action_hash")
DRY_RUN_COLUMNS = (
    "id",
    "action",
    "params_key",
    "action_hash",
    "plan_hash",
    "ts",
    "actor",
    "ok",
    "detail",
)
_JSON_COLUMNS = {
    "executions": frozenset({"params", "rate_keys", "reasons", "gates", "detail"}),
    "execution_steps": frozenset({"snapshots", "undo", "child", "rollback"}),
    "proposals": frozenset({"params", "detail"}),
    "dry_runs": frozenset({"detail"}),
}


def _encode(table: str, column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS.get(table, ()):
        return dumps(value)
    if isinstance(value, bool):  # sqlite3 stores booleans as 0/1; PostgreSQL needs the int
        return int(value)
    return value


def _decode(table: str, column: str, value: Any) -> Any:
    if value is not None and column in _JSON_COLUMNS.get(table, ()):
        return _loads(value)
    return value


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _retry_delay(attempt: int) -> float:
    jitter = (time.perf_counter_ns() % 1000) / 1000.0
    return float(_RETRY_BASE_S * (2**attempt) * (1.0 + jitter))


class SqlMethods:
    """The store methods whose SQL is the same on SQLite and PostgreSQL (placeholders are
    written ``?``; ``PgStore`` turns them into ``%s``). ``Store`` and ``state_pg.PgStore``
    supply ``_exec``, ``_rows`` and ``transaction``."""

    location: str
    ORDER = "rowid"  # insertion order, for "newest first" ties (PostgreSQL: an ord column)
    _depth: int  # savepoints open inside the current transaction

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        """A nested transaction: its failure undoes only what it did."""
        name = f"warden_sp{self._depth}"
        self._depth += 1
        try:
            self._exec(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                self._exec(f"ROLLBACK TO SAVEPOINT {name}")
                self._exec(f"RELEASE SAVEPOINT {name}")
                raise
            self._exec(f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _check_version(self, current: int, target: int) -> int:
        if current > target:
            raise StateError(
                f"state database {self.location} has schema version {current}, newer than "
                f"this warden supports ({target}); upgrade warden"
            )
        return current

    def sessions(self) -> list[SessionInfo]:
        """Every session with events, least recently active first."""
        rows = self._rows(
            "SELECT session_id, COUNT(*), MIN(ts), MAX(ts) FROM events"
            " GROUP BY session_id ORDER BY MAX(ts), session_id"
        )
        return [SessionInfo(r[0], int(r[1]), float(r[2]), float(r[3])) for r in rows]

    def clear_session(self, session_id: str) -> int:
        """Delete every event of one session. Returns the number of events deleted."""
        return int(self._exec("DELETE FROM events WHERE session_id = ?", (session_id,)).rowcount)

    def prune(self, older_than_s: float, now: float | None = None) -> int:
        """Delete the events of sessions whose last event is older than `older_than_s`."""
        cutoff = (time.time() if now is None else float(now)) - float(older_than_s)
        cursor = self._exec(
            "DELETE FROM events WHERE session_id IN"
            " (SELECT session_id FROM events GROUP BY session_id HAVING MAX(ts) < ?)",
            (cutoff,),
        )
        return int(cursor.rowcount)

    def get(self, key: str) -> Any | None:
        """The JSON value stored under `key`, or None."""
        rows = self._rows("SELECT value FROM kv WHERE key = ?", (key,))
        return _loads(rows[0][0]) if rows else None

    def get_meta(self, key: str) -> tuple[Any, float, str | None] | None:
        """(value, updated, updated_by) of `key`, or None when unset."""
        rows = self._rows("SELECT value, updated, updated_by FROM kv WHERE key = ?", (key,))
        if not rows:
            return None
        return _loads(rows[0][0]), float(rows[0][1]), rows[0][2]

    def put(self, key: str, value: Any, by: str | None = None) -> None:
        """Store a JSON value under `key` (insert or replace), noting when and by whom."""
        self._exec(
            "INSERT INTO kv (key, value, updated, updated_by) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated = excluded.updated, updated_by = excluded.updated_by",
            (key, dumps(value), time.time(), by),
        )

    def audit_insert(self, row: AuditRow) -> None:
        """Insert one audit row with its explicit seq (call inside a transaction)."""
        self._exec(
            "INSERT INTO audit (seq, ts, actor, kind, action, record, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.seq, row.ts, row.actor, row.kind, row.action, row.record, row.prev_hash, row.hash),
        )

    def _insert(self, table: str, columns: tuple[str, ...], row: dict[str, Any]) -> None:
        unknown = set(row) - set(columns)
        if unknown:
            raise StateError(f"unknown {table} column(s): {', '.join(sorted(unknown))}")
        names = [c for c in columns if c in row]
        values = [_encode(table, c, row[c]) for c in names]
        self._exec(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            values,
        )

    def _update(
        self,
        table: str,
        columns: tuple[str, ...],
        where: str,
        key: Sequence[Any],
        fields: dict[str, Any],
    ) -> int:
        unknown = set(fields) - set(columns)
        if unknown:
            raise StateError(f"unknown {table} column(s): {', '.join(sorted(unknown))}")
        if not fields:
            return 0
        names = list(fields)
        sql = f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in names)} WHERE {where}"
        values = [_encode(table, c, fields[c]) for c in names]
        return int(self._exec(sql, [*values, *key]).rowcount)

    def _select(
        self,
        table: str,
        columns: tuple[str, ...],
        where: str = "1 = 1",
        params: Sequence[Any] = (),
        tail: str = "",
    ) -> list[dict[str, Any]]:
        rows = self._rows(f"SELECT {', '.join(columns)} FROM {table} WHERE {where} {tail}", params)
        return [{c: _decode(table, c, v) for c, v in zip(columns, r, strict=True)} for r in rows]

    def execution_insert(self, row: dict[str, Any]) -> None:
        """Journal one execution (or aborted attempt); `row` keys are executions columns."""
        self._insert("executions", EXECUTION_COLUMNS, row)

    def _set_status(
        self,
        table: str,
        columns: tuple[str, ...],
        row_id: str,
        expected: Sequence[str],
        fields: dict[str, Any],
    ) -> bool:
        """Update one row only while its status is one of `expected` (compare-and-set)."""
        marks = ", ".join("?" for _ in expected)
        where = f"id = ? AND status IN ({marks})"
        return self._update(table, columns, where, (row_id, *expected), fields) > 0

    def execution_update(self, execution_id: str, **fields: Any) -> int:
        """Update columns of one execution. Returns the number of rows changed (0 or 1)."""
        return self._update("executions", EXECUTION_COLUMNS, "id = ?", (execution_id,), fields)

    def execution_set_status(
        self, execution_id: str, expected: Sequence[str], **fields: Any
    ) -> bool:
        """Update an execution only while its status is one of `expected` (compare-and-set)."""
        return self._set_status("executions", EXECUTION_COLUMNS, execution_id, expected, fields)

    def execution_get(self, execution_id: str) -> dict[str, Any] | None:
        """One execution row, or None."""
        rows = self._select("executions", EXECUTION_COLUMNS, "id = ?", (execution_id,))
        return rows[0] if rows else None

    def step_insert(self, row: dict[str, Any]) -> None:
        """Journal one step of an execution (`execution_id`, `idx` and the other columns)."""
        self._insert("execution_steps", STEP_COLUMNS, row)

    def step_update(self, execution_id: str, idx: int, **fields: Any) -> int:
        """Update columns of one step."""
        return self._update(
            "execution_steps",
            STEP_COLUMNS,
            "execution_id = ? AND idx = ?",
            (execution_id, int(idx)),
            fields,
        )

    def steps(self, execution_id: str) -> list[dict[str, Any]]:
        """The journalled steps of one execution, in order."""
        return self._select(
            "execution_steps", STEP_COLUMNS, "execution_id = ?", (execution_id,), "ORDER BY idx"
        )

    def rate_count(self, key: str, since: float) -> int:
        """Rate-limit slots taken for `key` at or after `since`."""
        rows = self._rows(
            "SELECT COUNT(*) FROM rate_slots WHERE key = ? AND ts >= ?", (key, float(since))
        )
        return int(rows[0][0])

    def rate_oldest(self, key: str, since: float) -> float | None:
        """Time of the oldest slot for `key` still inside the window (when one frees up)."""
        rows = self._rows(
            "SELECT MIN(ts) FROM rate_slots WHERE key = ? AND ts >= ?", (key, float(since))
        )
        return None if rows[0][0] is None else float(rows[0][0])

    def idem_get(self, key: str) -> dict[str, Any] | None:
        """The claim on an idempotency key: {key, execution_id, ts}, or None."""
        rows = self._select("idem_claims", ("key", "execution_id", "ts"), "key = ?", (key,))
        return rows[0] if rows else None

    def idem_put(self, key: str, execution_id: str, ts: float) -> None:
        """Claim (or re-claim) an idempotency key for an execution."""
        self._exec(
            "INSERT INTO idem_claims (key, execution_id, ts) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET execution_id = excluded.execution_id,"
            " ts = excluded.ts",
            (key, execution_id, float(ts)),
        )

    def proposal_insert(self, row: dict[str, Any]) -> None:
        """Store one proposal."""
        self._insert("proposals", PROPOSAL_COLUMNS, row)

    def proposal_update(self, proposal_id: str, **fields: Any) -> int:
        """Update columns of one proposal."""
        return self._update("proposals", PROPOSAL_COLUMNS, "id = ?", (proposal_id,), fields)

    def proposal_set_status(self, proposal_id: str, expected: Sequence[str], **fields: Any) -> bool:
        """Update a proposal only while its status is one of `expected` (compare-and-set)."""
        return self._set_status("proposals", PROPOSAL_COLUMNS, proposal_id, expected, fields)

    def proposal_get(self, proposal_id: str) -> dict[str, Any] | None:
        """One proposal, or None."""
        rows = self._select("proposals", PROPOSAL_COLUMNS, "id = ?", (proposal_id,))
        return rows[0] if rows else None

    def approvals(self, proposal_id: str) -> list[dict[str, Any]]:
        """Approvals and rejections of one proposal, oldest first."""
        return self._select(
            "approvals", APPROVAL_COLUMNS, "proposal_id = ?", (proposal_id,), "ORDER BY id"
        )

    def dry_run_insert(self, row: dict[str, Any]) -> None:
        """Record one dry run."""
        self._insert("dry_runs", DRY_RUN_COLUMNS, row)

    def dry_run_get(self, dry_run_id: str) -> dict[str, Any] | None:
        """One dry run, or None."""
        rows = self._select("dry_runs", DRY_RUN_COLUMNS, "id = ?", (dry_run_id,))
        return rows[0] if rows else None

    def dry_runs(
        self, action: str, params_key: str, *, ok: bool = True, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Recent dry runs of an action with these params, newest first."""
        return self._select(
            "dry_runs",
            DRY_RUN_COLUMNS,
            "action = ? AND params_key = ? AND ok = ?",
            (action, params_key, 1 if ok else 0, int(limit)),
            f"ORDER BY ts DESC, {self.ORDER} DESC LIMIT ?",
        )


class Store(SqlMethods):
    """An open state store. Use `open_store()` to create one; close it (or use `with`)."""

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self._conn = conn
        self.location = location
        self._depth = 0
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------

    def _fail(self, exc: sqlite3.Error, doing: str) -> StateError:
        return StateError(f"state database {self.location}: {doing} failed: {exc}")

    def _retry(self, op: Callable[[], T], doing: str) -> T:
        """Run `op`, retrying briefly when SQLite reports the database busy or locked."""
        for attempt in range(_RETRIES + 1):
            try:
                return op()
            except sqlite3.Error as exc:
                retry = _is_busy(exc) and attempt < _RETRIES and not self._conn.in_transaction
                if not retry:
                    raise self._fail(exc, doing) from exc
            time.sleep(_retry_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Execute one statement (retried when busy outside a transaction)."""
        return self._retry(lambda: self._conn.execute(sql, params), sql.split(None, 1)[0])

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Execute one query and return all its rows."""
        return self._retry(lambda: self._conn.execute(sql, params).fetchall(), "query")

    def _iter(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Execute one query and stream its rows (one consistent snapshot)."""
        cursor = self._exec(sql, params)
        try:
            yield from cursor
        except sqlite3.Error as exc:
            raise self._fail(exc, "query") from exc
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """A write transaction: `BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on any exception.

        Nested use joins the outer transaction through a SAVEPOINT, so a helper that opens its
        own transaction (such as `audit.append`) commits together with its caller's writes.
        """
        if self._conn.in_transaction:
            with self._savepoint():
                yield self
            return
        self._exec("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self._rollback()
            raise
        try:
            self._exec("COMMIT")
        except StateError:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open on this store's connection."""
        return self._conn.in_transaction

    # -- schema -----------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The migration version the database is at (`PRAGMA user_version`)."""
        row = self._rows("PRAGMA user_version")[0]
        return int(row[0])

    def migrate(self) -> int:
        """Apply pending `MIGRATIONS` in one transaction; idempotent. Returns the version."""
        target = latest_version()
        current = self.schema_version()
        if current == target:
            return current
        with self.transaction():
            current = self._check_version(self.schema_version(), target)
            for version, sql in sorted(MIGRATIONS):
                if version > current:
                    for statement in _split_sql(sql):
                        self._exec(statement)
                    self._exec(f"PRAGMA user_version = {int(version)}")
        return target

    def _configure(self) -> None:
        self._exec(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = self._rows("PRAGMA journal_mode")[0][0]
        if str(mode).lower() not in ("wal", "memory"):
            self._rows("PRAGMA journal_mode = WAL")
        self._exec("PRAGMA synchronous = NORMAL")
        self._exec("PRAGMA foreign_keys = ON")

    # -- sessions ---------------------------------------------------------------------------

    def record_event(
        self,
        session_id: str,
        event: str,
        tool: str | None,
        data: dict[str, Any],
        ts: float | None = None,
    ) -> int:
        """Record one event of a session; `data` is the whole input. Returns the event id."""
        when = time.time() if ts is None else float(ts)
        cursor = self._exec(
            "INSERT INTO events (session_id, ts, event, tool, data) VALUES (?, ?, ?, ?, ?)",
            (session_id, when, event, tool, dumps(data)),
        )
        return int(cursor.lastrowid or 0)

    def session_events(self, session_id: str, *, since_ts: float | None = None) -> list[Event]:
        """The session's events ordered by (ts, id); `since_ts` keeps those with ts >= it."""
        sql = "SELECT id, session_id, ts, event, tool, data FROM events WHERE session_id = ?"
        params: list[Any] = [session_id]
        if since_ts is not None:
            sql += " AND ts >= ?"
            params.append(float(since_ts))
        rows = self._rows(sql + " ORDER BY ts, id", params)
        return [Event(r[0], r[1], r[2], r[3], r[4], _loads(r[5])) for r in rows]

    # -- key/value --------------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Remove `key`. Returns whether it existed."""
        return self._exec("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0

    # -- audit table (the chain logic lives in warden.audit) --------------------------------

    def audit_tail(self) -> tuple[int, str] | None:
        """(seq, hash) of the last audit row, or None when the trail is empty."""
        rows = self._rows("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def audit_rows(self) -> Iterator[AuditRow]:
        """Every audit row in seq order, streamed."""
        sql = "SELECT seq, ts, actor, kind, action, record, prev_hash, hash FROM audit ORDER BY seq"
        for r in self._iter(sql):
            yield AuditRow(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])

    # -- guarded actions: executions, steps, claims, proposals, dry runs ---------------------
    # Rows are plain dicts; the JSON columns listed in `_JSON_COLUMNS` are encoded and decoded
    # here. Column names come only from the fixed tuples below, never from callers' strings.

    def executions(
        self,
        *,
        action: str | None = None,
        statuses: Sequence[str] | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Executions, newest first, filtered by action, status and start time."""
        where, params = ["1"], []  # type: list[str], list[Any]
        if action is not None:
            where.append("action = ?")
            params.append(action)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if since is not None:
            where.append("started >= ?")
            params.append(float(since))
        tail = "ORDER BY started DESC, rowid DESC"
        if limit is not None:
            tail += " LIMIT ?"
            params.append(int(limit))
        return self._select("executions", EXECUTION_COLUMNS, " AND ".join(where), params, tail)

    def rate_take(self, key: str, ts: float, execution_id: str, keep_s: float = 0) -> None:
        """Take one rate-limit slot (call inside the transaction that checked the count);
        with ``keep_s``, this key's slots older than that are deleted (no window sees them)."""
        self._exec(
            "INSERT INTO rate_slots (key, ts, execution_id) VALUES (?, ?, ?)",
            (key, float(ts), execution_id),
        )
        if keep_s > 0:
            self._exec("DELETE FROM rate_slots WHERE key = ? AND ts < ?", (key, float(ts) - keep_s))

    def idem_release(self, key: str, execution_id: str) -> bool:
        """Free a key, but only if `execution_id` still holds it."""
        return (
            self._exec(
                "DELETE FROM idem_claims WHERE key = ? AND execution_id = ?", (key, execution_id)
            ).rowcount
            > 0
        )

    def proposals(
        self,
        *,
        action: str | None = None,
        params_key: str | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Proposals, newest first, filtered by action, params and status."""
        where, params = ["1"], []  # type: list[str], list[Any]
        if action is not None:
            where.append("action = ?")
            params.append(action)
        if params_key is not None:
            where.append("params_key = ?")
            params.append(params_key)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        return self._select(
            "proposals",
            PROPOSAL_COLUMNS,
            " AND ".join(where),
            params,
            "ORDER BY created DESC, rowid DESC",
        )

    def approval_insert(
        self, proposal_id: str, kind: str, actor: str, ts: float, note: str, action_hash: str
    ) -> int:
        """Record an approval or rejection; a second approval by one actor raises StateError."""
        cursor = self._exec(
            "INSERT INTO approvals (proposal_id, kind, actor, ts, note, action_hash)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (proposal_id, kind, actor, float(ts), note, action_hash),
        )
        return int(cursor.lastrowid or 0)

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (rolling back an unfinished transaction). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._rollback()
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def latest_version() -> int:
    """The schema version the known migrations lead to."""
    return max(version for version, _ in MIGRATIONS)


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (trigger bodies kept whole)."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        statements.append(buffer.strip())
    return statements


def _create_file(path: str) -> None:
    """Create the database file (and its parent directory) with mode 0600 if missing."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _resolve(location: str, create: bool) -> str:
    if location.startswith(("postgresql://", "postgres://")):
        raise StateError("PostgreSQL state stores are not supported yet; use a file path")
    if location == ":memory:":
        return location
    path = os.path.abspath(os.path.expanduser(location))
    if os.path.isdir(path):
        raise StateError(f"state database {path} is a directory")
    if not os.path.exists(path):
        if not create:
            raise StateError(f"state database {path} does not exist")
        try:
            _create_file(path)
        except OSError as exc:
            raise StateError(f"cannot create state database {path}: {exc.strerror}") from exc
    return path


def open_store(location: str, *, create: bool = True) -> Store:
    """Open (creating if allowed) the state store at `location` and bring its schema current.

    `location` is a file path (relative paths are taken from the current directory; `~` is
    expanded) or `:memory:`. New files and their -wal/-shm companions get mode 0600.
    A `postgresql://` (or `postgres://`) URL opens the PostgreSQL store of `warden.state_pg`,
    which has this class's API and semantics.
    """
    if location.startswith(("postgresql://", "postgres://")):
        from typing import cast

        from warden.state_pg import open_pg_store

        return cast("Store", open_pg_store(location, create=create))
    path = _resolve(location, create)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state database {path}: {exc}") from exc
    store = Store(conn, path)
    try:
        store._configure()
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
