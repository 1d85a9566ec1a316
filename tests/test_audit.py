"""The hash-chained audit trail: real SQLite, real subprocesses, raw-SQL tampering."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:  # warden may not be installed in the venv yet
    sys.path.insert(0, str(SRC))

from warden import audit  # noqa: E402
from warden.errors import StateError  # noqa: E402
from warden.state import Store, open_store  # noqa: E402


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with open_store(str(db)) as s:
        yield s


def _fill(store: Store, n: int) -> list[audit.AuditRecord]:
    return [
        audit.append(
            store, kind="run", actor="alice", action="deploy", record={"i": i, "env": "prod"}
        )
        for i in range(1, n + 1)
    ]


def _tamper(db: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """What an attacker with file access does: drop the guards, change rows."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


# -- append --------------------------------------------------------------------------------


def test_chain_links_and_hash_formula(store: Store) -> None:
    records = _fill(store, 3)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == audit.GENESIS_HASH == "sha256:" + "0" * 64
    assert records[1].prev_hash == records[0].hash and records[2].prev_hash == records[1].hash
    first = records[0]
    body = {
        "seq": 1,
        "ts": first.ts,
        "actor": "alice",
        "kind": "run",
        "action": "deploy",
        "record": {"i": 1, "env": "prod"},
        "prev_hash": audit.GENESIS_HASH,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert first.hash == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert audit.verify(store) == audit.VerifyResult(True, 3, None, "")


def test_empty_trail_verifies(store: Store) -> None:
    assert audit.verify(store) == audit.VerifyResult(True, 0, None, "")
    assert list(audit.export(store)) == []


def test_awkward_values_round_trip(store: Store) -> None:
    audit.append(
        store,
        kind="proposal",
        actor="bøb",
        action=None,
        record={"msg": "héllo ✓", "n": 1.5, "big": 2**70, "t": (1, 2), "nested": {"b": 1, "a": []}},
        ts=1700000000,  # int: stored as REAL, must hash the same
    )
    assert audit.verify(store).ok
    (exported,) = audit.export(store)
    assert exported["record"]["t"] == [1, 2] and exported["ts"] == 1700000000.0
    assert exported["action"] is None and exported["actor"] == "bøb"


def test_non_json_record_is_state_error(store: Store) -> None:
    with pytest.raises(StateError):
        audit.append(store, kind="run", actor="a", action=None, record={"x": {1, 2}})
    assert audit.verify(store).count == 0


def test_export_matches_append(store: Store) -> None:
    records = _fill(store, 4)
    assert list(audit.export(store)) == [r.to_dict() for r in records]


def test_append_redacts(store: Store) -> None:
    secret = {"params": {"token": "s3cr3t", "env": "prod"}}
    rec = audit.append(
        store, kind="run", actor="a", action="x", record=secret, redact_paths=["params.token"]
    )
    assert rec.record == {"params": {"token": "***", "env": "prod"}}
    assert secret["params"]["token"] == "s3cr3t"
    assert "s3cr3t" not in json.dumps(list(audit.export(store)))


def test_append_joins_caller_transaction(store: Store) -> None:
    with store.transaction():
        store.put("execution:1", {"status": "started"})
        audit.append(store, kind="run", actor="a", action="deploy", record={"id": 1})
    assert store.get("execution:1") is not None and audit.verify(store).count == 1
    with pytest.raises(RuntimeError), store.transaction():
        store.put("execution:2", {"status": "started"})
        audit.append(store, kind="run", actor="a", action="deploy", record={"id": 2})
        raise RuntimeError("step failed before commit")
    assert store.get("execution:2") is None
    result = audit.verify(store)
    assert result.ok and result.count == 1
    assert audit.append(store, kind="run", actor="a", action=None, record={}).seq == 2


# -- tampering -----------------------------------------------------------------------------


def test_edited_record_is_named(store: Store, db: Path) -> None:
    _fill(store, 20)
    _tamper(db, "UPDATE audit SET record = ? WHERE seq = 17", ('{"i":17,"env":"staging"}',))
    result = audit.verify(store)
    assert not result.ok and result.first_bad_seq == 17 and result.count == 16
    assert result.problem == "audit record 17: hash mismatch (record edited)"


@pytest.mark.parametrize("column", ["ts", "actor", "kind", "action", "prev_hash"])
def test_every_hashed_column_is_covered(store: Store, db: Path, column: str) -> None:
    _fill(store, 3)
    value: Any = 12345.0 if column == "ts" else "changed"
    _tamper(db, f"UPDATE audit SET {column} = ? WHERE seq = 2", (value,))
    result = audit.verify(store)
    assert result.first_bad_seq == 2 and "hash mismatch" in result.problem


def test_invalid_json_record(store: Store, db: Path) -> None:
    _fill(store, 3)
    _tamper(db, "UPDATE audit SET record = '{broken' WHERE seq = 3")
    result = audit.verify(store)
    assert result.first_bad_seq == 3 and "not valid JSON" in result.problem
    assert list(audit.export(store))[2]["record"] == "{broken"


def test_deleted_middle_record(store: Store, db: Path) -> None:
    _fill(store, 20)
    _tamper(db, "DELETE FROM audit WHERE seq = 17")
    result = audit.verify(store)
    assert not result.ok and result.first_bad_seq == 18
    assert result.problem == (
        "audit record 18: previous hash does not match record 16 (record 17 deleted?)"
    )


def test_deleted_first_records(store: Store, db: Path) -> None:
    _fill(store, 5)
    _tamper(db, "DELETE FROM audit WHERE seq <= 2")
    result = audit.verify(store)
    assert result.first_bad_seq == 3 and "records 1-2 deleted?" in result.problem


def test_deleted_last_records(store: Store, db: Path) -> None:
    _fill(store, 10)
    _tamper(db, "DELETE FROM audit WHERE seq >= 9")
    result = audit.verify(store)
    assert not result.ok and result.first_bad_seq == 9 and result.count == 8
    assert "records 9-10 deleted?" in result.problem
    # the next append links to the true head, so the gap stays visible
    assert audit.append(store, kind="run", actor="a", action=None, record={}).seq == 11
    assert audit.verify(store).first_bad_seq == 11


def test_swapped_records(store: Store, db: Path) -> None:
    _fill(store, 8)
    conn = sqlite3.connect(db)
    rows = {r[0]: r[1:] for r in conn.execute("SELECT * FROM audit WHERE seq IN (4, 5)")}
    conn.close()
    cols = "ts = ?, actor = ?, kind = ?, action = ?, record = ?, prev_hash = ?, hash = ?"
    _tamper(db, "DROP INDEX audit_prev_hash")
    _tamper(db, "DROP INDEX audit_hash")
    _tamper(db, f"UPDATE audit SET {cols} WHERE seq = 4", (*rows[5],))
    _tamper(db, f"UPDATE audit SET {cols} WHERE seq = 5", (*rows[4],))
    result = audit.verify(store)
    assert not result.ok and result.first_bad_seq == 4


def test_swapped_record_payloads(store: Store, db: Path) -> None:
    _fill(store, 8)
    conn = sqlite3.connect(db)
    payloads = dict(conn.execute("SELECT seq, record FROM audit WHERE seq IN (4, 5)").fetchall())
    conn.close()
    _tamper(db, "UPDATE audit SET record = ? WHERE seq = 4", (payloads[5],))
    _tamper(db, "UPDATE audit SET record = ? WHERE seq = 5", (payloads[4],))
    assert audit.verify(store).first_bad_seq == 4


def test_edited_last_record(store: Store, db: Path) -> None:
    _fill(store, 6)
    _tamper(db, "UPDATE audit SET actor = 'mallory' WHERE seq = 6")
    result = audit.verify(store)
    assert result.first_bad_seq == 6 and result.problem.startswith("audit record 6: hash mismatch")


def test_rewritten_record_with_recomputed_hash(store: Store, db: Path) -> None:
    records = _fill(store, 6)
    r = records[2]
    forged = audit.compute_hash(
        seq=3, ts=r.ts, actor="mallory", kind=r.kind, action=r.action,
        record=r.record, prev_hash=r.prev_hash,
    )  # fmt: skip
    _tamper(db, "UPDATE audit SET actor = 'mallory', hash = ? WHERE seq = 3", (forged,))
    result = audit.verify(store)
    assert result.first_bad_seq == 4
    assert "previous hash does not match record 3" in result.problem


def test_rewritten_last_record_detected_by_head(store: Store, db: Path) -> None:
    records = _fill(store, 3)
    r = records[-1]
    forged = audit.compute_hash(
        seq=3, ts=r.ts, actor="mallory", kind=r.kind, action=r.action,
        record=r.record, prev_hash=r.prev_hash,
    )  # fmt: skip
    _tamper(db, "UPDATE audit SET actor = 'mallory', hash = ? WHERE seq = 3", (forged,))
    result = audit.verify(store)
    assert result.first_bad_seq == 3 and "recorded head" in result.problem


def test_inserted_record(store: Store, db: Path) -> None:
    _fill(store, 5)
    _tamper(db, "DELETE FROM audit WHERE seq = 3")
    _tamper(
        db,
        "INSERT INTO audit VALUES (3, 1.0, 'mallory', 'run', NULL, '{}', 'sha256:x', 'sha256:y')",
    )
    assert audit.verify(store).first_bad_seq == 3


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_appenders_form_one_chain(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    code = """
        import sys, time
        from warden import audit
        from warden.state import open_store
        start = float(sys.argv[3])
        while time.time() < start:
            time.sleep(0.001)
        with open_store(sys.argv[1]) as s:
            for i in range(25):
                audit.append(s, kind="run", actor=sys.argv[2], action="a", record={"i": i})
    """
    start = str(time.time() + 0.5)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(db), f"p{n}", start],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
    with open_store(str(db)) as s:
        assert audit.verify(s) == audit.VerifyResult(True, 200, None, "")
        rows = list(audit.export(s))
    assert [r["seq"] for r in rows] == list(range(1, 201))
    assert len({r["prev_hash"] for r in rows}) == 200
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"]
    per_actor = {
        f"p{n}": [r["record"]["i"] for r in rows if r["actor"] == f"p{n}"] for n in range(8)
    }
    assert all(v == list(range(25)) for v in per_actor.values())


# -- redact --------------------------------------------------------------------------------


def test_redact_nested_and_lists() -> None:
    data = {
        "params": {"token": "t", "env": "prod"},
        "items": [{"name": "a", "secret": 1}, {"name": "b", "secret": 2}],
        "env": {"A": "1", "B": "2"},
        "argv": ["deploy", "--password", "hunter2"],
    }
    out = audit.redact(data, ["params.token", "items.*.secret", "env.*", "argv.2", "nope.x"])
    assert out == {
        "params": {"token": "***", "env": "prod"},
        "items": [{"name": "a", "secret": "***"}, {"name": "b", "secret": "***"}],
        "env": {"A": "***", "B": "***"},
        "argv": ["deploy", "--password", "***"],
    }
    assert data["params"]["token"] == "t" and data["items"][0]["secret"] == 1  # untouched


def test_redact_escaped_and_edge_paths() -> None:
    data = {
        "metadata": {"labels": {"app.kubernetes.io/name": "web", "app": "x"}},
        "weird": {"*": "literal star", "other": "kept"},
        "list": [1, 2],
        "whole": {"deep": [1, 2]},
    }
    out = audit.redact(
        data,
        [
            r"metadata.labels.app\.kubernetes\.io/name",
            r"weird.\*",
            "list.5",
            "list.x",
            "whole",
        ],
    )
    assert out["metadata"]["labels"] == {"app.kubernetes.io/name": "***", "app": "x"}
    assert out["weird"] == {"*": "***", "other": "kept"}
    assert out["list"] == [1, 2] and out["whole"] == "***"


def test_split_path() -> None:
    assert audit.split_path(r"a\.b.*.c") == ["a.b", None, "c"]
    assert audit.split_path(r"x.\*") == ["x", "*"]
    assert audit.split_path(r"C:\dir.k") == [r"C:\dir", "k"]
    assert audit.split_path(r"a\\.b") == ["a\\", "b"]
    assert audit.redact([{"k": 1}], ["*.k"]) == [{"k": "***"}]
