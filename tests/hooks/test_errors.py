"""When warden itself fails, `warden hook claude` still answers: exit 0 or 2, per on_error."""

from __future__ import annotations

import json

import pytest
from hookutil import HookProject, bash, event

GOOD = """\
version: 1
settings:
  on_error: {on_error}
policies:
  - name: no-rm
    event: PreToolUse
    tool: Bash
    when: {{field: tool_input.command, matches: '\\brm\\b'}}
    effect: deny
"""
BROKEN = """\
version: 1
policies:
  - name: typo
    efect: deny
"""


def _one_line(text: str) -> str:
    assert text.endswith("\n")
    assert text.count("\n") == 1, text
    return text.strip()


@pytest.mark.parametrize("stdin", [b"", b"   \n", b"{not json", b"[1, 2]", b"\xff\xfe",
                                   b'{"a": ' * 300 + b"1" + b"}" * 300])
def test_bad_stdin_with_on_error_deny(hp: HookProject, stdin: bytes) -> None:
    hp.policy(GOOD.format(on_error="deny"))
    r = hp.hook(stdin)
    assert (r.code, r.stdout) == (2, "")
    line = _one_line(r.stderr)
    assert line.startswith("warden: ")
    assert line.endswith("(on_error: deny)")


def test_bad_stdin_with_on_error_allow(hp: HookProject) -> None:
    hp.policy(GOOD.format(on_error="allow"))
    r = hp.hook(b"{not json")
    assert r.code == 0
    line = _one_line(r.stderr)
    assert line.startswith("warden: invalid JSON input")
    assert "on_error: allow" in line
    assert "invalid JSON input" in r.json["systemMessage"]


def test_input_too_large(hp: HookProject) -> None:
    hp.policy(GOOD.format(on_error="deny"))
    big = json.dumps(bash("x" * (16 * 1024 * 1024 + 10)))
    r = hp.hook(big)
    assert r.code == 2
    assert "larger than 16 MiB" in _one_line(r.stderr)


@pytest.mark.parametrize(("env_value", "code"), [("allow", 0), ("deny", 2), ("", 2),
                                                 ("bogus", 2)])
def test_warden_on_error_without_any_valid_plan(hp: HookProject, env_value: str,
                                                code: int) -> None:
    hp.policy(BROKEN)
    r = hp.hook(bash("ls"), env={"WARDEN_ON_ERROR": env_value} if env_value else {})
    assert r.code == code
    line = _one_line(r.stderr)
    assert "warden.yaml:" in line


def test_broken_policy_after_a_good_cached_plan_uses_its_on_error(hp: HookProject) -> None:
    hp.policy(GOOD.format(on_error="allow"))
    assert hp.hook(bash("rm x")).json["hookSpecificOutput"]["permissionDecision"] == "deny"
    hp.policy(BROKEN)
    # the last valid plan said on_error: allow, which beats $WARDEN_ON_ERROR
    r = hp.hook(bash("rm x"), env={"WARDEN_ON_ERROR": "deny"})
    assert r.code == 0
    assert "warden.yaml:" in _one_line(r.stderr)
    # ...and a new valid plan with on_error: deny replaces it
    hp.policy(GOOD.format(on_error="deny"))
    assert hp.hook(bash("ls")).code == 0
    hp.policy(BROKEN)
    r = hp.hook(bash("ls"), env={"WARDEN_ON_ERROR": "allow"})
    assert (r.code, r.stdout) == (2, "")


def test_the_pointer_is_per_project(hp: HookProject, tmp_path) -> None:
    hp.policy(GOOD.format(on_error="allow"))
    assert hp.hook(bash("ls")).code == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "warden.yaml").write_text(BROKEN)
    r = hp.hook(bash("ls"), cwd=other)
    assert r.code == 2


def test_broken_policy_with_claude_project_dir(hp: HookProject, tmp_path) -> None:
    hp.policy(BROKEN)
    r = hp.hook(bash("ls"), cwd=tmp_path, env={"CLAUDE_PROJECT_DIR": str(hp.root)})
    assert r.code == 2
    assert "warden.yaml:" in r.stderr


def test_internal_error_follows_on_error(hp: HookProject) -> None:
    hp.policy(GOOD.format(on_error="allow"))
    r = hp.hook(bash("ls"), env={"WARDEN_NOW": "not-a-time"})
    assert r.code == 0 and "WARDEN_NOW" in _one_line(r.stderr)
    hp.policy(GOOD.format(on_error="deny"))
    r = hp.hook(bash("ls"), env={"WARDEN_NOW": "not-a-time"})
    assert r.code == 2 and "WARDEN_NOW" in _one_line(r.stderr)


def test_unusable_state_store_follows_on_error(hp: HookProject) -> None:
    hp.policy(GOOD.format(on_error="deny"))
    (hp.root / "state-dir").mkdir()
    r = hp.hook(event("PostToolUse"), env={"WARDEN_STATE": str(hp.root / "state-dir")})
    assert r.code == 2
    assert "state" in _one_line(r.stderr)


def test_error_on_stop_with_stop_hook_active_does_not_loop(hp: HookProject) -> None:
    hp.policy(BROKEN)
    assert hp.hook(event("Stop")).code == 2
    r = hp.hook(event("Stop", stop_hook_active=True))
    assert r.code == 0
    assert "stop_hook_active" in _one_line(r.stderr)


def test_server_that_does_not_answer_falls_back_to_local_evaluation(hp: HookProject) -> None:
    hp.policy(GOOD.format(on_error="deny"))
    # port 9 (discard) on loopback: nothing listens, the connection is refused at once
    r = hp.hook(bash("ls"), "--server", "http://127.0.0.1:9")
    assert (r.code, r.json) == (0, {})
    r = hp.hook(bash("rm -rf /"), "--server", "http://127.0.0.1:9")
    assert r.code == 0
    assert r.json["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_no_policy_anywhere_enforces_nothing(hp: HookProject) -> None:
    r = hp.hook(bash("rm -rf /"))
    assert (r.code, r.json, r.stderr) == (0, {}, "")


def test_only_exit_0_or_2(hp: HookProject) -> None:
    hp.policy(GOOD.format(on_error="deny"))
    for stdin in (b"", b"null", b'"x"', b"{}", json.dumps(bash("rm -rf x")).encode()):
        assert hp.hook(stdin).code in (0, 2)


def test_no_policy_anywhere_ignores_even_bad_stdin(hp: HookProject) -> None:
    r = hp.hook(b"{not json")
    assert (r.code, r.json, r.stderr) == (0, {}, "")
