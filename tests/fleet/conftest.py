"""Fleet-mode fixtures (helpers in fleet_helpers.py): ``serve`` starts the installed
``warden serve``; ``pg_server`` / ``pg_database`` are a throwaway PostgreSQL server and a fresh
database on it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from fleet_helpers import (
    WARDEN,
    PgServer,
    Server,
    _start_postgres,
    _stop_postgres,
    clean_env,
    pg_bin_dir,
)


@pytest.fixture
def serve(xdg: Any) -> Iterator[Callable[..., Server]]:
    """``serve(cwd, *args, env=..., token=...)`` starts ``warden serve`` and waits for it."""
    started: list[Server] = []

    def start(cwd: Path, *args: str, env: dict[str, str] | None = None,
              token: str | None = None) -> Server:
        cmd = [WARDEN, "serve", "--port", "0", "--no-user-policies", *args]
        proc = subprocess.Popen(cmd, cwd=cwd, env=clean_env(xdg, env), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"warden serve did not start: {line!r} {err!r}")
        url = line.split("listening on ", 1)[1].split()[0]
        server = Server(url, proc, cwd, token, [line])
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'warden[postgres]')")
    bindir = pg_bin_dir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb/postgres) found and `make test` could not "
                    "install Debian's postgresql package")
    server = _start_postgres(bindir)
    try:
        yield server
    finally:
        _stop_postgres(server)


_DB_COUNTER = [0]


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session's server; its URL."""
    import psycopg

    _DB_COUNTER[0] += 1
    name = f"warden_t{os.getpid()}_{_DB_COUNTER[0]}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url_for(name)
    finally:
        with psycopg.connect(pg_server.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
