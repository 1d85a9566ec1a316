"""One store API, two engines: every test here runs against SQLite and PostgreSQL.

``store_location`` is parametrised over both engines (PostgreSQL: a fresh database on the
throwaway server of ``pg_server``); the same assertions must hold for each. A last group of
tests runs one scripted sequence of calls on both and compares the results value for value,
and checks that every public method of ``warden.state.Store`` exists on the PostgreSQL store
with the same signature (so a method added to state.py without its twin fails here).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from warden import audit, state
from warden.errors import StateError
from warden.state import open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def store(store_location: str) -> Iterator[Any]:
    with open_store(store_location) as s:
        yield s


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen[str]]) -> list[str]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        outs.append(out)
    return outs


# -- schema --------------------------------------------------------------------------------


def test_migrate_idempotent_and_reopen(store_location: str) -> None:
    with open_store(store_location) as s:
        version = s.schema_version()
        assert version >= 2
        assert s.migrate() == version
        s.put("kept", [1, "two"])
    with open_store(store_location, create=False) as s:
        assert s.schema_version() == version
        assert s.get("kept") == [1, "two"]


def test_closed_store_raises_state_error(store_location: str) -> None:
    s = open_store(store_location)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StateError):
        s.get("x")


# -- sessions ------------------------------------------------------------------------------


def test_events(store: Any) -> None:
    ids = [store.record_event("s1", "PostToolUse", "Read", {"n": i, "ü": "✓"}, ts=10.0 + (i % 2))
           for i in range(4)]
    assert ids == sorted(ids) and len(set(ids)) == 4 and all(isinstance(i, int) for i in ids)
    store.record_event("s2", "UserPromptSubmit", None, {"prompt": "hi"}, ts=5.0)
    events = store.session_events("s1")
    assert [e.data["n"] for e in events] == [0, 2, 1, 3]  # by (ts, id)
    assert [e.data["n"] for e in store.session_events("s1", since_ts=11.0)] == [1, 3]
    e = events[0]
    assert isinstance(e, state.Event) and e.session_id == "s1" and e.tool == "Read"
    assert isinstance(e.ts, float) and e.data == {"n": 0, "ü": "✓"}
    assert store.session_events("s2")[0].tool is None
    sessions = store.sessions()
    assert [(s.session_id, s.events, s.first_ts, s.last_ts) for s in sessions] == [
        ("s2", 1, 5.0, 5.0), ("s1", 4, 10.0, 11.0)]
    assert store.prune(100.0, now=108.0) == 1  # s2's last event is 103 s old
    assert [s.session_id for s in store.sessions()] == ["s1"]
    assert store.clear_session("s1") == 4 and store.sessions() == []
    with pytest.raises(StateError):
        store.record_event("s3", "PostToolUse", None, {"x": {1, 2}})


def test_default_timestamp(store: Any) -> None:
    import time

    before = time.time()
    store.record_event("s", "PostToolUse", "Bash", {})
    (e,) = store.session_events("s")
    assert before <= e.ts <= time.time()


# -- key/value -----------------------------------------------------------------------------


def test_kv(store: Any) -> None:
    assert store.get("k") is None and store.get_meta("k") is None
    store.put("k", {"on": True, "n": 1.5, "l": [None]}, by="alice")
    assert store.get("k") == {"on": True, "n": 1.5, "l": [None]}
    _value, updated, by = store.get_meta("k")
    assert by == "alice" and isinstance(updated, float)
    store.put("k", "replaced")
    assert store.get_meta("k")[0] == "replaced" and store.get_meta("k")[2] is None
    assert store.delete("k") is True and store.delete("k") is False
    with pytest.raises(StateError):
        store.put("bad", object())


# -- transactions --------------------------------------------------------------------------


def test_transaction_commit_rollback_and_savepoint(store: Any) -> None:
    assert store.in_transaction is False
    with store.transaction():
        assert store.in_transaction is True
        store.put("a", 1)
    assert store.get("a") == 1
    with pytest.raises(RuntimeError), store.transaction():
        store.put("a", 2)
        raise RuntimeError("boom")
    assert store.get("a") == 1 and store.in_transaction is False
    with store.transaction():
        store.put("b", 1)
        with pytest.raises(RuntimeError), store.transaction():
            store.put("b", 2)
            store.put("c", 2)
            raise RuntimeError("inner")
        assert store.get("b") == 1 and store.get("c") is None
    assert store.get("b") == 1


def test_failed_statement_does_not_spoil_the_transaction(store: Any) -> None:
    """SQLite fails only the statement; the PostgreSQL store must behave the same."""
    _proposal(store, "p1")
    with store.transaction():
        store.approval_insert("p1", "approve", "alice", 1.0, "", "h")
        with pytest.raises(StateError):
            store.approval_insert("p1", "approve", "alice", 2.0, "", "h")
        store.approval_insert("p1", "approve", "bob", 3.0, "", "h")
        store.put("after", True)
    assert [a["actor"] for a in store.approvals("p1")] == ["alice", "bob"]
    assert store.get("after") is True


# -- audit ---------------------------------------------------------------------------------


def test_audit_chain(store: Any) -> None:
    records = [audit.append(store, kind="run.start", actor=f"u{i}", action="deploy",
                            record={"i": i, "token": "x"}, redact_paths=["token"])
               for i in range(5)]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[1].prev_hash == records[0].hash
    result = audit.verify(store)
    assert result.ok and result.count == 5
    exported = list(audit.export(store))
    assert [e["record"] for e in exported] == [{"i": i, "token": "***"} for i in range(5)]
    assert exported[-1]["hash"] == records[-1].hash
    assert store.audit_tail() == (5, records[-1].hash)


def test_audit_append_joins_caller_transaction(store: Any) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        audit.append(store, kind="k", actor="a", action=None, record={})
        raise RuntimeError
    assert store.audit_tail() is None and audit.verify(store).count == 0


def test_audit_table_is_append_only(store: Any) -> None:
    audit.append(store, kind="k", actor="a", action=None, record={"x": 1})
    mark = "%s" if store.location.startswith("postgres") else "?"
    with pytest.raises(StateError, match="append-only"):
        store._exec(f"UPDATE audit SET actor = {mark}", ("mallory",))
    with pytest.raises(StateError, match="append-only"):
        store._exec("DELETE FROM audit")
    assert audit.verify(store).ok


# -- guarded actions -----------------------------------------------------------------------


def _execution(xid: str, **extra: Any) -> dict[str, Any]:
    row = {"id": xid, "action": "deploy", "action_hash": "ah", "plan_hash": "ph",
           "params": {"env": "prod"}, "params_key": "pk", "status": "started", "actor": "ci",
           "started": 100.0, "rate_keys": ["deploy:prod"], "gates": [{"name": "g"}]}
    row.update(extra)
    return row


def _proposal(store: Any, pid: str, **extra: Any) -> None:
    row = {"id": pid, "action": "deploy", "action_hash": "h", "plan_hash": "p",
           "params": {"env": "prod"}, "params_key": "pk", "proposer": "carol",
           "status": "open", "created": 1.0, "updated": 1.0}
    row.update(extra)
    store.proposal_insert(row)


def test_executions_and_steps(store: Any) -> None:
    store.execution_insert(_execution("x1", started=100.0))
    store.execution_insert(_execution("x2", started=200.0, action="backup"))
    store.execution_insert(_execution("x3", started=200.0, status="aborted"))
    got = store.execution_get("x1")
    assert got["params"] == {"env": "prod"} and got["rate_keys"] == ["deploy:prod"]
    assert got["reasons"] == [] and got["detail"] == {} and got["exit_code"] is None
    assert got["started"] == 100.0 and isinstance(got["started"], float)
    assert store.execution_get("nope") is None
    assert [e["id"] for e in store.executions()] == ["x3", "x2", "x1"]  # ties: newest row
    assert [e["id"] for e in store.executions(action="deploy")] == ["x3", "x1"]
    assert [e["id"] for e in store.executions(statuses=["started"])] == ["x2", "x1"]
    assert [e["id"] for e in store.executions(since=150.0, limit=1)] == ["x3"]
    assert store.execution_update("x1", status="succeeded", exit_code=0, ended=101.5,
                                  reasons=["ok"]) == 1
    assert store.execution_update("nope", status="x") == 0
    assert store.execution_update("x1") == 0
    assert store.execution_get("x1")["reasons"] == ["ok"]
    assert store.execution_set_status("x1", ["started"], status="partial") is False
    assert store.execution_set_status("x1", ["succeeded", "partial"], status="rolled_back")
    with pytest.raises(StateError, match="unknown executions column"):
        store.execution_insert({**_execution("x9"), "bogus": 1})
    with pytest.raises(StateError):
        store.execution_insert(_execution("x1"))  # duplicate id

    store.step_insert({"execution_id": "x1", "idx": 1, "name": "b", "kind": "run",
                       "status": "ok", "snapshots": [{"path": "f", "sha256": "s"}]})
    store.step_insert({"execution_id": "x1", "idx": 0, "name": "a", "kind": "write_file",
                       "status": "ok", "undo": {"restore": "f"}})
    assert store.step_update("x1", 1, status="rolled_back", exit_code=3, stdout="out") == 1
    steps = store.steps("x1")
    assert [(s["idx"], s["name"], s["status"]) for s in steps] == [
        (0, "a", "ok"), (1, "b", "rolled_back")]
    assert steps[0]["undo"] == {"restore": "f"} and steps[1]["snapshots"][0]["path"] == "f"
    assert steps[1]["exit_code"] == 3 and steps[0]["stdout"] == ""


def test_rate_slots_and_idempotency_claims(store: Any) -> None:
    assert store.rate_count("deploy:prod", 0.0) == 0 and store.rate_oldest("k", 0.0) is None
    for ts in (10.0, 20.0, 30.0):
        store.rate_take("deploy:prod", ts, f"x{ts}")
    assert store.rate_count("deploy:prod", 15.0) == 2
    assert store.rate_oldest("deploy:prod", 15.0) == 20.0
    assert store.rate_count("other", 0.0) == 0
    store.rate_take("other", 5.0, "o1")
    store.rate_take("deploy:prod", 100.0, "x100", keep_s=75.0)  # drops slots before 25.0
    assert store.rate_count("deploy:prod", 0.0) == 2
    assert store.rate_oldest("deploy:prod", 0.0) == 30.0
    assert store.rate_count("other", 0.0) == 1  # other keys are left alone

    assert store.idem_get("once") is None
    store.idem_put("once", "x1", 5.0)
    assert store.idem_get("once") == {"key": "once", "execution_id": "x1", "ts": 5.0}
    assert store.idem_release("once", "x2") is False
    store.idem_put("once", "x2", 6.0)  # re-claim
    assert store.idem_get("once")["execution_id"] == "x2"
    assert store.idem_release("once", "x2") is True and store.idem_get("once") is None


def test_proposals_approvals_dry_runs(store: Any) -> None:
    _proposal(store, "p1", created=1.0)
    _proposal(store, "p2", created=2.0, status="approved", params_key="other")
    _proposal(store, "p3", created=2.0)
    assert store.proposal_get("p1")["params"] == {"env": "prod"}
    assert store.proposal_get("p1")["required"] == 1 and store.proposal_get("zz") is None
    assert [p["id"] for p in store.proposals()] == ["p3", "p2", "p1"]
    assert [p["id"] for p in store.proposals(statuses=["open"])] == ["p3", "p1"]
    assert [p["id"] for p in store.proposals(action="deploy", params_key="other")] == ["p2"]
    assert store.proposal_update("p1", note="why", detail={"a": 1}) == 1
    assert store.proposal_get("p1")["detail"] == {"a": 1}
    assert store.proposal_set_status("p1", ["open"], status="approved", updated=3.0) is True
    assert store.proposal_set_status("p1", ["open"], status="executed") is False

    first = store.approval_insert("p1", "approve", "alice", 1.0, "lgtm", "h")
    second = store.approval_insert("p1", "reject", "alice", 2.0, "", "h")  # not unique
    assert isinstance(first, int) and second > first
    with pytest.raises(StateError):
        store.approval_insert("p1", "approve", "alice", 3.0, "", "h")
    assert [(a["kind"], a["actor"], a["note"]) for a in store.approvals("p1")] == [
        ("approve", "alice", "lgtm"), ("reject", "alice", "")]

    for i, ok in enumerate([True, False, True, True]):
        store.dry_run_insert({"id": f"d{i}", "action": "deploy", "params_key": "pk",
                              "action_hash": "h", "plan_hash": "p", "ts": float(i % 3),
                              "actor": "ci", "ok": ok, "detail": {"i": i}})
    assert store.dry_run_get("d1")["ok"] == 0 and store.dry_run_get("d0")["ok"] == 1
    assert store.dry_run_get("d2")["detail"] == {"i": 2} and store.dry_run_get("x") is None
    assert [d["id"] for d in store.dry_runs("deploy", "pk")] == ["d2", "d3", "d0"]
    assert [d["id"] for d in store.dry_runs("deploy", "pk", ok=False)] == ["d1"]
    assert [d["id"] for d in store.dry_runs("deploy", "pk", limit=1)] == ["d2"]


# -- concurrency: many processes, one store ------------------------------------------------

CLAIMER = """
import sys, time
from warden.state import open_store
location, me, rounds, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
won = taken = 0
with open_store(location) as s:
    for i in range(rounds):
        with s.transaction():                      # idempotency: check, then claim
            if s.idem_get("once") is None:
                s.idem_put("once", f"{me}-{i}", time.time())
                won += 1
        with s.transaction():                      # rate limit: count, then take
            if s.rate_count("k", 0.0) < limit:
                s.rate_take("k", time.time(), f"{me}-{i}")
                taken += 1
