"""The state store: real SQLite files, real subprocesses."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:  # warden may not be installed in the venv yet
    sys.path.insert(0, str(SRC))

from warden import state  # noqa: E402
from warden.errors import StateError, WardenError  # noqa: E402
from warden.state import MIGRATIONS, open_store  # noqa: E402


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "state.db"


@pytest.fixture
def store(db: Path) -> Iterator[state.Store]:
    with open_store(str(db)) as s:
        yield s


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- files and modes -----------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_creates_parent_and_private_files(db: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with open_store(str(db)) as s:
            s.record_event("s1", "PostToolUse", "Bash", {"x": 1})
            assert db.parent.is_dir()
            files = [db, db.with_name("state.db-wal"), db.with_name("state.db-shm")]
            present = [f for f in files if f.exists()]
            assert db in present and len(present) == 3  # WAL mode keeps both while open
            for f in present:
                assert _mode(f) == 0o600, f
    finally:
        os.umask(old)


def test_existing_file_mode_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.touch(mode=0o640)
    os.chmod(db, 0o640)
    open_store(str(db)).close()
    assert _mode(db) == 0o640


def test_pragmas_and_version(store: state.Store, db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == state.latest_version()
    finally:
        conn.close()
    assert store.schema_version() == max(v for v, _ in MIGRATIONS)


def test_create_false_refuses_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "state.db"
    with pytest.raises(StateError, match="does not exist"):
        open_store(str(missing), create=False)
    assert not missing.parent.exists()


def test_create_false_opens_existing(db: Path) -> None:
    with open_store(str(db)) as s:
        s.put("k", 1)
    with open_store(str(db), create=False) as s:
        assert s.get("k") == 1


def test_errors_are_state_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StateError, match=r"corrupt\.db"):
        open_store(str(corrupt))
    with pytest.raises(StateError, match="directory"):
        open_store(str(tmp_path))
    with pytest.raises(StateError, match="PostgreSQL"):
        open_store("postgresql://localhost/warden")
    assert issubclass(StateError, WardenError) and StateError.exit_code == 70


def test_unwritable_parent_is_state_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    with pytest.raises(StateError, match="cannot create"):
        open_store(str(locked / "sub" / "state.db"))


def test_closed_store_raises_state_error(db: Path) -> None:
    s = open_store(str(db))
    s.close()
    s.close()  # idempotent
    with pytest.raises(StateError):
        s.get("k")


def test_memory_store() -> None:
    with open_store(":memory:") as s:
        s.record_event("a", "Stop", None, {})
        assert len(s.session_events("a")) == 1


# -- migrations ----------------------------------------------------------------------------


def test_migrate_idempotent_and_reopen_keeps_data(db: Path) -> None:
    with open_store(str(db)) as s:
        s.record_event("s", "PostToolUse", "Read", {"f": "a"})
        assert s.migrate() == state.latest_version()
        assert s.migrate() == state.latest_version()
    with open_store(str(db)) as s:
        assert [e.data for e in s.session_events("s")] == [{"f": "a"}]
        assert s.schema_version() == state.latest_version()


def test_appended_migration_applies_once(db: Path) -> None:
    open_store(str(db)).close()
    version = state.latest_version() + 1
    MIGRATIONS.append((version, "CREATE TABLE extra (id INTEGER PRIMARY KEY, v TEXT);"))
    try:
        with open_store(str(db)) as s:
            assert s.schema_version() == version
            s._exec("INSERT INTO extra (v) VALUES ('x')")
        with open_store(str(db)) as s:  # not applied twice
            assert s._rows("SELECT v FROM extra") == [("x",)]
    finally:
        MIGRATIONS.pop()
    with pytest.raises(StateError, match="newer than this warden"):
        open_store(str(db))


def test_split_sql_keeps_trigger_bodies() -> None:
    parts = state._split_sql(MIGRATIONS[0][1])
    triggers = [p for p in parts if p.startswith("CREATE TRIGGER")]
    assert len(triggers) == 2 and all(t.endswith("END;") for t in triggers)


def test_concurrent_first_open(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "state.db"
    code = """
        import sys, time
        from warden.state import open_store
        start = float(sys.argv[2])
        while time.time() < start:
            time.sleep(0.001)
        with open_store(sys.argv[1]) as s:
            s.record_event("x", "PostToolUse", None, {})
    """
    start = str(time.time() + 0.5)
    procs = [_spawn(code, str(db), start) for _ in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    with open_store(str(db)) as s:
        assert len(s.session_events("x")) == 8


# -- events --------------------------------------------------------------------------------


def test_events_in_order_and_since(store: state.Store) -> None:
    store.record_event("s", "PostToolUse", "Edit", {"n": 3}, ts=30.0)
    store.record_event("s", "PostToolUse", "Read", {"n": 1}, ts=10.0)
    store.record_event("s", "UserPromptSubmit", None, {"n": 2, "t": "ü"}, ts=20.0)
    store.record_event("s", "PostToolUse", "Bash", {"n": 4}, ts=30.0)  # tie: by id
    store.record_event("other", "PostToolUse", "Bash", {"n": 0}, ts=15.0)
    events = store.session_events("s")
    assert [e.data["n"] for e in events] == [1, 2, 3, 4]
    assert events[1].tool is None and events[1].data["t"] == "ü"
    assert events[0].event == "PostToolUse" and events[0].session_id == "s"
    assert [e.data["n"] for e in store.session_events("s", since_ts=20.0)] == [2, 3, 4]
    assert store.session_events("nobody") == []


def test_record_event_returns_id_and_default_ts(store: state.Store) -> None:
    before = time.time()
    first = store.record_event("s", "PostToolUse", "Bash", {})
    second = store.record_event("s", "PostToolUse", "Bash", {})
    assert second > first > 0
    ts = store.session_events("s")[0].ts
    assert before <= ts <= time.time()


def test_non_json_data_is_state_error(store: state.Store) -> None:
    with pytest.raises(StateError, match="JSON"):
        store.record_event("s", "PostToolUse", None, {"x": object()})


def test_sessions_clear_and_prune(store: state.Store) -> None:
    for i in range(3):
        store.record_event("old", "PostToolUse", "Bash", {}, ts=100.0 + i)
    store.record_event("mixed", "PostToolUse", "Bash", {}, ts=50.0)
    store.record_event("mixed", "PostToolUse", "Bash", {}, ts=950.0)
    store.record_event("gone", "PostToolUse", "Bash", {}, ts=500.0)
    infos = {i.session_id: i for i in store.sessions()}
    assert infos["old"].events == 3
    assert (infos["old"].first_ts, infos["old"].last_ts) == (100.0, 102.0)
    assert [i.session_id for i in store.sessions()] == ["old", "gone", "mixed"]
    assert store.clear_session("gone") == 1
    assert store.clear_session("gone") == 0
    # sessions whose LAST event is older than 1000 - 200 = 800 go, whole
    assert store.prune(200, now=1000.0) == 3
    assert [i.session_id for i in store.sessions()] == ["mixed"]
    assert len(store.session_events("mixed")) == 2


# -- key/value -----------------------------------------------------------------------------


def test_kv(store: state.Store) -> None:
    assert store.get("kill_switch") is None
    store.put("kill_switch", {"on": True, "reason": "incident"}, by="alice")
    assert store.get("kill_switch") == {"on": True, "reason": "incident"}
    store.put("kill_switch", False)
    assert store.get("kill_switch") is False
    meta = store.get_meta("kill_switch")
    assert meta is not None and meta[0] is False and meta[2] is None
    assert store.delete("kill_switch") and not store.delete("kill_switch")
    assert store.get_meta("kill_switch") is None


# -- transactions --------------------------------------------------------------------------


def test_transaction_commits_and_rolls_back(store: state.Store) -> None:
    with store.transaction():
        store.put("a", 1)
        assert store.in_transaction
    assert not store.in_transaction
    with pytest.raises(ValueError), store.transaction():
        store.put("a", 2)
        raise ValueError("boom")
    assert store.get("a") == 1 and not store.in_transaction


def test_nested_transaction_is_a_savepoint(store: state.Store) -> None:
    with store.transaction():
        store.put("outer", 1)
        with pytest.raises(KeyError), store.transaction():
            store.put("inner", 1)
            raise KeyError("inner fails")
        with store.transaction():
            store.put("inner2", 1)
    assert store.get("outer") == 1 and store.get("inner") is None and store.get("inner2") == 1


def test_writer_waits_for_lock_holder(store: state.Store, db: Path) -> None:
    code = """
        import sys
        from warden.state import open_store
        with open_store(sys.argv[1]) as s:
            s.record_event("w", "PostToolUse", None, {})
    """
    with store.transaction():
        store.put("held", True)
        proc = _spawn(code, str(db))
        time.sleep(0.5)
        assert proc.poll() is None  # blocked on our write lock, not failed
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(store.session_events("w")) == 1


def test_audit_table_is_append_only(store: state.Store) -> None:
    row = state.AuditRow(1, 1.0, "me", "run", None, "{}", "sha256:0", "sha256:1")
    with store.transaction():
        store.audit_insert(row)
    assert store.audit_tail() == (1, "sha256:1")
    assert list(store.audit_rows()) == [row]
    with pytest.raises(StateError, match="append-only"):
        store._exec("DELETE FROM audit")
    with pytest.raises(StateError, match="append-only"):
        store._exec("UPDATE audit SET actor = 'mallory'")
    assert list(store.audit_rows()) == [row]


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    open_store(str(db)).close()
    code = """
        import sys, time
        from warden.state import open_store
        start = float(sys.argv[3])
        while time.time() < start:
            time.sleep(0.001)
        with open_store(sys.argv[1]) as s:
            for i in range(50):
                s.record_event("shared", "PostToolUse", "Bash", {"p": int(sys.argv[2]), "i": i})
    """
    start = str(time.time() + 0.5)
    procs = [_spawn(code, str(db), str(n), start) for n in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
    with open_store(str(db)) as s:
        events = s.session_events("shared")
    assert len(events) == 400
    seen = {(e.data["p"], e.data["i"]) for e in events}
    assert seen == {(p, i) for p in range(8) for i in range(50)}
    for p in range(8):  # each writer's own events stay in its order
        mine = [e.data["i"] for e in events if e.data["p"] == p]
        assert mine == sorted(mine)
