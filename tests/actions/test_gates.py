"""Every gate kind passing and failing, all failures reported at once, approvals, dry runs,
the kill switch and observe mode: the installed warden as a subprocess, real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "decision.schema.json")
                    .read_text(encoding="utf-8"))

WED_10 = "2026-11-25T10:00:00Z"  # a Wednesday


def policy(gates: str, action_gates: str, *, extra: str = "", params: str = "") -> str:
    """One action `act` writing out/{params.name} (default name x), with the given gates."""
    return f"""\
version: 1
{extra}
actions:
  act:
    description: test action
    risk: high
    params:
      type: object
      additionalProperties: true
      properties:
        name: {{type: string}}
        env: {{enum: [staging, prod], default: staging}}
        code: {{type: integer}}
{params}
    gates: {action_gates}
    steps:
      - name: write
        write_file: {{path: "out/{{params.name}}", content: "{{params.env}}\\n"}}
gates:
{gates}
"""


def gate(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found = [g for g in doc["gates"] if g["name"] == name]
    assert found, (name, doc["gates"])
    return found[0]


def check_schema(doc: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(doc)


def test_kill_switch_gate_pass_and_fail(proj: Any) -> None:
    proj.policy(policy("  ks: {kind: kill_switch}", "[ks]"))
    doc = proj.json("run", "act", "-p", "name=a", "-p", "env=staging", code=0)
    check_schema(doc)
    assert gate(doc, "ks") == {"name": "ks", "kind": "kill_switch", "passed": True,
                               "detail": "the kill switch is off"}
    assert (proj.root / "out" / "a").read_text() == "staging\n"
    on = proj.json("kill-switch", "on", "--reason", "incident 7", code=0)
    assert on["on"] is True and on["id"] == "kill-switch"
    doc = proj.json("run", "act", "-p", "name=b", "-p", "env=staging", code=2)
    check_schema(doc)
    g = gate(doc, "ks")
    assert not g["passed"] and "incident 7" in g["detail"]
    assert doc["decision"] == "deny" and doc["execution"]["status"] == "aborted"
    assert not (proj.root / "out" / "b").exists()
    assert proj.json("kill-switch", "status", code=0)["on"] is True
    proj.json("kill-switch", "off", code=0)
    proj.json("run", "act", "-p", "name=b", "-p", "env=staging", code=0)


def test_kill_switch_blocks_action_without_gate(proj: Any) -> None:
    proj.policy(policy("  unused: {kind: kill_switch}", "[]"))
    proj.json("kill-switch", "on", code=0)
    doc = proj.json("run", "act", "-p", "name=a", code=2)
    assert gate(doc, "kill-switch")["passed"] is False
    assert not (proj.root / "out").exists()
    hist = proj.json("history", code=0)["executions"]
    assert hist[0]["status"] == "aborted" and "kill switch" in hist[0]["reasons"][0]


def test_condition_gate(proj: Any) -> None:
    proj.policy(policy("  staging-only: {kind: condition, when: {field: params.env, "
                       "equals: staging}}", "[staging-only]"))
    assert gate(proj.json("run", "act", "-p", "name=a", "-p", "env=staging", code=0),
                "staging-only")["passed"]
    doc = proj.json("run", "act", "-p", "name=b", "-p", "env=prod", code=2)
    g = gate(doc, "staging-only")
    assert not g["passed"] and "does not hold" in g["detail"]
    assert not (proj.root / "out" / "b").exists()


def test_time_window_gate(proj: Any) -> None:
    proj.policy(policy('  office: {kind: time_window, days: [mon, tue, wed, thu, fri], '
                       'after: "09:00", before: "17:00", tz: UTC}', "[office]"))
    ok = proj.json("run", "act", "-p", "name=a", env={"WARDEN_NOW": WED_10}, code=0)
    assert "inside the window" in gate(ok, "office")["detail"]
    for now in ("2026-11-28T10:00:00Z", "2026-11-25T17:00:00Z", "2026-11-25T08:59:00Z"):
        doc = proj.json("run", "act", "-p", "name=b", env={"WARDEN_NOW": now}, code=2)
        assert "outside the window" in gate(doc, "office")["detail"], now
    assert not (proj.root / "out" / "b").exists()


def test_command_gate(proj: Any) -> None:
    check = proj.py("import sys; sys.exit(int(sys.argv[1]))", "{params.code}")
    proj.policy(policy(f"  check: {{kind: command, run: {check}, timeout: 10s}}", "[check]"))
    ok = proj.json("run", "act", "-p", "name=a", "-p", "code=0", code=0)
    assert gate(ok, "check")["passed"]
    doc = proj.json("run", "act", "-p", "name=b", "-p", "code=3", code=2)
    g = gate(doc, "check")
    assert not g["passed"] and "exited 3" in g["detail"]


def test_rate_limit_gate(proj: Any) -> None:
    proj.policy(policy('  rate: {kind: rate_limit, key: "act:{params.env}", max: 2, per: 1h}',
                       "[rate]"))
    for i in range(2):
        doc = proj.json("run", "act", "-p", f"name=r{i}", "-p", "env=staging", code=0)
        assert gate(doc, "rate")["detail"].startswith(f"{i}/2 runs")
    doc = proj.json("run", "act", "-p", "name=r3", "-p", "env=staging", code=2)
    assert "rate limit reached: 2/2" in gate(doc, "rate")["detail"]
    assert not (proj.root / "out" / "r3").exists()
    # another key has its own budget
    proj.json("run", "act", "-p", "name=p1", "-p", "env=prod", code=0)
    # the window slides: an hour later the slots are free again
    later = "2099-01-01T00:00:00Z"
    proj.json("run", "act", "-p", "name=r4", "-p", "env=staging", env={"WARDEN_NOW": later},
              code=0)


def test_rate_limit_slots_older_than_every_window_are_deleted(proj: Any) -> None:
    """The slot table does not grow forever: a run drops its key's slots older than the
    longest window of the plan (at least 30 days)."""
    import sqlite3

    proj.policy(policy('  rate: {kind: rate_limit, key: "act", max: 5, per: 1h}', "[rate]"))
    for i, now in enumerate(["2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z",
                             "2026-01-20T00:00:00Z", "2026-03-01T00:00:00Z"]):
        proj.json("run", "act", "-p", f"name=s{i}", env={"WARDEN_NOW": now}, code=0)

    def slots() -> list[str]:
        with sqlite3.connect(proj.root / ".warden" / "state.db") as db:
            rows = db.execute("SELECT ts FROM rate_slots WHERE key = 'act' ORDER BY ts")
            return [str(r[0]) for r in rows]

    assert len(slots()) == 1  # March: January's three are beyond 30 days
    proj.json("run", "act", "-p", "name=s9", env={"WARDEN_NOW": "2026-03-02T00:00:00Z"},
              code=0)
    assert len(slots()) == 2


def test_rate_limit_ignores_aborted_runs_and_dry_runs(proj: Any) -> None:
    proj.policy(policy('  rate: {kind: rate_limit, max: 1, per: 1d}\n'
                       '  cond: {kind: condition, when: {field: params.env, equals: staging}}',
                       "[rate, cond]"))
    proj.json("run", "act", "-p", "name=a", "-p", "env=prod", code=2)  # aborted by cond
    proj.json("run", "act", "-p", "name=a", "-p", "env=staging", "--dry-run", code=0)
    proj.json("run", "act", "-p", "name=a", "-p", "env=staging", "--dry-run", code=0)
    ok = proj.json("run", "act", "-p", "name=a", "-p", "env=staging", code=0)
    assert gate(ok, "rate")["detail"].startswith("0/1 runs")
    proj.json("run", "act", "-p", "name=b", "-p", "env=staging", code=2)


def test_idempotent_gate_and_rollback_frees_key(proj: Any) -> None:
    proj.policy(policy("  once: {kind: idempotent}", "[once]"))
    first = proj.json("run", "act", "-p", "name=a", "-p", "env=staging", code=0)
    xid = first["execution"]["id"]
    assert first["execution"]["idempotency_key"].startswith("act:{")
    doc = proj.json("run", "act", "-p", "name=a", "-p", "env=staging", code=2)
    g = gate(doc, "once")
    assert not g["passed"] and xid in g["detail"] and "succeeded" in g["detail"]
    # different params: different default key
    proj.json("run", "act", "-p", "name=b", "-p", "env=staging", code=0)
    rb = proj.json("rollback", xid, code=0)
    assert rb["status"] == "rolled_back"
    assert not (proj.root / "out" / "a").exists()
    proj.json("run", "act", "-p", "name=a", "-p", "env=staging", code=0)
    assert (proj.root / "out" / "a").exists()
    # rolling back something not succeeded is refused
    assert proj.run("rollback", xid).returncode == 2


def test_idempotent_window(proj: Any) -> None:
    proj.policy(policy("  once: {kind: idempotent, window: 1h}", "[once]"))
    proj.json("run", "act", "-p", "name=a", env={"WARDEN_NOW": "2026-11-25T10:00:00Z"}, code=0)
    proj.json("run", "act", "-p", "name=a", env={"WARDEN_NOW": "2026-11-25T10:30:00Z"}, code=2)
    proj.json("run", "act", "-p", "name=a", env={"WARDEN_NOW": "2026-11-25T11:30:00Z"}, code=0)


def test_dry_run_gate_satisfied_expired_and_voided(proj: Any) -> None:
    text = policy("  dr: {kind: dry_run, max_age: 1h}", "[dr]")
    proj.policy(text)
    t0, t30, t120 = "2026-11-25T10:00:00Z", "2026-11-25T10:30:00Z", "2026-11-25T12:00:00Z"
    doc = proj.json("run", "act", "-p", "name=a", env={"WARDEN_NOW": t0}, code=2)
    assert "no successful dry run" in gate(doc, "dr")["detail"]
    dry = proj.json("run", "act", "-p", "name=a", "--dry-run", env={"WARDEN_NOW": t0}, code=0)
    check_schema(dry)
    assert dry["execution"]["dry_run"] is True and dry["execution"]["status"] == "ok"
    assert not (proj.root / "out").exists()  # a dry run changes nothing
    # other params are not covered by that dry run
    doc = proj.json("run", "act", "-p", "name=other", env={"WARDEN_NOW": t30}, code=2)
    assert not gate(doc, "dr")["passed"]
    # too old
    doc = proj.json("run", "act", "-p", "name=a", env={"WARDEN_NOW": t120}, code=2)
    assert "older than max_age 1h" in gate(doc, "dr")["detail"]
    assert not (proj.root / "out").exists()
    # fresh enough
    ok = proj.json("run", "act", "-p", "name=a", env={"WARDEN_NOW": t30}, code=0)
    assert gate(ok, "dr")["passed"] and dry["execution"]["id"] in gate(ok, "dr")["detail"]
    # a new dry run, then the action is edited: the dry run is void
    proj.json("run", "act", "-p", "name=b", "--dry-run", env={"WARDEN_NOW": t0}, code=0)
    proj.policy(text.replace('content: "{params.env}\\n"', 'content: "edited {params.env}\\n"'))
    doc = proj.json("run", "act", "-p", "name=b", env={"WARDEN_NOW": t30}, code=2)
    assert "another version of the action" in gate(doc, "dr")["detail"]
    assert not (proj.root / "out" / "b").exists()


def test_approval_flow(proj: Any) -> None:
    proj.policy(policy("  two: {kind: approval, approvals: 2}", "[two]"))
    doc = proj.json("run", "act", "-p", "name=a", "--actor", "alice", code=3)
    check_schema(doc)
    assert doc["decision"] == "ask" and gate(doc, "two")["passed"] is False
    pid = doc["proposal"]["id"]
    assert pid in doc["reason"] and doc["proposal"]["status"] == "pending"
    assert not (proj.root / "out").exists()
    # running again without --proposal reuses the open proposal instead of piling up
    again = proj.json("run", "act", "-p", "name=a", "--actor", "alice", code=3)
    assert again["proposal"]["id"] == pid
    self_ok = proj.run("approve", pid, "--by", "alice")
    assert self_ok.returncode == 2 and "cannot approve their own" in self_ok.stderr
    one = proj.json("approve", pid, "--by", "bob", "--note", "lgtm", code=0)
    assert one["status"] == "pending" and one["approvals"][0]["by"] == "bob"
    twice = proj.run("approve", pid, "--by", "bob")
    assert twice.returncode == 2 and "already approved" in twice.stderr
    waiting = proj.json("run", "--proposal", pid, "--actor", "dave", code=3)
    assert "1/2" in gate(waiting, "two")["detail"]
    assert proj.json("approve", pid, "--by", "carol", code=0)["status"] == "approved"
    ran = proj.json("run", "--proposal", pid, "--actor", "dave", code=0)
    assert ran["execution"]["status"] == "succeeded" and ran["execution"]["proposal"] == pid
    assert (proj.root / "out" / "a").exists()
    assert proj.json("show", pid, code=0)["status"] == "executed"
    used = proj.run("run", "--proposal", pid)
    assert used.returncode == 2 and "executed" in used.stderr


def test_approval_void_after_action_edit(proj: Any) -> None:
    text = policy("  one: {kind: approval}", "[one]")
    proj.policy(text)
    pid = proj.json("propose", "act", "-p", "name=a", "--actor", "alice", code=0)["id"]
    proj.json("approve", pid, "--by", "bob", code=0)
    # an unrelated edit (another rule) does not void it ...
    proj.policy(text.replace("version: 1\n", "version: 1\n# a comment\n"))
    # ... but changing what the action does does
    proj.policy(text.replace('content: "{params.env}\\n"', 'content: "other"'))
    refused = proj.run("run", "--proposal", pid, "--format", "json")
    assert refused.returncode == 2
    doc = json.loads(refused.stdout)
    assert "void" in doc["reason"] and "changed since it was proposed" in doc["reason"]
    assert not (proj.root / "out").exists()
    late = proj.run("approve", pid, "--by", "carol")
    assert late.returncode == 2 and "void" in late.stderr


def test_approvers_list_reject_and_cancel(proj: Any) -> None:
    proj.policy(policy("  boss: {kind: approval, approvers: [bob]}", "[boss]"))
    pid = proj.json("propose", "act", "-p", "name=a", "--actor", "alice", code=0)["id"]
    no = proj.run("approve", pid, "--by", "carol")
    assert no.returncode == 2 and "may not approve" in no.stderr
    rej = proj.json("reject", pid, "--by", "bob", "--note", "not now", code=0)
    assert rej["status"] == "rejected" and rej["rejections"][0]["note"] == "not now"
    assert proj.run("run", "--proposal", pid).returncode == 2
    pid2 = proj.json("propose", "act", "-p", "name=b", "--actor", "alice", code=0)["id"]
    assert proj.json("cancel", pid2, code=0)["status"] == "cancelled"
    assert proj.run("approve", pid2, "--by", "bob").returncode == 2
    assert proj.run("approve", "p-nonexistent", "--by", "bob").returncode == 64


def test_approval_when_condition(proj: Any) -> None:
    proj.policy(policy("  prod: {kind: approval, when: {field: params.env, equals: prod}}",
                       "[prod]"))
    doc = proj.json("run", "act", "-p", "name=a", "-p", "env=staging", code=0)
    assert "does not apply" in gate(doc, "prod")["detail"]
    proj.json("run", "act", "-p", "name=b", "-p", "env=prod", code=3)


def test_action_rules_and_every_failure_reported_at_once(proj: Any) -> None:
    check = proj.py("import sys; sys.exit(1)")
    gates = "\n".join([
        "  ks: {kind: kill_switch}",
        "  cond: {kind: condition, when: {field: params.env, equals: staging}}",
        '  office: {kind: time_window, days: [sat], after: "09:00", before: "10:00"}',
        f"  check: {{kind: command, run: {check}}}",
        "  dr: {kind: dry_run}",
        "  ok-gate: {kind: condition, when: {field: params.name, equals: a}}",
    ])
    rules = """\
