"""`then: run` side effects: after the decision, never changing it, reported in the decision."""

from __future__ import annotations

import time

from hookutil import HookProject, bash

RUNS = """\
version: 1
settings:
  mode: {mode}
policies:
  - name: log-blocked
    event: PreToolUse
    tool: Bash
    when: {{field: tool_input.command, starts_with: "rm "}}
    effect: deny
    message: "no rm"
    then:
      - run: ["sh", "-c", "echo out:$0; echo err:$0 >&2; exit 3", "{{tool_input.command}}"]
      - run: ["printf", "%s|", "{{tool_input.command}}", "$HOME", "{{missing.field}}"]
      - run: ["no-such-program-warden-test"]
      - run: ["sh", "-c", "sleep 5; touch late-marker"]
        background: true
        timeout: 30s
      - run: ["sh", "-c", "echo env:$SECRET_TOKEN:$HOME"]
      - record: {{key: rm, value: "{{tool_input.command}}"}}
  - name: chatty
    event: PreToolUse
    tool: Bash
    when: {{field: tool_input.command, equals: "chatty"}}
    effect: warn
    message: "chatty"
    then:
      - run: ["sh", "-c", "yes 0123456789 | head -c 100000"]
      - run: ["sleep", "10"]
        timeout: 1s
"""


def _effects(r) -> list[dict]:
    assert r.code in (0, 2), r.stderr
    return r.json["side_effects"]


def test_run_output_is_captured_and_failures_reported(hp: HookProject) -> None:
    hp.policy(RUNS.format(mode="enforce"))
    start = time.monotonic()
    r = hp.generic(bash("rm -rf build"), env={"SECRET_TOKEN": "s3cret"})
    elapsed = time.monotonic() - start
    assert r.code == 2  # the decision is deny, whatever the side effects did
    assert r.json["decision"] == "deny" and r.json["reason"] == "no rm"
    first, missing, absent, background, env, record = _effects(r)
    assert first == {"policy": "log-blocked", "kind": "run", "ok": False,
                     "detail": "'sh' exited 3", "exit_code": 3, "stdout": "out:rm -rf build\n",
                     "stderr": "err:rm -rf build\n", "background": False}
    # a missing field refuses the whole command; "$HOME" is never expanded (no shell)
    assert missing["ok"] is False and missing["exit_code"] is None
    assert "missing.field" in missing["detail"] and missing["stdout"] == ""
    assert absent["ok"] is False and "could not start" in absent["detail"]
    assert background["ok"] is True and background["background"] is True
    assert background["exit_code"] is None
    # a minimal environment: no SECRET_TOKEN, HOME kept
    assert env["ok"] is True
    assert env["stdout"] == f"env::{hp.home}\n"
    assert record == {"policy": "log-blocked", "kind": "record", "ok": True,
                      "detail": "recorded rm"}
    # background work did not delay the answer
    assert elapsed < 4.5
    assert not (hp.root / "late-marker").exists()


def test_dollar_home_is_literal(hp: HookProject) -> None:
    hp.policy("""\
        version: 1
        policies:
          - name: p
            event: PreToolUse
            effect: warn
            message: m
            then:
              - run: ["printf", "%s|", "$HOME", "{tool_input.command}", "; echo hi"]
        """)
    r = hp.generic(bash("a b"))
    (only,) = _effects(r)
    assert only["stdout"] == "$HOME|a b|; echo hi|"
    assert only["ok"] is True and only["exit_code"] == 0


def test_output_tail_and_timeout(hp: HookProject) -> None:
    hp.policy(RUNS.format(mode="enforce"))
    start = time.monotonic()
    r = hp.generic(bash("chatty"))
    assert time.monotonic() - start < 8
    assert r.code == 0 and r.json["decision"] == "allow"
    big, slow = _effects(r)
    assert big["ok"] is True
    assert len(big["stdout"]) <= 4096 + 3 and big["stdout"].startswith("...")
    assert slow["ok"] is False and slow["exit_code"] is None
    assert "timed out after 1s" in slow["detail"]


def test_background_run_does_not_delay_the_hook(hp: HookProject) -> None:
    hp.policy(RUNS.format(mode="enforce"))
    start = time.monotonic()
    r = hp.hook(bash("rm -rf build"))
    assert time.monotonic() - start < 4.5
    assert r.json["hookSpecificOutput"]["permissionDecision"] == "deny"
    deadline = time.monotonic() + 20
    while not (hp.root / "late-marker").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (hp.root / "late-marker").exists()  # it ran, in the project root


def test_observe_mode_records_but_does_not_run(hp: HookProject) -> None:
    hp.policy(RUNS.format(mode="observe"))
    r = hp.generic(bash("rm -rf build", session_id="s1"))
    assert r.code == 0 and r.json["enforced"] is False
    effects = _effects(r)
    runs = [e for e in effects if e["kind"] == "run"]
    assert all(e["detail"] == "not run: observe mode" or "missing" in e["detail"] for e in runs)
    assert not any(e["stdout"] for e in runs)
    (record,) = [e for e in effects if e["kind"] == "record"]
    assert record["ok"] is True
    shown = hp.run("state", "show", "--session", "s1", "--format", "json").json
    assert [e["data"] for e in shown] == [{"event": "record", "key": "rm", "value": "rm -rf build"}]


def test_decisions_with_side_effects_match_the_schema(hp: HookProject) -> None:
    import json

    import jsonschema
    from hookutil import REPO

    schema = json.loads((REPO / "schema" / "decision.schema.json").read_text())
    hp.policy(RUNS.format(mode="enforce"))
    for inp in (bash("rm -rf build"), bash("chatty"), bash("ls")):
        doc = hp.generic(inp).json
        jsonschema.validate(doc, schema)
