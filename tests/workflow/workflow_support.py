"""Helpers shared by the workflow tests (imported as ``workflow_support``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
WARDEN = str(Path(sys.executable).parent / "warden")
LEAKY = ("WARDEN_NOW", "WARDEN_STATE", "WARDEN_ON_ERROR", "WARDEN_DEBUG", "CLAUDE_PROJECT_DIR")

Runner = Callable[..., subprocess.CompletedProcess[str]]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def put(path: Path, text: str) -> Path:
    """Write dedented ``text`` to ``path``, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text), encoding="utf-8")
    return path


def clean_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    env.update(extra or {})
    return env


AGENT_POLICY = """\
    # yaml-language-server: $schema=https://warden.dev/schema/warden.schema.json
    version: 1
    policies:
      - name: no-rm-rf
        event: PreToolUse
        tool: Bash
        when:
          any:
            - {field: tool_input.command, matches: 'rm\\s+-rf\\s+/'}
            - {field: tool_input.command, contains: mkfs}
        effect: deny
        message: "no: {tool_input.command}"
      - name: trash-hint
        event: PreToolUse
        tool: Bash
        when: {field: tool_input.command, starts_with: "rm "}
        effect: warn
        message: consider trash for {tool_input.command}
      - name: read-before-edit
        event: PreToolUse
        tool: Edit
        when:
          not:
            state: {event: PostToolUse, tool: Read, within: 10m}
        effect: ask
        message: read it first
      - name: ci-push
        event: PreToolUse
        tool: Bash
        when:
          all:
            - {env: {name: CI, exists: true}}
            - {field: tool_input.command, starts_with: "git push"}
        effect: ask
      - name: office-hours
        event: PreToolUse
        tool: Bash
        when:
          all:
            - {field: tool_input.command, starts_with: deploy}
            - not: {time: {days: [mon, tue, wed, thu, fri], after: "09:00", before: "17:00"}}
        effect: deny
        message: deploys only in office hours
"""