print(won, taken)
"""


def test_claims_are_exact_under_concurrency(store_location: str) -> None:
    open_store(store_location).close()  # create the schema before the race
    procs = [_spawn(CLAIMER, store_location, f"p{n}", "15", "7") for n in range(6)]
    results = [tuple(map(int, out.split())) for out in _finish(procs)]
    assert sum(won for won, _ in results) == 1
    assert sum(taken for _, taken in results) == 7
    with open_store(store_location) as s:
        assert s.rate_count("k", 0.0) == 7


APPENDER = """
import sys
from warden import audit
from warden.state import open_store
with open_store(sys.argv[1]) as s:
    for i in range(int(sys.argv[3])):
        audit.append(s, kind="k", actor=sys.argv[2], action=None, record={"i": i})
"""


def test_concurrent_appenders_form_one_chain(store_location: str) -> None:
    open_store(store_location).close()
    _finish([_spawn(APPENDER, store_location, f"w{n}", "25") for n in range(6)])
    with open_store(store_location) as s:
        result = audit.verify(s)
        assert result.ok, result.problem
        assert result.count == 150
        assert sorted(r["seq"] for r in audit.export(s)) == list(range(1, 151))


def test_concurrent_first_open(store_location: str) -> None:
    code = """
    import sys
    from warden.state import open_store
    with open_store(sys.argv[1]) as s:
        s.record_event("s", "PostToolUse", None, {"p": sys.argv[2]})
        print(s.schema_version())
    """
    outs = _finish([_spawn(code, store_location, str(n)) for n in range(5)])
    assert len({o.strip() for o in outs}) == 1
    with open_store(store_location) as s:
        assert len(s.session_events("s")) == 5


# -- parity: same calls, same answers ------------------------------------------------------


def _script(s: Any) -> dict[str, Any]:
    """A fixed sequence of calls; every answer except wall-clock stamps."""
    out: dict[str, Any] = {}
    out["event_ids"] = [s.record_event("s", "PostToolUse", "Read", {"i": i}, ts=float(i))
                        for i in range(3)]
    out["events"] = [(e.id, e.ts, e.event, e.tool, e.data) for e in s.session_events("s")]
    out["sessions"] = [(x.session_id, x.events, x.first_ts, x.last_ts) for x in s.sessions()]
    s.put("k", {"a": [1, 2.5, None, True]})
    out["get"] = s.get("k")
    out["delete"] = [s.delete("k"), s.delete("k")]
    for i in range(3):
        audit.append(s, kind="k", actor="a", action="x", record={"i": i}, ts=float(i))
    out["audit"] = list(audit.export(s))
    out["verify"] = audit.verify(s)
    s.execution_insert(_execution("x1", ended=None, pid=42, exit_code=None))
    out["execution"] = s.execution_get("x1")
    out["set_status"] = s.execution_set_status("x1", ["started"], status="succeeded",
                                               exit_code=0)
    out["executions"] = s.executions(action="deploy", statuses=["succeeded"], limit=5)
    s.step_insert({"execution_id": "x1", "idx": 0, "name": "a", "kind": "run", "status": "ok"})
    out["steps"] = s.steps("x1")
    s.rate_take("r", 1.0, "x1")
    out["rate"] = [s.rate_count("r", 0.0), s.rate_oldest("r", 0.0), s.rate_oldest("r", 2.0)]
    s.idem_put("i", "x1", 1.0)
    out["idem"] = [s.idem_get("i"), s.idem_release("i", "x1"), s.idem_get("i")]
    _proposal(s, "p1")
    out["approval_ids"] = [s.approval_insert("p1", "approve", "a", 1.0, "", "h"),
                           s.approval_insert("p1", "approve", "b", 1.0, "", "h")]
    out["proposal"] = s.proposal_get("p1")
    out["approvals"] = s.approvals("p1")
    s.dry_run_insert({"id": "d1", "action": "deploy", "params_key": "pk", "action_hash": "h",
                      "plan_hash": "p", "ts": 1.0, "actor": "ci", "ok": True})
    out["dry_runs"] = s.dry_runs("deploy", "pk")
    out["schema_version"] = s.schema_version()
    return json.loads(json.dumps(out, default=repr))


def test_both_engines_answer_alike(tmp_path: Path, pg_database: str) -> None:
    with open_store(str(tmp_path / "s.db")) as lite, open_store(pg_database) as pg:
        a, b = _script(lite), _script(pg)
    assert a == b


def test_pg_store_mirrors_every_public_method() -> None:
    from warden.state_pg import PgStore

    for name, member in inspect.getmembers(state.Store):
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            continue
        assert hasattr(PgStore, name), f"PgStore lacks {name}"
        if callable(member):
            ours = inspect.signature(getattr(PgStore, name))
            theirs = inspect.signature(member)
            assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
                (p.name, p.kind, p.default) for p in theirs.parameters.values()], name


def test_pg_tables_have_every_column(pg_database: str) -> None:
    import psycopg

    expected = {"executions": state.EXECUTION_COLUMNS, "execution_steps": state.STEP_COLUMNS,
                "proposals": state.PROPOSAL_COLUMNS, "approvals": state.APPROVAL_COLUMNS,
                "dry_runs": state.DRY_RUN_COLUMNS}
    open_store(pg_database).close()
    with psycopg.connect(pg_database) as conn:
        for table, columns in expected.items():
            rows = conn.execute("SELECT column_name FROM information_schema.columns"
                                " WHERE table_name = %s", (table,)).fetchall()
            assert set(columns) <= {r[0] for r in rows}, table


def test_pg_migrations_mirror_sqlite_versions() -> None:
    from warden import state_pg

    assert [v for v, _ in state_pg.MIGRATIONS] == [v for v, _ in state.MIGRATIONS]


def test_pg_create_false_and_bad_url(pg_database: str) -> None:
    with pytest.raises(StateError, match="no warden schema"):
        open_store(pg_database, create=False)
    with open_store(pg_database) as s:
        pending = s.pending_migrations()  # type: ignore[attr-defined]
        assert pending == []
    with pytest.raises(StateError, match="PostgreSQL") as info:
        open_store("postgresql://warden:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(info.value)


def test_pg_newer_schema_is_refused(pg_database: str) -> None:
    import psycopg

    open_store(pg_database).close()
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("INSERT INTO warden_migrations VALUES (999, 0, 'future')")
    with pytest.raises(StateError, match="newer than this warden supports"):
        open_store(pg_database)


def test_engine_uses_warden_state_url(pg_database: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import warden

    (tmp_path / "warden.yaml").write_text("version: 1\npolicies: []\n")
    monkeypatch.setenv("WARDEN_STATE", pg_database)
    engine = warden.load(tmp_path, user_policies=False, use_cache=False)
    assert engine.state_location() == pg_database
    engine.store().put("mode", "observe")
    assert engine.effective_mode() == "observe"
    engine.close()
    assert os.listdir(tmp_path) == ["warden.yaml"]  # no SQLite file made
