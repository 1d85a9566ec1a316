"""Helpers shared by the test modules: ``from wardentest import write, bash, Project, ...``.

(A uniquely named module: several directories of this suite have a ``conftest.py``, so
``from conftest import ...`` would find whichever was imported last.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WARDEN = shutil.which("warden", path=str(Path(sys.executable).parent)) or str(
    Path(sys.executable).parent / "warden"
)
REPO = Path(__file__).resolve().parent.parent

# Variables that change what warden does; none may leak in from the developer's shell.
LEAKY = ("WARDEN_NOW", "WARDEN_STATE", "WARDEN_ON_ERROR", "WARDEN_DEBUG", "CLAUDE_PROJECT_DIR")

DEFAULT_POLICY = """\
version: 1
policies:
  - name: no-rm-rf-root
    event: PreToolUse
    tool: Bash
    when:
      field: tool_input.command
      matches: '\\brm\\s+-\\w*r\\w*\\s+/(\\s|$)'
    effect: deny
    message: "Refusing to delete /: {tool_input.command}"
"""


def write(path: Path, text: str) -> Path:
    """Write dedented ``text`` to ``path`` (creating parent directories)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def bash(command: str, **extra: Any) -> dict[str, Any]:
    """A Claude Code PreToolUse event for the Bash tool."""
    return {"hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": command}, **extra}


@dataclass
class Env:
    """The isolated per-test home: ``$XDG_CONFIG_HOME`` and ``$XDG_CACHE_HOME``."""

    home: Path
    config: Path  # $XDG_CONFIG_HOME
    cache: Path  # $XDG_CACHE_HOME

    @property
    def user_dir(self) -> Path:
        """Where user-scope policies live: $XDG_CONFIG_HOME/warden."""
        return self.config / "warden"

    @property
    def plans(self) -> Path:
        return self.cache / "warden" / "plans"


@dataclass
class Project:
    """A project directory (the ``project`` fixture)."""

    root: Path

    def write(self, name: str, text: str) -> Path:
        return write(self.root / name, text)

    def policy(self, text: str) -> Path:
        """Replace the project's warden.yaml."""
        return self.write("warden.yaml", text)

    def engine(self, **kw: Any) -> Any:
        import warden

        kw.setdefault("user_policies", False)
        kw.setdefault("use_cache", False)
        return warden.load(self.root, **kw)


Runner = Callable[..., subprocess.CompletedProcess[str]]


def as_json(text: str) -> Any:
    return json.loads(text)
