"""Shared fixtures (helpers for test modules live in ``wardentest.py``).

- Every test runs with ``$XDG_CONFIG_HOME`` and ``$XDG_CACHE_HOME`` in its own tmp dirs, so
  the user's own policies and plan cache never leak in (and tests never write to them), and
  without the ``WARDEN_*`` variables of the developer's shell.
- ``run_warden(*args, input=..., cwd=..., env=...)`` runs the INSTALLED ``warden`` console
  script as a subprocess, exactly as a user or a hook would.
- ``project`` is a tmp project directory holding a ``warden.yaml``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Test modules import the helpers with `from wardentest import ...`.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from wardentest import (
    DEFAULT_POLICY,
    LEAKY,
    REPO,
    WARDEN,
    Env,
    Project,
    Runner,
    as_json,
    bash,
    write,
)

__all__ = ["DEFAULT_POLICY", "REPO", "WARDEN", "Env", "Project", "Runner", "as_json", "bash",
           "write"]


@pytest.fixture(autouse=True)
def xdg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Env:
    """Isolate every test from the real user config, cache and WARDEN_* variables."""
    home = tmp_path_factory.mktemp("home")
    env = Env(home, home / "config", home / "cache")
    env.config.mkdir()
    env.cache.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(env.config))
    monkeypatch.setenv("XDG_CACHE_HOME", str(env.cache))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))  # user-only policies' state
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
    return env


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project directory with the default warden.yaml (one deny rule)."""
    root = tmp_path / "repo"
    root.mkdir()
    p = Project(root)
    p.policy(DEFAULT_POLICY)
    return p


@pytest.fixture
def run_warden(tmp_path: Path, xdg: Env) -> Iterator[Runner]:
    """Run the installed ``warden`` (default cwd: the ``project`` fixture's directory)."""

    def run(*args: str, input: str | bytes | None = None, cwd: Path | str | None = None,
            env: dict[str, str] | None = None, timeout: float = 60) -> Any:
        full_env = {k: v for k, v in os.environ.items() if k not in LEAKY}
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