policies:
  - name: no-prod
    event: action
    when: {field: params.env, equals: prod}
    effect: deny
    message: "no prod deploys of {params.name}"
  - name: note
    event: action
    effect: warn
    message: "running {action}"
"""
    proj.policy(policy(gates, "[ks, cond, office, check, dr, ok-gate]", extra=rules))
    proj.json("kill-switch", "on", code=0)
    doc = proj.json("run", "act", "-p", "name=a", "-p", "env=prod",
                    env={"WARDEN_NOW": WED_10}, code=2)
    check_schema(doc)
    failed = {g["name"] for g in doc["gates"] if not g["passed"]}
    assert failed == {"ks", "cond", "office", "check", "dr", "no-prod"}
    assert gate(doc, "ok-gate")["passed"]
    assert gate(doc, "no-prod") == {"name": "no-prod", "kind": "policy", "passed": False,
                                    "detail": "no prod deploys of a"}
    assert doc["matched"][0]["policy"] == "no-prod"
    assert doc["feedback"] == [{"policy": "note", "message": "running act"}]
    assert len(doc["execution"]["reasons"]) == 6
    assert not (proj.root / "out").exists()


def test_ask_rule_needs_approval(proj: Any) -> None:
    rules = """\
policies:
  - name: ask-prod
    event: action
    when: {field: params.env, equals: prod}
    effect: ask
    message: "prod needs a second pair of eyes"
