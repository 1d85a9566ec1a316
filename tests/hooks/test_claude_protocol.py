"""`warden hook claude` end to end: real protocol events in, protocol answers out."""

from __future__ import annotations

import json

import pytest
from hookutil import ALL_EVENTS, HookProject, bash, event

# How each event is answered when a rule denies it (checked against the Claude Code hooks
# reference): PreToolUse -> permissionDecision, PermissionRequest -> decision.behavior,
# top-level decision "block", exit 2 + stderr, or "cannot be blocked" (systemMessage).
BLOCK = {"UserPromptSubmit", "PostToolUse", "Stop", "SubagentStop", "PreCompact",
         "ConfigChange"}
EXIT2 = {"TaskCreated", "TaskCompleted", "TeammateIdle", "Elicitation", "ElicitationResult",
         "WorktreeCreate"}
CONTEXT = {"PreToolUse", "UserPromptSubmit", "PostToolUse", "PostToolUseFailure",
           "SessionStart", "Setup", "Notification", "SubagentStart"}
UNBLOCKABLE = set(ALL_EVENTS) - BLOCK - EXIT2 - {"PreToolUse", "PermissionRequest"}

DENY_ALL = """\
version: 1
policies:
  - name: deny-everything
    effect: deny
    message: "no {hook_event_name} today"
"""

WARN_ALL = """\
version: 1
policies:
  - name: remind
    effect: warn
    message: "remember the changelog ({hook_event_name})"
"""

NOTHING = """\
version: 1
policies:
  - name: only-rm
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, matches: '\\brm\\b'}
    effect: deny
"""

GUARD = """\
version: 1
settings:
  default: allow
policies:
  - name: warn-sudo
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, starts_with: "sudo "}
    effect: warn
    message: "sudo used: {tool_input.command}"
  - name: no-rm-root
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, matches: 'rm -rf /$'}
    effect: deny
    message: "Refusing: {tool_input.command}"
  - name: ask-push
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, starts_with: "git push"}
    effect: ask
    message: "Push? {tool_input.command}"
  - name: allow-ls
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, equals: "ls"}
    effect: allow
    message: "ls is fine"
  - name: no-secret-prompt
    event: UserPromptSubmit
    when: {field: prompt, contains: "AKIA"}
    effect: deny
    message: "credential in prompt"
  - name: tests-before-stop
    event: Stop
    effect: deny
    message: "run the tests first"
"""


def test_every_fixture_is_a_protocol_event() -> None:
    assert len(ALL_EVENTS) >= 27
    for name in ALL_EVENTS:
        data = event(name)
        assert data["hook_event_name"] == name
        assert isinstance(data["session_id"], str)
        assert data["transcript_path"].endswith(".jsonl")
        assert data["cwd"].startswith("/")


@pytest.mark.parametrize("name", ALL_EVENTS)
def test_nothing_decides_prints_empty_object(hp: HookProject, name: str) -> None:
    hp.policy(NOTHING)
    r = hp.hook(event(name))
    assert r.code == 0, r.stderr
    assert r.stderr == ""
    if name == "WorktreeCreate":  # stdout there is the worktree path: warden prints nothing
        assert r.stdout == ""
    else:
        assert r.json == {}


@pytest.mark.parametrize("name", ALL_EVENTS)
def test_deny_answers_in_each_events_own_way(hp: HookProject, name: str) -> None:
    hp.policy(DENY_ALL)
    r = hp.hook(event(name))
    reason = f"no {name} today"
    if name in EXIT2:
        assert (r.code, r.stdout) == (2, "")
        assert r.stderr.strip() == reason
        return
    assert r.code == 0, r.stderr
    assert r.stderr == ""
    out = r.json
    if name == "PreToolUse":
        assert out == {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                              "permissionDecision": "deny",
                                              "permissionDecisionReason": reason}}
    elif name == "PermissionRequest":
        assert out == {"hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": {"behavior": "deny", "message": reason}}}
    elif name in BLOCK:
        assert out == {"decision": "block", "reason": reason}
    else:
        assert name in UNBLOCKABLE
        assert reason in out["systemMessage"]
        assert "cannot be blocked" in out["systemMessage"]
        assert "decision" not in out
        if name in CONTEXT:
            assert out["hookSpecificOutput"] == {"hookEventName": name,
                                                 "additionalContext": reason}


