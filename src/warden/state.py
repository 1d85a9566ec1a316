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
from dataclasses import dataclass
from typing import Any, TypeVar

from warden.errors import StateError

__all__ = [
    "MIGRATIONS",
    "AuditRow",
    "Event",
    "SessionInfo",
    "StateError",
    "Store",
    "open_store",
]

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


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _retry_delay(attempt: int) -> float:
    jitter = (time.perf_counter_ns() % 1000) / 1000.0
    return float(_RETRY_BASE_S * (2**attempt) * (1.0 + jitter))


class Store:
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

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        name = f"warden_sp{self._depth}"
        self._depth += 1
        try:
            self._exec(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                self._exec(f"ROLLBACK TO {name}")
                self._exec(f"RELEASE {name}")
                raise
            self._exec(f"RELEASE {name}")
        finally:
            self._depth -= 1

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

    def _check_version(self, current: int, target: int) -> int:
        if current > target:
            raise StateError(
                f"state database {self.location} has schema version {current}, newer than "
                f"this warden supports ({target}); upgrade warden"
            )
        return current

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

    # -- key/value --------------------------------------------------------------------------

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

    def delete(self, key: str) -> bool:
        """Remove `key`. Returns whether it existed."""
        return self._exec("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0

    # -- audit table (the chain logic lives in warden.audit) --------------------------------

    def audit_tail(self) -> tuple[int, str] | None:
        """(seq, hash) of the last audit row, or None when the trail is empty."""
        rows = self._rows("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def audit_insert(self, row: AuditRow) -> None:
        """Insert one audit row with its explicit seq (call inside a transaction)."""
        self._exec(
            "INSERT INTO audit (seq, ts, actor, kind, action, record, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.seq, row.ts, row.actor, row.kind, row.action, row.record, row.prev_hash, row.hash),
        )

    def audit_rows(self) -> Iterator[AuditRow]:
        """Every audit row in seq order, streamed."""
        sql = "SELECT seq, ts, actor, kind, action, record, prev_hash, hash FROM audit ORDER BY seq"
        for r in self._iter(sql):
            yield AuditRow(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])

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
    """
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
