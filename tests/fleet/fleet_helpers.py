"""Fleet-mode helpers (the fixtures are in conftest.py): a real ``warden serve``
subprocess, and a throwaway PostgreSQL server.

- ``serve`` (factory) starts the INSTALLED ``warden serve --port 0`` in a project directory
  and reads the URL it prints; every server is stopped (SIGTERM) at the end of the test.
- ``pg_url`` (session) is a PostgreSQL server of our own: ``initdb`` into a temp dir (as the
  ``postgres`` system user when we are root), ``postgres -k DIR -p PORT -h 127.0.0.1``,
  stopped at the end of the session. Each test that asks for ``pg_database`` gets a fresh
  database on it. The binaries come from ``$WARDEN_PG_BIN``, ``PATH``, or
  ``/usr/lib/postgresql/*/bin`` (``make test`` installs Debian's ``postgresql`` when none is
  there); without any, PostgreSQL tests are skipped with that reason.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wardentest import DEFAULT_POLICY, bash, write  # noqa: F401 - re-exported for tests/fleet

WARDEN = str(Path(sys.executable).parent / "warden")

_LEAKY = ("WARDEN_NOW", "WARDEN_STATE", "WARDEN_ON_ERROR", "WARDEN_DEBUG", "CLAUDE_PROJECT_DIR",
          "WARDEN_TOKEN")


# ------------------------------------------------------------------------------ warden serve


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    cwd: Path
    token: str | None = None
    lines: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        data = body.encode() if isinstance(body, str) else body
        hdrs = dict(headers or {})
        if self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, method: str, path: str, doc: Any = None, **kw: Any) -> tuple[int, Any]:
        body = None if doc is None else json.dumps(doc)
        status, _, raw = self.request(method, path, body, **kw)
        return status, json.loads(raw)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def clean_env(xdg: Any, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY}
    env.update(XDG_CONFIG_HOME=str(xdg.config), XDG_CACHE_HOME=str(xdg.cache))
    env.update(extra or {})
    return env


def wait_for(predicate: Callable[[], bool], timeout: float = 15, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# -------------------------------------------------------------------------------- PostgreSQL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin_dir() -> Path | None:
    """Where initdb/postgres live: $WARDEN_PG_BIN, PATH, or Debian's versioned directory."""
    explicit = os.environ.get("WARDEN_PG_BIN")
    candidates = [Path(explicit)] if explicit else []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(os.path.realpath(found)).parent)
    candidates += [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                                                   key=_version_key, reverse=True)]
    for d in candidates:
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    return None


def _version_key(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(x) for x in part.split(".") if x.isdigit())


@dataclass
class PgServer:
    url: str
    port: int
    bin: Path
    data: Path
    proc: subprocess.Popen[bytes]

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


def _as_user() -> tuple[list[str], Callable[[Path], None]]:
    """Command prefix and chown helper: PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        return [], lambda p: None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh",
                        "postgres"], check=True, capture_output=True)
        pw = pwd.getpwnam("postgres")
    runner = shutil.which("runuser")
    prefix = [runner, "-u", "postgres", "--"] if runner else ["su", "postgres", "-s", "/bin/sh",
                                                               "-c"]

    def chown(path: Path) -> None:
        os.chown(path, pw.pw_uid, pw.pw_gid)

    return prefix, chown


def _start_postgres(bindir: Path) -> PgServer:
    prefix, chown = _as_user()
    base = Path(tempfile.mkdtemp(prefix="warden-pg-"))
    base.chmod(0o755)
    chown(base)
    data = base / "data"
    init = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-locale", "--no-sync"]
    _run_as(prefix, init)
    port = free_port()
    cmd = [str(bindir / "postgres"), "-D", str(data), "-k", str(base), "-p", str(port),
           "-h", "127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
           "-c", "full_page_writes=off", "-c", "max_connections=200"]
    proc = subprocess.Popen(_wrap(prefix, cmd), stdout=subprocess.DEVNULL,
                            stderr=open(base / "postgres.log", "wb"),  # noqa: SIM115
                            start_new_session=True)
    server = PgServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", port, bindir, data,
                      proc)
    _watchdog(proc.pid, base)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (base / "postgres.log").read_text(errors="replace")
            raise RuntimeError(f"postgres exited: {log[-2000:]}")
        ready = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                               capture_output=True)
        if ready.returncode == 0:
            return server
        time.sleep(0.2)
    _stop_postgres(server)
    raise RuntimeError("postgres did not become ready within 60 s")


_WATCHDOG = """
import os, shutil, signal, sys, time
owner, group, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
while alive(owner) and alive(group):
    time.sleep(1)
if alive(group):
    try:
        os.killpg(group, signal.SIGINT)
    except ProcessLookupError:
        pass
    for _ in range(30):
        if not alive(group):
            break
        time.sleep(1)
shutil.rmtree(base, ignore_errors=True)
"""


def _watchdog(group: int, base: Path) -> None:
    """Stop the server (and remove its files) if this process dies without stopping it."""
    subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(group), str(base)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def _wrap(prefix: list[str], cmd: list[str]) -> list[str]:
    if prefix and prefix[0] == "su":
        return [*prefix, " ".join(_quote(c) for c in cmd)]
    return [*prefix, *cmd]


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _run_as(prefix: list[str], cmd: list[str]) -> None:
    proc = subprocess.run(_wrap(prefix, cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stdout}{proc.stderr}")


def _stop_postgres(server: PgServer) -> None:
    if server.proc.poll() is None:
        # SIGINT is PostgreSQL's "fast shutdown"; the runuser wrapper passes it on
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGINT)
        try:
            server.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(10)
    shutil.rmtree(server.data.parent, ignore_errors=True)
