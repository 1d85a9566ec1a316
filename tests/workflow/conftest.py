"""Fixtures for the policy-as-code workflow tests (test, check, fmt, init, pre-commit).

Everything goes through the INSTALLED ``warden`` console script in a subprocess, with
``$XDG_CONFIG_HOME``/``$XDG_CACHE_HOME`` in tmp dirs and no ``WARDEN_*`` variables, so a
developer's own policies, caches or clock never change a result. Helpers live in
``workflow_support.py`` (this directory is put on ``sys.path`` for it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.append(str(Path(__file__).resolve().parent))

from workflow_support import WARDEN, Runner, clean_env


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: needs the network or installs packages (pre-commit try-repo)")


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = tmp_path_factory.mktemp("wf-home")
    (h / "config").mkdir()
    (h / "cache").mkdir()
    return h


@pytest.fixture
def warden(tmp_path: Path, home: Path) -> Runner:
    """``warden(*args, cwd=..., env=..., input=...)`` -> CompletedProcess (text)."""

    def run(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
            input: str | None = None, timeout: float = 120) -> Any:
        where = Path(cwd) if cwd is not None else tmp_path
        return subprocess.run([WARDEN, *args], cwd=where, env=clean_env(home, env),
                              input=input, capture_output=True, text=True, timeout=timeout,
                              check=False)

    return run
