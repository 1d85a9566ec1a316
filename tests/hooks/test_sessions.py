"""Session state through real hook calls: recording, `state:` conditions, `record` items,
the three examples of the issue, `warden state`, pruning, concurrency."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess

import pytest
from hookutil import EXAMPLES, SESSION, WARDEN, HookProject, bash, event, file_tool

T0 = "2026-03-02T10:00:00Z"


def at(minutes: float, base: str = "2026-03-02T10:00") -> dict[str, str]:
    """$WARDEN_NOW `minutes` after 10:00 on 2026-03-02 (UTC)."""
    total = int(minutes * 60)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return {"WARDEN_NOW": f"2026-03-02T{10 + h:02d}:{m:02d}:{s:02d}Z"}


def decision(r) -> str | None:
    assert r.code == 0, r.stderr
    out = r.json
    return out.get("hookSpecificOutput", {}).get("permissionDecision")


def events_of(hp: HookProject, session: str = SESSION) -> list[dict]:
    r = hp.run("state", "show", "--session", session, "--format", "json")
    assert r.code == 0, r.stderr
    return r.json


@pytest.fixture
def guardrails(hp: HookProject) -> HookProject:
    """The project uses examples/agent-guardrails/warden.yaml as its policy."""
    shutil.copy(EXAMPLES / "agent-guardrails" / "warden.yaml", hp.root / "warden.yaml")
    return hp


# ----------------------------------------------------------------------------- recording


def test_recorded_events_after_their_own_evaluation(hp: HookProject) -> None:
    hp.policy("""\
        version: 1
        policies:
          - name: second-prompt
            event: UserPromptSubmit
            when: {state: {event: UserPromptSubmit}}
            effect: deny
            message: "one prompt per session"
        """)
    first = hp.hook(event("UserPromptSubmit"), env=at(0))
    assert first.json == {}  # it does not see itself
    second = hp.hook(event("UserPromptSubmit", prompt="again"), env=at(1))
    assert second.json == {"decision": "block", "reason": "one prompt per session"}
    recorded = events_of(hp)
    assert [e["event"] for e in recorded] == ["UserPromptSubmit", "UserPromptSubmit"]
    assert recorded[0]["data"] == event("UserPromptSubmit")  # the whole input
    assert recorded[0]["time"] == "2026-03-02T10:00:00Z"
    # other sessions are separate
    other = hp.hook(event("UserPromptSubmit", session_id="other"), env=at(2))
    assert other.json == {}


def test_which_events_are_recorded(hp: HookProject) -> None:
    hp.policy("version: 1\npolicies: []\n")
    for name in ("PreToolUse", "PostToolUse", "PostToolUseFailure", "UserPromptSubmit", "Stop",
                 "SessionStart", "Notification", "PermissionRequest"):
        assert hp.hook(event(name)).code == 0
    recorded = events_of(hp)
    assert [(e["event"], e["tool"]) for e in recorded] == [
        ("PostToolUse", "Write"), ("PostToolUseFailure", "Bash"), ("UserPromptSubmit", None)]


def test_state_db_is_private(hp: HookProject) -> None:
    hp.policy("version: 1\npolicies: []\n")
    assert hp.hook(event("PostToolUse")).code == 0
    assert stat.S_IMODE(hp.state_db.stat().st_mode) == 0o600
    for companion in (hp.state_db.with_name("state.db-wal"), hp.state_db.with_name("state.db-shm")):
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) == 0o600


def test_settings_state_and_warden_state(hp: HookProject, tmp_path) -> None:
    hp.policy("version: 1\nsettings: {state: var/agent.db}\npolicies: []\n")
    assert hp.hook(event("PostToolUse")).code == 0
    assert (hp.root / "var" / "agent.db").exists()
    elsewhere = tmp_path / "elsewhere.db"
    assert hp.hook(event("PostToolUse"), env={"WARDEN_STATE": str(elsewhere)}).code == 0
    assert elsewhere.exists()


def test_user_policies_alone_keep_state_out_of_the_working_directory(hp: HookProject,
                                                                      tmp_path) -> None:
    """With user policies and no project files, recording a session must not create
    ``.warden/`` in whatever directory the agent works in: the state lives under
    $XDG_STATE_HOME/warden/, and a state: condition still sees it."""
    user_dir = hp.config / "warden"
    user_dir.mkdir(parents=True)
    (user_dir / "mine.yaml").write_text(
        "version: 1\npolicies:\n"
        "  - name: read-before-edit\n    tool: Edit\n"
        "    when: {not: {state: {event: PostToolUse, tool: Read}}}\n"
        "    effect: deny\n    message: read it first\n",
        encoding="utf-8",
    )
    state_home = tmp_path / "state-home"
    env = {"XDG_STATE_HOME": str(state_home)}
    assert not (hp.root / "warden.yaml").exists()
    assert hp.hook(file_tool("Edit", "/tmp/a.py"), env=env).code in (0, 2)
    assert hp.hook(file_tool("Read", "/tmp/a.py", "PostToolUse"), env=env).code == 0
    out = hp.hook(file_tool("Edit", "/tmp/a.py"), env=env)
    assert "deny" not in out.stdout, out.stdout  # the Read was recorded and is seen
    assert not (hp.root / ".warden").exists()
    assert (state_home / "warden" / "state.db").exists()


# ------------------------------------------------------------- the three state examples


def test_example_read_before_edit(guardrails: HookProject) -> None:
    hp = guardrails
    path = str(hp.root / "src" / "app.py")
    r = hp.hook(file_tool("Edit", path))
    assert decision(r) == "deny"
    assert r.json["hookSpecificOutput"]["permissionDecisionReason"] == \
        f"Read {path} before editing it."
    # reading another file does not help
    assert hp.hook(file_tool("Read", str(hp.root / "README.md"), "PostToolUse")).code == 0
    assert decision(hp.hook(file_tool("Edit", path))) == "deny"
    # reading this one does
    assert hp.hook(file_tool("Read", path, "PostToolUse")).code == 0
    assert hp.hook(file_tool("Edit", path)).json == {}
    # ...but only in this session
    assert decision(hp.hook(file_tool("Edit", path, session_id="other"))) == "deny"


def test_example_read_before_overwrite(guardrails: HookProject) -> None:
    hp = guardrails
    existing = hp.write("notes.txt", "old\n")
    assert decision(hp.hook(file_tool("Write", str(existing)))) == "deny"
    assert hp.hook(file_tool("Write", str(hp.root / "new.txt"))).json == {}
    hp.hook(file_tool("Read", str(existing), "PostToolUse"))
    assert hp.hook(file_tool("Write", str(existing))).json == {}


def test_example_tests_since_last_edit_before_commit(guardrails: HookProject) -> None:
    hp = guardrails
    commit = bash('git commit -m "wip"')
    assert hp.hook(commit).json == {}  # nothing edited yet
    hp.hook(file_tool("Edit", str(hp.root / "app.py"), "PostToolUse"), env=at(1))
    r = hp.hook(commit, env=at(2))
    assert decision(r) == "deny"
    assert "Run the tests" in r.json["hookSpecificOutput"]["permissionDecisionReason"]
    hp.hook(bash("python -m pytest -q", "PostToolUse"), env=at(3))
    assert hp.hook(commit, env=at(4)).json == {}
    # a new edit after the test run: tests again
    hp.hook(file_tool("Write", str(hp.root / "b.py"), "PostToolUse"), env=at(5))
    assert decision(hp.hook(commit, env=at(6))) == "deny"
    hp.hook(bash("make test", "PostToolUse"), env=at(7))
    assert hp.hook(commit, env=at(8)).json == {}


def test_example_stop_sends_agent_back_to_test(guardrails: HookProject) -> None:
    hp = guardrails
    hp.hook(file_tool("Edit", str(hp.root / "app.py"), "PostToolUse"), env=at(1))
    r = hp.hook(event("Stop"), env=at(2))
    assert r.json["decision"] == "block"
    assert hp.hook(event("Stop", stop_hook_active=True), env=at(3)).json == {}


def test_example_at_most_three_failed_pushes_in_ten_minutes(guardrails: HookProject) -> None:
    hp = guardrails
    push = bash("git push origin feature/dry-run")
    for minute in (0, 2, 4):
        assert hp.hook(push, env=at(minute)).json == {}
        hp.hook(bash("git push origin feature/dry-run", "PostToolUseFailure"),
                env=at(minute + 0.5))
    r = hp.hook(push, env=at(6))
    assert decision(r) == "deny"
    assert "failed 3 times" in r.json["hookSpecificOutput"]["permissionDecisionReason"]
    # successful pushes and other commands do not count; the window slides
    assert hp.hook(push, env=at(10.4)).json != {}  # the 0.5 failure is still inside
    assert hp.hook(push, env=at(10.6)).json == {}  # 10:00:30 dropped out of the window
    # a PostToolUse whose output shows git's rejection counts too
    hp.hook(bash("git push origin feature/dry-run", "PostToolUse",
                 tool_response={"stdout": "", "stderr": "error: failed to push some refs",
                                "interrupted": False}), env=at(11))
    assert decision(hp.hook(push, env=at(12))) == "deny"


# --------------------------------------------------------------------- record side effects

RECORDING = """\
version: 1
policies:
  - name: note-deploys
    event: PostToolUse
    tool: Bash
    when: {field: tool_input.command, starts_with: "./deploy "}
    effect: warn
    message: "deploy noted"
    then:
      - record: {key: "deployed:{tool_input.command}", value: {released: true}}
      - record: {key: last_deploy, value: "{tool_input.command}"}
  - name: one-deploy-per-session
    event: PreToolUse
    tool: Bash
    when:
      all:
        - {field: tool_input.command, starts_with: "./deploy "}
        - state:
            event: record
            where: {field: key, equals: last_deploy}
    effect: deny
    message: "already deployed in this session"
