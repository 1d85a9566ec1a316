"""Helpers for the agent-hook tests (imported by the tests and by conftest.py).

``hp`` is a tmp project (``hp.root``) with its own HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME;
``hp.hook(event)`` runs the INSTALLED ``warden hook claude`` as a subprocess with cwd = the
project, exactly as Claude Code would, and returns a ``Run`` (code, stdout, stderr, json).
``event(name, **changes)`` is the fixture file ``fixtures/<name>.json`` (one per Claude Code
hook event, in the protocol's shape) with top-level fields changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WARDEN = str(Path(sys.executable).parent / "warden")
HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
REPO = HERE.parent.parent
EXAMPLES = REPO / "examples"
SESSION = "3f1c9a2e-7b4d-4e8a-9c61-0d2b5e8f4a17"

# Variables that change what warden does; none may leak in from the developer's shell.
LEAKY = ("WARDEN_NOW", "WARDEN_STATE", "WARDEN_ON_ERROR", "WARDEN_DEBUG", "CLAUDE_PROJECT_DIR")

ALL_EVENTS = sorted(p.stem for p in FIXTURES.glob("*.json"))


def event(name: str, **changes: Any) -> dict[str, Any]:
    """The fixture of one hook event type, with top-level fields replaced."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def bash(command: str, event_name: str = "PreToolUse", **changes: Any) -> dict[str, Any]:
    """A Bash tool event (PreToolUse by default) of the fixture session."""
    base = event(event_name if event_name in ALL_EVENTS else "PreToolUse")
    base.update(hook_event_name=event_name, tool_name="Bash",
                tool_input={"command": command, "description": "run"})
    base.pop("error", None)
    base.pop("tool_response", None)
    if event_name == "PostToolUse":
        base["tool_response"] = {"stdout": "", "stderr": "", "interrupted": False}
    if event_name == "PostToolUseFailure":
        base["error"] = "Command exited with non-zero status code 1"
        base["is_interrupt"] = False
    base.update(changes)
    return base


def file_tool(tool: str, path: str, event_name: str = "PreToolUse", **changes: Any) -> dict:
    base = event("PreToolUse")
    tool_input: dict[str, Any] = {"file_path": path}
    if tool == "Edit":
        tool_input.update(old_string="a", new_string="b")
    elif tool == "Write":
        tool_input.update(content="x\n")
    base.update(hook_event_name=event_name, tool_name=tool, tool_input=tool_input)
    if event_name == "PostToolUse":
        base["tool_response"] = {"filePath": path, "success": True}
    base.update(changes)
    return base


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class HookProject:
    root: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.home / ".config"

    @property
    def cache(self) -> Path:
        return self.home / ".cache"

    @property
    def state_db(self) -> Path:
        return self.root / ".warden" / "state.db"

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def policy(self, text: str) -> Path:
        return self.write("warden.yaml", text)

    def full_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in LEAKY}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.config),
                   XDG_CACHE_HOME=str(self.cache))
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(self, *args: str, input: str | bytes | None = None,
            env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> Run:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run([WARDEN, *args], input=data, capture_output=True,
                              cwd=cwd or self.root, env=self.full_env(env), timeout=timeout,
                              check=False)
        return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                   proc.stderr.decode("utf-8", "replace"))

    def hook(self, inp: dict[str, Any] | str | bytes, *args: str, **kw: Any) -> Run:
        data = inp if isinstance(inp, (str, bytes)) else json.dumps(inp)
        return self.run("hook", "claude", *args, input=data, **kw)

    def generic(self, inp: dict[str, Any] | str | bytes, **kw: Any) -> Run:
        data = inp if isinstance(inp, (str, bytes)) else json.dumps(inp)
        return self.run("hook", "generic", input=data, **kw)
