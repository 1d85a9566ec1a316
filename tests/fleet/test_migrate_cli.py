"""``warden state migrate`` on both engines, through the installed CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fleet_helpers import WARDEN, clean_env, write


def _migrate(cwd: Path, xdg: Any, *args: str, state: str | None = None) -> Any:
    env = {"WARDEN_STATE": state} if state else {}
    return subprocess.run([WARDEN, "state", "migrate", "--no-user-policies", *args], cwd=cwd,
                          env=clean_env(xdg, env), capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "db" / "state.db")
    url: str = request.getfixturevalue("pg_database")
    return url


def test_check_migrate_and_again(location: str, tmp_path: Path, xdg: Any) -> None:
    from warden.state import latest_version

    write(tmp_path / "warden.yaml", "version: 1\n")
    check = _migrate(tmp_path, xdg, "--check", "--format", "json", state=location)
    assert check.returncode == 1, check.stderr
    doc = json.loads(check.stdout)
    assert doc["before"] == 0 and doc["pending"] == list(range(1, latest_version() + 1))
    done = _migrate(tmp_path, xdg, state=location)
    assert done.returncode == 0 and f"0 -> {latest_version()}" in done.stdout
    again = _migrate(tmp_path, xdg, "--check", state=location)
    assert again.returncode == 0 and "up to date" in again.stdout
    # --state wins over $WARDEN_STATE
    other = tmp_path / "other.db"
    explicit = _migrate(tmp_path, xdg, "--state", str(other), state=location)
    assert explicit.returncode == 0 and other.exists()


def test_settings_state_url(pg_database: str, tmp_path: Path, xdg: Any) -> None:
    write(tmp_path / "warden.yaml", f"version: 1\nsettings:\n  state: '{pg_database}'\n")
    done = _migrate(tmp_path, xdg)
    assert done.returncode == 0, done.stderr
    assert pg_database in done.stdout and not (tmp_path / ".warden").exists()


def test_unreachable_server_is_exit_70(tmp_path: Path, xdg: Any) -> None:
    write(tmp_path / "warden.yaml", "version: 1\n")
    proc = _migrate(tmp_path, xdg, state="postgresql://u:secret@127.0.0.1:1/x")
    assert proc.returncode == 70 and "secret" not in proc.stderr
    assert "PostgreSQL" in proc.stderr