"""


def test_record_side_effect_is_queried_by_a_later_state_condition(hp: HookProject) -> None:
    hp.policy(RECORDING)
    deploy = bash("./deploy prod")
    assert hp.hook(deploy, env=at(0)).json == {}
    r = hp.hook(bash("./deploy prod", "PostToolUse"), env=at(1))
    assert r.json == {"hookSpecificOutput": {"hookEventName": "PostToolUse",
                                             "additionalContext": "deploy noted"}}
    assert decision(hp.hook(deploy, env=at(2))) == "deny"
    assert hp.hook(deploy, env=at(3), ).json != {}
    assert hp.hook(bash("./deploy prod", session_id="fresh"), env=at(3)).json == {}
    recorded = events_of(hp)
    records = [e for e in recorded if e["event"] == "record"]
    assert [r["data"] for r in records] == [
        {"event": "record", "key": "deployed:./deploy prod", "value": {"released": True}},
        {"event": "record", "key": "last_deploy", "value": "./deploy prod"},
    ]
    assert recorded[-1]["event"] == "PostToolUse"  # the event itself after its records


def test_record_in_generic_decision(hp: HookProject) -> None:
    hp.policy(RECORDING)
    r = hp.generic(bash("./deploy prod", "PostToolUse"))
    assert r.code == 0, r.stderr
    effects = r.json["side_effects"]
    assert [(e["kind"], e["ok"], e["detail"]) for e in effects] == [
        ("record", True, "recorded deployed:./deploy prod"),
        ("record", True, "recorded last_deploy")]
    no_session = bash("./deploy prod", "PostToolUse")
    del no_session["session_id"]
    r = hp.generic(no_session)
    assert [e["ok"] for e in r.json["side_effects"]] == [False, False]
    assert "session_id" in r.json["side_effects"][0]["detail"]


def test_blocked_commands_recorded_by_the_example(guardrails: HookProject) -> None:
    hp = guardrails
    r = hp.hook(bash("rm -rf /"))
    assert decision(r) == "deny"
    records = [e["data"] for e in events_of(hp) if e["event"] == "record"]
    assert records == [{"event": "record", "key": "blocked_commands", "value": "rm -rf /"}]


# ------------------------------------------------------------------------ warden state


def test_state_show_clear(hp: HookProject) -> None:
    hp.policy("version: 1\npolicies: []\n")
    hp.hook(bash("pytest -q", "PostToolUse"), env=at(0))
    hp.hook(event("UserPromptSubmit"), env=at(1))
    hp.hook(event("UserPromptSubmit", session_id="s2"), env=at(2))
    r = hp.run("state", "show")
    assert r.code == 0
    assert SESSION in r.stdout and "s2" in r.stdout
    r = hp.run("state", "show", "--format", "json")
    assert {s["session_id"]: s["events"] for s in r.json} == {SESSION: 2, "s2": 1}
    r = hp.run("state", "show", "--session", SESSION)
    lines = r.stdout.splitlines()
    assert lines[0] == f"session {SESSION}: 2 events"
    assert lines[1].startswith("2026-03-02T10:00:00Z  PostToolUse") and "pytest -q" in lines[1]
    assert "Add a --dry-run flag" in lines[2]
    r = hp.run("state", "clear", "--session", SESSION)
    assert (r.code, r.stdout.strip()) == (0, f"cleared session {SESSION}: 2 events deleted")
    assert events_of(hp) == []
    assert len(events_of(hp, "s2")) == 1
    assert hp.run("state", "clear").code == 64  # --session is required


def test_state_show_without_a_store(hp: HookProject) -> None:
    hp.policy("version: 1\npolicies: []\n")
    r = hp.run("state", "show", "--session", "nope")
    assert (r.code, r.stdout.strip()) == (0, "no events recorded for session nope")
    assert not hp.state_db.exists()


def test_state_prune(hp: HookProject) -> None:
    hp.policy("version: 1\nsettings: {state_retention: 7d}\npolicies: []\n")
    hp.hook(event("UserPromptSubmit", session_id="old"), env={"WARDEN_NOW": "2026-03-01T00:00Z"})
    hp.hook(event("UserPromptSubmit", session_id="new"), env={"WARDEN_NOW": "2026-03-05T00:00Z"})
    r = hp.run("state", "prune", "--older-than", "2d", env={"WARDEN_NOW": "2026-03-05T12:00Z"})
    assert r.code == 0 and r.stdout.startswith("pruned 1 event")
    assert [s["session_id"] for s in hp.run("state", "show", "--format", "json").json] == ["new"]
    assert hp.run("state", "prune", "--older-than", "soon").code == 64
    r = hp.run("state", "prune", env={"WARDEN_NOW": "2026-03-20T00:00Z"})  # retention: 7d
    assert r.stdout.startswith("pruned 1 event")


def test_automatic_pruning(hp: HookProject) -> None:
    hp.policy("version: 1\nsettings: {state_retention: 1d}\npolicies: []\n")
    hp.hook(event("UserPromptSubmit", session_id="old"), env={"WARDEN_NOW": "2026-03-01T00:00Z"})
    hp.hook(event("UserPromptSubmit", session_id="mid"), env={"WARDEN_NOW": "2026-03-01T00:30Z"})
    # less than an hour after the last prune: nothing pruned, whatever the age
    hp.hook(event("UserPromptSubmit", session_id="x"), env={"WARDEN_NOW": "2026-03-01T00:40Z"})
    assert len(hp.run("state", "show", "--format", "json").json) == 3
    hp.hook(event("UserPromptSubmit", session_id="new"), env={"WARDEN_NOW": "2026-03-03T00:00Z"})
    assert [s["session_id"] for s in hp.run("state", "show", "--format", "json").json] == ["new"]


# ---------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("rounds", [1, 2])
def test_eight_concurrent_hooks_lose_no_event(hp: HookProject, rounds: int) -> None:
    hp.policy("""\
        version: 1
        policies:
          - name: read-before-edit
            event: PreToolUse
            tool: Edit
            when: {not: {state: {event: PostToolUse, tool: Read}}}
            effect: deny
        """)
    assert hp.hook(bash("true")).code == 0  # caches the plan; the store is created below
    env = hp.full_env()
    expected = 0
    for round_no in range(rounds):
        procs = []
        for i in range(8):
            inp = file_tool("Read", f"/tmp/f{round_no}-{i}.py", "PostToolUse",
                            tool_use_id=f"toolu_{round_no}_{i}")
            p = subprocess.Popen([WARDEN, "hook", "claude"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=hp.root,
                                 env=env)
            procs.append((p, json.dumps(inp).encode()))
        for p, data in procs:
            p.stdin.write(data)
            p.stdin.close()
        for p, _ in procs:
            out, err = p.stdout.read(), p.stderr.read()
            assert p.wait(timeout=60) == 0, err
            assert json.loads(out) == {}
            assert err == b""
        expected += 8
    recorded = events_of(hp)
    assert len(recorded) == expected
    assert sorted(e["data"]["tool_use_id"] for e in recorded) == sorted(
        f"toolu_{r}_{i}" for r in range(rounds) for i in range(8))


def test_huge_strings_are_recorded_head_and_tail(hp: HookProject) -> None:
    hp.policy("""\
        version: 1
        policies:
          - name: after-rejected-push
            event: PreToolUse
            tool: Bash
            when:
              state:
                event: PostToolUse
                where: {field: tool_response.stderr, contains: "! [rejected]"}
            effect: ask
            message: "the last push was rejected"
        """)
    noise = "remote: counting objects\n" * 10_000
    r = hp.hook(bash("git push", "PostToolUse", tool_response={
        "stdout": "", "stderr": noise + " ! [rejected] main -> main (fetch first)\n",
        "interrupted": False}))
    assert r.code == 0
    (recorded,) = events_of(hp)
    stderr = recorded["data"]["tool_response"]["stderr"]
    assert len(stderr) < 17_000
    assert "characters not recorded by warden" in stderr
    assert stderr.startswith("remote: counting objects")
    assert decision(hp.hook(bash("git push"))) == "ask"