"""
    proj.policy(policy("  ks: {kind: kill_switch}", "[ks]", extra=rules))
    doc = proj.json("run", "act", "-p", "name=a", "-p", "env=prod", "--actor", "al", code=3)
    pid = doc["proposal"]["id"]
    proj.json("approve", pid, "--by", "bo", code=0)
    proj.json("run", "--proposal", pid, code=0)


def test_observe_mode_runs_nothing(proj: Any) -> None:
    proj.policy(policy("  ks: {kind: kill_switch}", "[ks]"))
    assert proj.json("mode", "observe", code=0)["mode"] == "observe"
    doc = proj.json("run", "act", "-p", "name=a", code=2)
    check_schema(doc)
    assert doc["reason"].startswith("observe mode") and doc["enforced"] is False
    assert gate(doc, "ks")["passed"]
    assert not (proj.root / "out").exists()
    status = proj.json("mode", "status", code=0)
    assert status == {"id": "mode", "mode": "observe", "source": "state",
                      "settings_mode": "enforce"}
    proj.json("mode", "enforce", code=0)
    proj.json("run", "act", "-p", "name=a", code=0)


def test_preview_gates_never_block_dry_run_or_propose(proj: Any) -> None:
    gates = "\n".join([
        "  appr: {kind: approval}",
        "  once: {kind: idempotent}",
        "  rate: {kind: rate_limit, max: 1, per: 1d}",
        "  dr: {kind: dry_run}",
        "  cond: {kind: condition, when: {field: params.env, equals: staging}}",
    ])
    proj.policy(policy(gates, "[appr, once, rate, dr, cond]"))
    doc = proj.json("run", "act", "-p", "name=a", "-p", "env=staging", "--dry-run", code=0)
    assert doc["decision"] == "allow"
    assert not gate(doc, "appr")["passed"] and not gate(doc, "dr")["passed"]
    assert "a real run would still need" in doc["reason"]
    # other gates still block a dry run
    blocked = proj.json("run", "act", "-p", "name=a", "-p", "env=prod", "--dry-run", code=2)
    assert not gate(blocked, "cond")["passed"]
    prop = proj.json("propose", "act", "-p", "name=a", "-p", "env=staging", code=0)
    assert prop["status"] == "pending" and prop["dry_run"]["status"] == "ok"
    assert proj.run("propose", "act", "-p", "name=a", "-p", "env=prod").returncode == 2
    assert not (proj.root / "out").exists()