@pytest.mark.parametrize("name", ALL_EVENTS)
def test_warn_feedback_goes_back_as_context(hp: HookProject, name: str) -> None:
    hp.policy(WARN_ALL)
    r = hp.hook(event(name))
    assert r.code == 0, r.stderr
    text = f"remember the changelog ({name})"
    if name == "WorktreeCreate":
        assert r.json == {"systemMessage": text}
        return
    out = r.json
    if name in CONTEXT:
        assert out == {"hookSpecificOutput": {"hookEventName": name, "additionalContext": text}}
    else:
        assert out == {"systemMessage": text}


def test_unknown_event_is_evaluated_generically(hp: HookProject) -> None:
    hp.policy(NOTHING)
    future = event("Stop", hook_event_name="PostToolBatch", tools=["Bash"])
    r = hp.hook(future)
    assert (r.code, r.json, r.stderr) == (0, {}, "")
    hp.policy(DENY_ALL)
    r = hp.hook(future)
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr.strip() == "no PostToolBatch today"
    # an input without any event name is still just evaluated
    r = hp.hook({"session_id": "x", "tool_name": "Bash"})
    assert r.code == 2
    assert r.stderr.strip() == "no  today"


class TestPreToolUse:
    def test_deny(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(bash("rm -rf /"))
        assert r.code == 0 and r.stderr == ""
        assert r.json == {"hookSpecificOutput": {
            "hookEventName": "PreToolUse", "permissionDecision": "deny",
            "permissionDecisionReason": "Refusing: rm -rf /"}}

    def test_ask(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(bash("git push origin main"))
        assert r.json["hookSpecificOutput"]["permissionDecision"] == "ask"
        assert r.json["hookSpecificOutput"]["permissionDecisionReason"] == \
            "Push? git push origin main"

    def test_explicit_allow_rule(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(bash("ls"))
        assert r.json == {"hookSpecificOutput": {
            "hookEventName": "PreToolUse", "permissionDecision": "allow",
            "permissionDecisionReason": "ls is fine"}}

    def test_default_allow_sends_nothing(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(bash("make build"))
        assert (r.code, r.json, r.stderr) == (0, {}, "")

    def test_default_ask_is_sent(self, hp: HookProject) -> None:
        hp.policy(GUARD.replace("default: allow", "default: ask"))
        r = hp.hook(bash("make build"))
        out = r.json["hookSpecificOutput"]
        assert out["permissionDecision"] == "ask"
        assert "default ask" in out["permissionDecisionReason"]

    def test_default_deny_is_sent(self, hp: HookProject) -> None:
        hp.policy(GUARD.replace("default: allow", "default: deny"))
        r = hp.hook(bash("make build"))
        assert r.code == 0
        assert r.json["hookSpecificOutput"]["permissionDecision"] == "deny"
        # an explicit allow still wins over the default
        assert r.json != hp.hook(bash("ls")).json
        assert hp.hook(bash("ls")).json["hookSpecificOutput"]["permissionDecision"] == "allow"

    def test_feedback_with_a_decision(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(bash("sudo rm -rf /"))
        assert r.json == {"hookSpecificOutput": {
            "hookEventName": "PreToolUse", "permissionDecision": "deny",
            "permissionDecisionReason": "Refusing: sudo rm -rf /",
            "additionalContext": "sudo used: sudo rm -rf /"}}

    def test_feedback_alone(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(bash("sudo make install"))
        assert r.json == {"hookSpecificOutput": {
            "hookEventName": "PreToolUse", "additionalContext": "sudo used: sudo make install"}}

    def test_feedback_is_capped(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(bash("sudo " + "x" * 30_000))
        text = r.json["hookSpecificOutput"]["additionalContext"]
        assert len(text) == 10_000
        assert text.endswith("[truncated by warden]")

    def test_policy_found_from_claude_project_dir(self, hp: HookProject, tmp_path) -> None:
        hp.policy(GUARD)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        r = hp.hook(bash("rm -rf /"), cwd=elsewhere, env={"CLAUDE_PROJECT_DIR": str(hp.root)})
        assert r.json["hookSpecificOutput"]["permissionDecision"] == "deny"
        r = hp.hook(bash("rm -rf /"), cwd=elsewhere)
        assert r.json == {}  # no policy at or above `elsewhere`: nothing to enforce


class TestBlockingEvents:
    def test_user_prompt_blocked(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(event("UserPromptSubmit", prompt="key AKIAABCDEFGHIJKLMNOP"))
        assert (r.code, r.stderr) == (0, "")
        assert r.json == {"decision": "block", "reason": "credential in prompt"}
        assert hp.hook(event("UserPromptSubmit")).json == {}

    def test_stop_blocked(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.hook(event("Stop"))
        assert r.json == {"decision": "block", "reason": "run the tests first"}

    @pytest.mark.parametrize("name", ["Stop", "SubagentStop"])
    def test_stop_hook_active_never_blocks(self, hp: HookProject, name: str) -> None:
        hp.policy(DENY_ALL)
        assert hp.hook(event(name)).json["decision"] == "block"
        r = hp.hook(event(name, stop_hook_active=True))
        assert (r.code, r.json, r.stderr) == (0, {}, "")

    def test_permission_request_allow_and_ask(self, hp: HookProject) -> None:
        hp.policy("""\
            version: 1
            policies:
              - {name: ok-tests, event: PermissionRequest, tool: Bash,
                 when: {field: tool_input.command, equals: "npm test"}, effect: allow}
              - {name: ask-rest, event: PermissionRequest, effect: ask}
            """)
        r = hp.hook(event("PermissionRequest", tool_input={"command": "npm test"}))
        assert r.json == {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                                                 "decision": {"behavior": "allow"}}}
        # ask: no decision, so Claude Code shows its own dialog to the user
        assert hp.hook(event("PermissionRequest")).json == {}


class TestObserveMode:
    def test_observe_never_blocks(self, hp: HookProject) -> None:
        hp.policy(GUARD.replace("default: allow", "mode: observe"))
        r = hp.hook(bash("rm -rf /"))
        assert (r.code, r.stderr) == (0, "")
        out = r.json
        assert "hookSpecificOutput" not in out
        assert out["systemMessage"] == "warden (observe mode) would deny: Refusing: rm -rf /"
        r = hp.hook(event("Stop"))
        assert r.code == 0 and "decision" not in r.json
        r = hp.hook(event("TaskCompleted"))
        assert r.code == 0

    def test_observe_keeps_feedback(self, hp: HookProject) -> None:
        hp.policy(GUARD.replace("default: allow", "mode: observe"))
        r = hp.hook(bash("sudo ls"))
        assert r.json == {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                                 "additionalContext": "sudo used: sudo ls"}}

    def test_stored_mode_overrides_settings(self, hp: HookProject) -> None:
        hp.policy(GUARD)
        r = hp.run("mode", "observe")
        assert r.code == 0, r.stderr
        r = hp.hook(bash("rm -rf /"))
        assert "hookSpecificOutput" not in r.json
        assert r.json["systemMessage"].startswith("warden (observe mode) would deny")
        assert hp.run("mode", "enforce").code == 0
        assert hp.hook(bash("rm -rf /")).json["hookSpecificOutput"]["permissionDecision"] == \
            "deny"


def test_output_is_one_json_line(hp: HookProject) -> None:
    hp.policy(GUARD)
    r = hp.hook(bash("rm -rf /", tool_input={"command": "rm -rf /", "note": "ünïcode ✓"}))
    assert r.stdout.count("\n") == 1
    json.loads(r.stdout)
