"""Fixtures for the guarded-action tests: a tmp project and the INSTALLED ``warden`` run as a
real subprocess, with HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME in tmp dirs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

WARDEN = shutil.which("warden", path=str(Path(sys.executable).parent)) or str(
    Path(sys.executable).parent / "warden"
)
PY = sys.executable
LEAKY = ("WARDEN_NOW", "WARDEN_STATE", "WARDEN_ON_ERROR", "WARDEN_DEBUG", "CLAUDE_PROJECT_DIR")


@dataclass
class Proj:
    """A project directory with a ``warden.yaml``, and ways to run warden in it."""

    root: Path
    env: dict[str, str]
    calls: list[list[str]] = field(default_factory=list)

    def policy(self, text: str) -> Path:
        path = self.root / "warden.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def write(self, rel: str, text: str, mode: int | None = None) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if mode is not None:
            os.chmod(path, mode)
        return path

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = dict(self.env)
        env.update(extra or {})
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        return subprocess.run([WARDEN, *args], capture_output=True, text=True,
                              cwd=cwd or self.root, env=self._env(env), timeout=timeout,
                              check=False)

    def json(self, *args: str, code: int | None = None, env: dict[str, str] | None = None
             ) -> Any:
        """Run with ``--format json``; assert the exit code when given; return the doc."""
        proc = self.run(*args, "--format", "json", env=env)
        if code is not None:
            assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (exit {proc.returncode}): {proc.stdout!r} "
                                 f"{proc.stderr!r}") from None

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([WARDEN, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.root,
                                env=self._env(env))

    def tree(self) -> dict[str, tuple[str, int]]:
        """Every file and directory under the root except .warden: path -> (sha256, mode)."""
        out: dict[str, tuple[str, int]] = {}
        for p in sorted(self.root.rglob("*")):
            rel = p.relative_to(self.root)
            if rel.parts[0] == ".warden":
                continue
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            out[str(rel)] = (digest, stat.S_IMODE(st.st_mode))
        return out

    @staticmethod
    def py(code: str, *args: str) -> str:
        """A YAML flow sequence running a Python snippet with this interpreter (no shell)."""
        return json.dumps([PY, "-c", textwrap.dedent(code).strip(), *args])

    @staticmethod
    def argv(*args: str) -> str:
        return json.dumps(list(args))

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.root / ".warden" / "state.db", isolation_level=None)


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Byte-code cache for the warden subprocesses, outside the source tree (so a
    PYTHONDONTWRITEBYTECODE shell does not make every call recompile warden)."""
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture
def proj(tmp_path: Path, pycache: Path) -> Iterator[Proj]:
    home = tmp_path / "home"
    for d in (home, home / "config", home / "cache"):
        d.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in LEAKY and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), USER="tester", LOGNAME="tester")
    root = tmp_path / "repo"
    root.mkdir()
    yield Proj(root, env)

