"""`warden hook generic` (decision document + exit-code table) and `warden hook install`."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hookutil import HookProject, bash, event

POLICY = """\
version: 1
policies:
  - {name: no-rm, event: PreToolUse, tool: Bash,
     when: {field: tool_input.command, starts_with: "rm "}, effect: deny, message: "no rm"}
  - {name: ask-push, event: tool_call, tool: shell,
     when: {field: args.cmd, starts_with: "git push"}, effect: ask}
  - {name: hint, event: tool_call, effect: warn, message: "hint for {tool}"}
"""


class TestGeneric:
    def test_exit_codes_and_document(self, hp: HookProject) -> None:
        hp.policy(POLICY)
        r = hp.generic(bash("rm x"))
        assert r.code == 2
        doc = r.json
        assert doc["decision"] == "deny" and doc["enforced"] is True
        assert doc["matched"][0]["policy"] == "no-rm"
        assert doc["input"] == {"event": "PreToolUse", "tool": "Bash"}
        assert doc["plan"]["hash"].startswith("sha256:")
        r = hp.generic({"event": "tool_call", "tool": "shell", "args": {"cmd": "git push"}})
        assert (r.code, r.json["decision"]) == (3, "ask")
        assert r.json["feedback"] == [{"policy": "hint", "message": "hint for shell"}]
        r = hp.generic({"event": "tool_call", "tool": "shell", "args": {"cmd": "ls"}})
        assert (r.code, r.json["decision"]) == (0, "allow")

    def test_bad_input_is_65(self, hp: HookProject) -> None:
        hp.policy(POLICY)
        for raw in (b"", b"{", b"[]"):
            r = hp.generic(raw)
            assert r.code == 65
            assert r.stdout == ""
            assert r.stderr.startswith("warden: ")

    def test_bad_policy_is_78(self, hp: HookProject) -> None:
        hp.policy("version: 1\npolicies:\n  - {name: x, efect: deny}\n")
        r = hp.generic(bash("ls"))
        assert r.code == 78
        assert "warden.yaml:" in r.stderr

    def test_no_policy_is_78(self, hp: HookProject) -> None:
        r = hp.generic(bash("ls"))
        assert r.code == 78 and "no policy files" in r.stderr

    def test_generic_records_sessions(self, hp: HookProject) -> None:
        hp.policy(POLICY)
        assert hp.generic({"event": "PostToolUse", "tool": "shell", "session_id": "g1"}).code == 0
        shown = hp.run("state", "show", "--session", "g1", "--format", "json").json
        assert [(e["event"], e["tool"]) for e in shown] == [("PostToolUse", "shell")]


# --------------------------------------------------------------------------------- install

EXISTING = {
    "model": "claude-sonnet-4-6",
    "permissions": {"allow": ["Bash(npm test)"], "deny": ["Read(.env)"]},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [
            {"type": "command", "command": "$CLAUDE_PROJECT_DIR/.claude/hooks/check.sh",
             "timeout": 30}]}],
        "Notification": [{"hooks": [{"type": "command", "command": "notify-send claude"}]}],
    },
}


def _settings(path) -> dict:
    return json.loads(path.read_text())


class TestInstall:
    def test_merges_into_existing_settings(self, hp: HookProject) -> None:
        hp.policy(POLICY)
        path = hp.root / ".claude" / "settings.json"
        path.parent.mkdir()
        path.write_text(json.dumps(EXISTING, indent=4))
        os.chmod(path, 0o640)
        r = hp.run("hook", "install", "claude")
        assert r.code == 0, r.stderr
        assert str(path) in r.stdout
        data = _settings(path)
        assert data["model"] == EXISTING["model"]
        assert data["permissions"] == EXISTING["permissions"]
        assert data["hooks"]["Notification"] == EXISTING["hooks"]["Notification"]
        pre = data["hooks"]["PreToolUse"]
        assert pre[0] == EXISTING["hooks"]["PreToolUse"][0]  # kept, first
        assert pre[1] == {"matcher": "*", "hooks": [{"type": "command",
                                                     "command": "warden hook claude"}]}
        assert data["hooks"]["UserPromptSubmit"] == [
            {"hooks": [{"type": "command", "command": "warden hook claude"}]}]
        assert data["hooks"]["Stop"] == [
            {"hooks": [{"type": "command", "command": "warden hook claude"}]}]
        for name in ("PostToolUse", "PostToolUseFailure", "SubagentStop", "SessionStart",
                     "PreCompact"):
            assert data["hooks"][name][-1]["hooks"][0]["command"] == "warden hook claude"
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        assert not [p for p in path.parent.iterdir() if p.name != "settings.json"]

    def test_idempotent(self, hp: HookProject) -> None:
        hp.policy(POLICY)
        path = hp.root / ".claude" / "settings.json"
        assert hp.run("hook", "install", "claude").code == 0
        once = path.read_text()
        r = hp.run("hook", "install", "claude")
        assert r.code == 0 and "nothing changed" in r.stdout
        assert path.read_text() == once

    def test_recognises_an_existing_warden_entry(self, hp: HookProject) -> None:
        path = hp.root / ".claude" / "settings.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"hooks": {"PreToolUse": [
            {"matcher": "Bash", "hooks": [
                {"type": "command", "command": "/opt/venv/bin/warden hook claude"}]}]}}))
        assert hp.run("hook", "install", "claude").code == 0
        assert len(_settings(path)["hooks"]["PreToolUse"]) == 1
        assert len(_settings(path)["hooks"]["Stop"]) == 1

    def test_from_a_subdirectory_uses_the_project_root(self, hp: HookProject) -> None:
        hp.policy(POLICY)
        sub = hp.root / "src" / "pkg"
        sub.mkdir(parents=True)
        assert hp.run("hook", "install", "claude", cwd=sub).code == 0
        assert (hp.root / ".claude" / "settings.json").exists()
        assert not (sub / ".claude").exists()

    def test_user_settings_honour_home(self, hp: HookProject) -> None:
        r = hp.run("hook", "install", "claude", "--user")
        assert r.code == 0, r.stderr
        path = hp.home / ".claude" / "settings.json"
        assert "PreToolUse" in _settings(path)["hooks"]
        assert not (hp.root / ".claude").exists()

    def test_print_writes_nothing(self, hp: HookProject) -> None:
        r = hp.run("hook", "install", "claude", "--print")
        assert r.code == 0
        snippet = json.loads(r.stdout)
        assert snippet["hooks"]["PreToolUse"] == [
            {"matcher": "*", "hooks": [{"type": "command", "command": "warden hook claude"}]}]
        assert not (hp.root / ".claude").exists()
        assert not (hp.home / ".claude").exists()

    def test_custom_command(self, hp: HookProject) -> None:
        r = hp.run("hook", "install", "claude", "--command", "/opt/warden/bin/warden hook claude")
        assert r.code == 0
        data = _settings(hp.root / ".claude" / "settings.json")
        assert data["hooks"]["Stop"][0]["hooks"][0]["command"] == \
            "/opt/warden/bin/warden hook claude"

    @pytest.mark.parametrize("text", ["{not json", "[]", '{"hooks": []}'])
    def test_refuses_to_clobber_a_broken_file(self, hp: HookProject, text: str) -> None:
        path = hp.root / ".claude" / "settings.json"
        path.parent.mkdir()
        path.write_text(text)
        r = hp.run("hook", "install", "claude")
        assert r.code == 65
        assert path.read_text() == text

    def test_installed_command_answers(self, hp: HookProject) -> None:
        """The hook the snippet installs runs and answers (here: via the same binary)."""
        hp.policy(POLICY)
        assert hp.run("hook", "install", "claude").code == 0
        assert hp.hook(event("SessionStart")).json == {}
