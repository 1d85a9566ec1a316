"""Shared fixtures.

- Every test runs with ``$XDG_CONFIG_HOME`` and ``$XDG_CACHE_HOME`` in its own tmp dirs, so
  the user's own policies and plan cache never leak in (and tests never write to them).
- ``run_warden(*args, input=..., cwd=..., env=...)`` runs the INSTALLED ``warden`` console
  script as a subprocess, exactly as a user or a hook would.
- ``project`` is a tmp project directory holding a ``warden.yaml``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

WARDEN = shutil.which("warden", path=str(Path(sys.executable).parent)) or str(
    Path(sys.executable).parent / "warden"
)
REPO = Path(__file__).resolve().parent.parent

# Test modules import the helpers below with `from conftest import ...`.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

# Variables that change what warden does; none may leak in from the developer's shell.
_LEAKY = ("WARDEN_NOW", "WARDEN_STATE", "WARDEN_ON_ERROR", "WARDEN_DEBUG", "CLAUDE_PROJECT_DIR")

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


@pytest.fixture(autouse=True)
def xdg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Env:
    """Isolate every test from the real user config, cache and WARDEN_* variables."""
    home = tmp_path_factory.mktemp("home")
    env = Env(home, home / "config", home / "cache")
    env.config.mkdir()
    env.cache.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(env.config))
    monkeypatch.setenv("XDG_CACHE_HOME", str(env.cache))
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    return env


@dataclass
class Project:
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


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project directory with the default warden.yaml (one deny rule)."""
    root = tmp_path / "repo"
    root.mkdir()
    p = Project(root)
    p.policy(DEFAULT_POLICY)
    return p


Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_warden(tmp_path: Path, xdg: Env) -> Iterator[Runner]:
    """Run the installed ``warden`` (default cwd: the ``project`` fixture's directory)."""

    def run(*args: str, input: str | bytes | None = None, cwd: Path | str | None = None,
            env: dict[str, str] | None = None, timeout: float = 60) -> Any:
        full_env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
        full_env.update(XDG_CONFIG_HOME=str(xdg.config), XDG_CACHE_HOME=str(xdg.cache))
        full_env.update(env or {})
        where = Path(cwd) if cwd is not None else tmp_path / "repo"
        where.mkdir(parents=True, exist_ok=True)
        if isinstance(input, bytes):
            proc = subprocess.run([WARDEN, *args], input=input, capture_output=True,
                                  cwd=where, env=full_env, timeout=timeout, check=False)
            return subprocess.CompletedProcess(
                proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                proc.stderr.decode("utf-8", "replace"))
        return subprocess.run([WARDEN, *args], input=input, capture_output=True, text=True,
                              cwd=where, env=full_env, timeout=timeout, check=False)

    yield run


def as_json(text: str) -> Any:
    return json.loads(text)
