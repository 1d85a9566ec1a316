"""Claims under contention (8 processes at once) and the tamper-evident audit trail."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

APPEND = """
import os, pathlib, time
with open('runs.log', 'a') as fh:
    fh.write(str(os.getpid()) + chr(10))
time.sleep(0.3)
"""


def _race(proj: Any, n: int = 8) -> list[int]:
    procs = [proj.popen("run", "act") for _ in range(n)]
    codes = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode in (0, 2), (p.returncode, out, err)
        codes.append(p.returncode)
    return codes


def _policy(proj: Any, gate: str) -> str:
    return f"""\
version: 1
actions:
  act:
    gates: [g]
    steps:
      - name: append
        run: {proj.py(APPEND)}
gates:
  g: {gate}
"""


def test_eight_processes_run_an_idempotent_action_exactly_once(proj: Any) -> None:
    proj.policy(_policy(proj, "{kind: idempotent}"))
    codes = _race(proj)
    assert sorted(codes) == [0] + [2] * 7
    assert len((proj.root / "runs.log").read_text().splitlines()) == 1
    hist = proj.json("history", code=0)["executions"]
    assert sorted(h["status"] for h in hist) == ["aborted"] * 7 + ["succeeded"]


def test_eight_processes_against_rate_limit_three(proj: Any) -> None:
    proj.policy(_policy(proj, "{kind: rate_limit, max: 3, per: 1h}"))
    codes = _race(proj)
    assert codes.count(0) == 3 and codes.count(2) == 5
    assert len((proj.root / "runs.log").read_text().splitlines()) == 3


# ------------------------------------------------------------------------------ audit


def _history_of_everything(proj: Any) -> None:
    proj.policy(f"""\
version: 1
settings:
  redact: [params.token]
actions:
  act:
    params: {{type: object, properties: {{token: {{type: string}}}}}}
    gates: [appr]
    steps:
      - name: w
        write_file: {{path: "out.txt", content: "x"}}
      - name: boom
        run: {proj.py("import sys; sys.exit(1 if len(sys.argv) > 1 and sys.argv[1] == 'bad'"
                      " else 0)", "{params.token}")}
gates:
  appr: {{kind: approval}}
""")
    pid = proj.json("propose", "act", "-p", "token=s3cret", "--actor", "alice", code=0)["id"]
    proj.json("approve", pid, "--by", "bob", code=0)
    proj.json("run", "--proposal", pid, "--actor", "carol", code=0)
    pid2 = proj.json("propose", "act", "-p", "token=bad", "--actor", "alice", code=0)["id"]
    proj.json("approve", pid2, "--by", "bob", code=0)
    proj.json("run", "--proposal", pid2, code=5)
    proj.json("kill-switch", "on", "--reason", "test", code=0)
    proj.json("kill-switch", "off", code=0)
    proj.json("mode", "observe", code=0)
    proj.json("mode", "enforce", code=0)


def test_audit_records_everything_and_redacts(proj: Any) -> None:
    _history_of_everything(proj)
    ok = proj.json("audit", "verify", code=0)
    assert ok["ok"] is True and ok["count"] > 10
    export = proj.run("audit", "export")
    assert export.returncode == 0
    records = [json.loads(line) for line in export.stdout.splitlines()]
    kinds = {r["kind"] for r in records}
    assert {"proposal.create", "proposal.approve", "dry_run", "run.start", "step",
            "run.end", "rollback.step", "kill_switch", "mode"} <= kinds
    assert "s3cret" not in export.stdout
    start = next(r for r in records if r["kind"] == "run.start")
    assert start["record"]["params"] == {"token": "***"} and start["actor"] == "carol"
    assert next(r for r in records if r["kind"] == "proposal.approve")["actor"] == "bob"
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(records))
    hist = proj.run("history", "--format", "json")
    assert "s3cret" not in hist.stdout
    assert proj.json("audit", "export", code=0)[0]["seq"] == 1


def _copy_state(proj: Any, name: str) -> dict[str, str]:
    """A checkpointed copy of the state database, and the env that points warden at it."""
    db = proj.root / ".warden" / "state.db"
    conn = proj.db()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    target = proj.root.parent / f"{name}.db"
    shutil.copy(db, target)
    return {"WARDEN_STATE": str(target)}


def _tamper(path: str, *statements: str) -> None:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for sql in statements:
        conn.execute(sql)
    conn.close()


TAMPER = {
    "edit": ["UPDATE audit SET actor = 'mallory' WHERE seq = 3"],
    "delete": ["DELETE FROM audit WHERE seq = 4"],
    "reorder": ["UPDATE audit SET seq = -5 WHERE seq = 5",
                "UPDATE audit SET seq = 5 WHERE seq = 6",
                "UPDATE audit SET seq = 6 WHERE seq = -5"],
    "delete-last": ["DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)"],
    "insert": ["INSERT INTO audit (seq, ts, actor, kind, action, record, prev_hash, hash)"
               " SELECT 1000, ts, actor, kind, action, record, 'sha256:x', 'sha256:y'"
               " FROM audit WHERE seq = 2"],
}
FIRST_BAD = {"edit": 3, "delete": 5, "reorder": 5, "insert": 1000}


def test_audit_tampering_is_detected(proj: Any) -> None:
    """Edit, delete, reorder, drop the newest, insert: each on its own copy of the trail."""
    _history_of_everything(proj)
    for how, statements in TAMPER.items():
        env = _copy_state(proj, how)
        _tamper(env["WARDEN_STATE"], *statements)
        proc = proj.run("audit", "verify", env=env)
        assert proc.returncode == 1, (how, proc.stdout, proc.stderr)
        assert "BROKEN" in proc.stdout and "audit record" in proc.stdout
        doc = proj.json("audit", "verify", env=env, code=1)
        assert doc["ok"] is False
        if how in FIRST_BAD:
            assert doc["first_bad_seq"] == FIRST_BAD[how], (how, doc)
    # the untouched original still verifies
    assert proj.json("audit", "verify", code=0)["ok"]


def test_state_commands_work_with_broken_policies(proj: Any) -> None:
    proj.policy("version: 1\nactions: {broken: {}}\n")
    assert proj.run("run", "broken").returncode == 78
    proc = proj.run("kill-switch", "on", "--reason", "policy broken")
    assert proc.returncode == 0 and "warning" in proc.stderr
    assert proj.json("kill-switch", "status", code=0)["on"] is True
    assert proj.json("audit", "verify", code=0)["ok"]


def test_text_output_is_for_people(proj: Any) -> None:
    proj.policy("""\
version: 1
actions:
  act:
    steps:
      - name: w
        write_file: {path: "o.txt", content: "x"}
""")
    run = proj.run("run", "act")
    assert run.returncode == 0
    assert run.stdout.startswith("SUCCEEDED: action 'act' succeeded")
    assert "execution x-" in run.stdout
    dry = proj.run("run", "act", "--dry-run")
    assert "would 1. w: write 1 bytes to o.txt" in dry.stdout
    assert "audit trail intact" in proj.run("audit", "verify").stdout
    assert Path(proj.root / "o.txt").exists()
