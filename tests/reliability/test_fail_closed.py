"""Fail closed (issue 7, item 3): when warden itself fails, ``on_error`` decides, and the
cause is on stderr.

Failures: an unreadable state database, a corrupted plan cache (discarded and rebuilt, never
trusted: not even a failure), the disk filling up while warden journals (a tiny tmpfs when
this runs as root and may mount one, else ``RLIMIT_FSIZE`` on the child), and a side-effect
command that cannot start.

- ``warden hook claude``: ``on_error: deny`` -> exit 2 with one line on stderr; ``on_error:
  allow`` -> exit 0, the line on stderr and as a ``systemMessage``. A failure never makes a
  deny more lenient.
- ``warden run``: no step runs (the marker file a step would create never appears), the
  cause is reported, and the journal stays consistent. A run fails closed whatever
  ``on_error`` says: without its journal warden can neither enforce rate limits, idempotency
  and approvals nor roll back (docs/security.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wardentest import WARDEN, Env, Project, Runner, bash

sys.path.insert(0, str(Path(__file__).resolve().parent))

POLICY = """
version: 1
settings: {{on_error: {on_error}{state}}}
policies:
  - name: no-rm
    event: PreToolUse
    tool: Bash
    when: {{field: tool_input.command, matches: 'rm -rf'}}
    effect: deny
    message: "no rm -rf"
{extra}
actions:
  touch-marker:
    steps:
      - {{name: mark, run: ["touch", "marker"]}}
  bad-then-mark:
    steps:
      - {{name: bad, run: ["/nonexistent/warden-test-cmd"]}}
      - {{name: mark, run: ["touch", "marker"]}}
  gated:
    gates: [check]
    steps:
      - {{name: mark, run: ["touch", "marker"]}}
  fill-then-mark:
    steps:
      - {{name: fill, run: ["sh", "-c", "cat /dev/zero > {fill}"]}}
      - {{name: mark, run: ["touch", "marker"]}}
gates:
  check: {{kind: command, run: ["/nonexistent/warden-gate-cmd"]}}
"""

THEN_FAILS = """
  - name: ls-logged
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, equals: ls}
    effect: allow
    then: [{run: ["/nonexistent/warden-logger", "{tool_input.command}"]}]
  - name: rm-logged
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, equals: "sudo rm"}
    effect: deny
    then: [{run: ["/nonexistent/warden-logger", "{tool_input.command}"], background: true}]
"""

ON_ERROR = ["deny", "allow"]


def write_policy(project: Project, on_error: str, *, state: str | None = None,
                 extra: str = "", fill: str = "/dev/null") -> None:
    project.policy(POLICY.format(on_error=on_error, state=f", state: {state}" if state else "",
                                 extra=extra, fill=fill))


def hook(run_warden: Runner, event: dict[str, Any], **kw: Any) -> Any:
    return run_warden("hook", "claude", input=json.dumps(event), **kw)


def verdict(proc: Any) -> str:
    """What a ``warden hook claude`` reply tells the agent: deny, ask, allow or none."""
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 2:
        return "deny"
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return str(doc.get("hookSpecificOutput", {}).get("permissionDecision", "none"))


def post_event(command: str = "ls") -> dict[str, Any]:
    return {"session_id": "s-fail", "hook_event_name": "PostToolUse", "tool_name": "Bash",
            "tool_input": {"command": command}, "tool_response": {"stdout": ""}}


def assert_hook_failed(proc: Any, on_error: str, cause: str) -> None:
    """The hook reported ``cause`` on one stderr line and answered per ``on_error``."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert cause in lines[0], proc.stderr
    assert f"on_error: {on_error}" in lines[0], proc.stderr
    if on_error == "deny":
        assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
        assert "permissionDecision\":\"allow" not in proc.stdout
    else:
        assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
        doc = json.loads(proc.stdout)
        assert cause in doc["systemMessage"]


def state_ok(db: Path) -> None:
    """The SQLite file is intact, no execution is stuck half-written."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for status, ended, code in conn.execute(
                "SELECT status, ended, exit_code FROM executions"):
            if status not in ("started", "rolling_back"):
                assert ended is not None and code is not None, (status, ended, code)
    finally:
        conn.close()


def audit_ok(run_warden: Runner) -> None:
    proc = run_warden("audit", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ==================================================================== unreadable state


def _garbage(db: Path) -> None:
    db.write_bytes(b"this is not an SQLite database, just garbage " * 100)


def _directory(db: Path) -> None:
    db.mkdir()


def _truncated(db: Path) -> None:
    # A real database cut in the middle of its first page.
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (randomblob(10000))")
    conn.commit()
    conn.close()
    data = db.read_bytes()
    db.write_bytes(data[:1000])


BREAKERS = {"garbage": _garbage, "directory": _directory, "truncated": _truncated}


@pytest.mark.parametrize("on_error", ON_ERROR)
@pytest.mark.parametrize("breaker", sorted(BREAKERS))
def test_hook_with_unreadable_state_db(project: Project, run_warden: Runner, on_error: str,
                                       breaker: str) -> None:
    write_policy(project, on_error)
    db = project.root / ".warden" / "state.db"
    db.parent.mkdir(exist_ok=True)
    BREAKERS[breaker](db)
    proc = hook(run_warden, bash("ls"))
    assert_hook_failed(proc, on_error, "state database")
    # A call the policy denies is never let through by a deny-mode failure either.
    proc = hook(run_warden, bash("rm -rf /"))
    assert verdict(proc) == ("deny" if on_error == "deny" else "none")


@pytest.mark.parametrize("on_error", ON_ERROR)
@pytest.mark.parametrize("breaker", sorted(BREAKERS))
def test_run_with_unreadable_state_db_runs_nothing(project: Project, run_warden: Runner,
                                                   on_error: str, breaker: str) -> None:
    write_policy(project, on_error)
    db = project.root / ".warden" / "state.db"
    db.parent.mkdir(exist_ok=True)
    BREAKERS[breaker](db)
    proc = run_warden("run", "touch-marker")
    assert proc.returncode == 70, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "state database" in proc.stderr
    assert not (project.root / "marker").exists()


# ================================================================ corrupted plan cache


def _plan_files(xdg: Env) -> list[Path]:
    return sorted(xdg.plans.glob("*.plan")) if xdg.plans.exists() else []


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[-10] ^= 0xFF
    p.write_bytes(bytes(data))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _random(p: Path) -> None:
    p.write_bytes(os.urandom(4096))


def _valid_checksum_garbage_body(p: Path) -> None:
    from warden.plan import MAGIC, seal

    p.write_bytes(seal(MAGIC, b"\xff" * 100))


def _valid_checksum_wrong_type(p: Path) -> None:
    import marshal

    from warden.plan import MAGIC, seal

    p.write_bytes(seal(MAGIC, marshal.dumps(["not", "a", "plan"])))


def _allow_everything_plan_bad_checksum(p: Path) -> None:
    # A tampered cache: the plan replaced by one that allows everything, checksum left as is.
    import marshal

    from warden.plan import MAGIC, unseal

    blob = p.read_bytes()
    header = blob[: len(MAGIC) + 9]
    body = unseal(MAGIC, blob)
    assert body is not None
    head, packed = marshal.loads(body)
    for scope in head["scopes"]:
        scope["index"] = {"any": {"any": [], "tools": {}}, "events": {}}
    p.write_bytes(header + marshal.dumps((head, [(b"", b"", b"", b"") for _ in packed])))


def _directory_instead(p: Path) -> None:
    p.unlink()
    p.mkdir()


CORRUPTIONS = {
    "flipped byte": _flip, "truncated": _truncate, "empty": _empty, "random": _random,
    "checksummed garbage": _valid_checksum_garbage_body,
    "checksummed non-plan": _valid_checksum_wrong_type,
    "tampered plan": _allow_everything_plan_bad_checksum,
    "directory": _directory_instead,
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("command", ["hook", "eval"])
def test_corrupted_plan_cache_is_discarded_and_rebuilt(project: Project, run_warden: Runner,
                                                       xdg: Env, corruption: str,
                                                       command: str) -> None:
    write_policy(project, "deny")
    args = ("hook", "claude") if command == "hook" else ("eval",)
    expect = verdict if command == "hook" else (lambda p: p.returncode)
    deny, allow = ("deny", "none") if command == "hook" else (2, 0)
    first = run_warden(*args, input=json.dumps(bash("rm -rf /")))
    assert expect(first) == deny, first.stderr
    (cache,) = _plan_files(xdg)
    good = cache.read_bytes()
    CORRUPTIONS[corruption](cache)
    for _ in range(2):  # the rebuilt cache is used the second time
        proc = run_warden(*args, input=json.dumps(bash("rm -rf /")))
        assert expect(proc) == deny, (corruption, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
        ok = run_warden(*args, input=json.dumps(bash("ls")))
        assert expect(ok) == allow, ok.stderr
    if corruption != "directory":  # a directory cannot be replaced; warden just skips it
        assert cache.read_bytes() == good, "the cache was not rebuilt"


def test_corrupted_plan_cache_run_still_gates(project: Project, run_warden: Runner,
                                              xdg: Env) -> None:
    write_policy(project, "deny")
    assert run_warden("run", "gated").returncode == 2
    (cache,) = _plan_files(xdg)
    _allow_everything_plan_bad_checksum(cache)
    proc = run_warden("run", "gated")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not (project.root / "marker").exists()


def test_unwritable_cache_dir_still_decides(project: Project, run_warden: Runner,
                                            xdg: Env) -> None:
    write_policy(project, "deny")
    (xdg.cache / "warden").write_text("a file where the cache directory should be")
    for event, want in ((bash("rm -rf /"), "deny"), (bash("ls"), "none")):
        proc = hook(run_warden, event)
        assert verdict(proc) == want, proc.stderr
        assert proc.stderr == ""


def test_corrupted_hook_pointer_is_ignored(project: Project, run_warden: Runner,
                                           xdg: Env) -> None:
    write_policy(project, "allow")
    assert hook(run_warden, bash("ls")).returncode == 0
    pointers = list((xdg.cache / "warden" / "hooks").glob("*.json"))
    assert pointers
    for p in pointers:
        p.write_bytes(b"\x00garbage{")
    project.policy("version: 1\npolicies: [oops\n")  # now broken: falls back to deny
    proc = hook(run_warden, bash("ls"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "on_error: deny" in proc.stderr


# ========================================================================= disk full


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str = "1m") -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> None:
    """Fill the file system of ``directory`` to the last byte."""
    fd = os.open(directory / f"filler-{uuid.uuid4().hex}", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)


def unfill(directory: Path) -> None:
    for p in directory.glob("filler-*"):
        p.unlink()


@pytest.mark.parametrize("on_error", ON_ERROR)
def test_hook_disk_full_while_recording(project: Project, run_warden: Runner, tmp_path: Path,
                                        on_error: str) -> None:
    with tiny_tmpfs(tmp_path / "tmpfs") as fs:
        write_policy(project, on_error, state=str(fs / "state.db"))
        proc = hook(run_warden, post_event("echo warm-up"))
        assert proc.returncode == 0, proc.stderr
        fill(fs)
        proc = hook(run_warden, post_event("ls -la"))
        assert_hook_failed(proc, on_error, "state database")
        assert "full" in proc.stderr or "I/O error" in proc.stderr, proc.stderr
        # Once the full disk makes the state unusable, a call the policy denies is denied,
        # or (on_error: allow) let through with a note saying it was not checked.
        proc = hook(run_warden, bash("rm -rf /"))
        assert verdict(proc) == "deny" or (
            on_error == "allow" and "not checked" in json.loads(proc.stdout)["systemMessage"])
        unfill(fs)
        state_ok(fs / "state.db")
        audit_ok(run_warden)
        proc = hook(run_warden, post_event("ls after"))
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("on_error", ON_ERROR)
def test_run_disk_full_before_journal_runs_nothing(project: Project, run_warden: Runner,
                                                   tmp_path: Path, on_error: str) -> None:
    with tiny_tmpfs(tmp_path / "tmpfs") as fs:
        write_policy(project, on_error, state=str(fs / "state.db"))
        assert run_warden("kill-switch", "status").returncode == 0  # creates the database
        fill(fs)
        proc = run_warden("run", "touch-marker")
        assert proc.returncode == 70, (proc.returncode, proc.stdout, proc.stderr)
        assert "full" in proc.stderr and "Traceback" not in proc.stderr
        assert not (project.root / "marker").exists()
        unfill(fs)
        state_ok(fs / "state.db")
        audit_ok(run_warden)
        hist = json.loads(run_warden("history", "--format", "json").stdout)
        assert all(e["status"] != "started" for e in hist["executions"])


def test_run_disk_fills_during_a_step(project: Project, run_warden: Runner,
                                      tmp_path: Path) -> None:
    # The first step fills the disk that holds the journal: the second step must not run,
    # and once there is room again the journal is consistent and `recover` closes the run.
    with tiny_tmpfs(tmp_path / "tmpfs") as fs:
        write_policy(project, "deny", state=str(fs / "state.db"),
                     fill=str(fs / "filler-step"))
        assert run_warden("kill-switch", "status").returncode == 0
        proc = run_warden("run", "fill-then-mark")
        assert proc.returncode not in (0, 2), (proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert not (project.root / "marker").exists()
        unfill(fs)
        state_ok(fs / "state.db")
        audit_ok(run_warden)
        rec = run_warden("recover", "--format", "json")
        assert rec.returncode == 0, rec.stdout + rec.stderr
        hist = json.loads(run_warden("history", "--format", "json").stdout)
        statuses = {e["status"] for e in hist["executions"]}
        assert statuses <= {"rolled_back", "partial", "aborted"}, statuses
        audit_ok(run_warden)


def _rlimit_fsize(limit: int) -> Any:
    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return setup


def run_limited(args: list[str], cwd: Path, xdg: Env, stdin: str = "") -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "CLAUDE_"))}
    env.update(XDG_CONFIG_HOME=str(xdg.config), XDG_CACHE_HOME=str(xdg.cache),
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([WARDEN, *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60, check=False,
                          preexec_fn=_rlimit_fsize(0))


@pytest.mark.parametrize("on_error", ON_ERROR)
def test_hook_file_size_limit_while_recording(project: Project, run_warden: Runner, xdg: Env,
                                              on_error: str) -> None:
    # The same failure without root: the hook may not write a single byte to any file.
    write_policy(project, on_error)
    assert hook(run_warden, post_event("echo warm-up")).returncode == 0
    proc = run_limited(["hook", "claude"], project.root, xdg, json.dumps(post_event("ls")))
    assert_hook_failed(proc, on_error, "state database")
    state_ok(project.root / ".warden" / "state.db")
    audit_ok(run_warden)


def test_run_file_size_limit_runs_nothing(project: Project, run_warden: Runner,
                                          xdg: Env) -> None:
    write_policy(project, "deny")
    assert run_warden("kill-switch", "status").returncode == 0
    proc = run_limited(["run", "touch-marker"], project.root, xdg)
    assert proc.returncode == 70, (proc.returncode, proc.stdout, proc.stderr)
    assert "state database" in proc.stderr and "Traceback" not in proc.stderr
    assert not (project.root / "marker").exists()
    state_ok(project.root / ".warden" / "state.db")
    audit_ok(run_warden)


# ======================================================== commands that cannot start


@pytest.mark.parametrize("on_error", ON_ERROR)
def test_hook_then_command_cannot_start(project: Project, run_warden: Runner,
                                        on_error: str) -> None:
    write_policy(project, on_error, extra=THEN_FAILS)
    proc = hook(run_warden, bash("ls"))
    assert_hook_failed(proc, on_error, "could not start '/nonexistent/warden-logger'")
    if on_error == "allow":
        doc = json.loads(proc.stdout)
        assert doc["hookSpecificOutput"]["permissionDecision"] == "allow"
    # A deny whose side effect fails stays a deny, whatever on_error says.
    proc = hook(run_warden, bash("sudo rm"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "could not start" in proc.stderr


@pytest.mark.parametrize("on_error", ON_ERROR)
def test_run_step_command_cannot_start(project: Project, run_warden: Runner,
                                       on_error: str) -> None:
    write_policy(project, on_error)
    proc = run_warden("run", "bad-then-mark", "--format", "json")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["execution"]["status"] == "rolled_back"
    assert "cannot start '/nonexistent/warden-test-cmd'" in doc["reason"]
    assert not (project.root / "marker").exists()
    audit_ok(run_warden)


@pytest.mark.parametrize("on_error", ON_ERROR)
def test_run_gate_command_cannot_start(project: Project, run_warden: Runner,
                                       on_error: str) -> None:
    write_policy(project, on_error)
    proc = run_warden("run", "gated", "--format", "json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    (gate,) = doc["gates"]
    assert gate["passed"] is False and "warden-gate-cmd" in gate["detail"]
    assert not (project.root / "marker").exists()


@pytest.mark.parametrize("on_error", ON_ERROR)
def test_http_hook_then_command_cannot_start(project: Project, on_error: str) -> None:
    # `warden serve` answers /v1/hook/claude exactly as the CLI hook does.
    from warden import serve

    write_policy(project, on_error, extra=THEN_FAILS)
    engine = project.engine()
    try:
        reply = serve.claude_reply(engine, bash("ls"))
    finally:
        engine.close()
    assert "could not start '/nonexistent/warden-logger'" in reply.stderr
    if on_error == "deny":
        assert reply.exit_code == 2
    else:
        assert reply.exit_code == 0 and reply.stdout is not None
        assert "could not start" in reply.stdout["systemMessage"]


# ==================================================================== bad hook stdin

BAD_STDIN = {
    "empty": b"",
    "invalid JSON": b'{"hook_event_name": ',
    "not an object": b'["PreToolUse"]',
    "NaN": b'{"hook_event_name": "PreToolUse", "x": NaN}',
    "invalid UTF-8": b'{"hook_event_name": "PreToolUse", "x": "\xff"}',
    "10,000-deep": b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "50 MB": b'{"hook_event_name": "PreToolUse", "x": "' + b"a" * (50 << 20) + b'"}',
}


@pytest.mark.parametrize("on_error", ON_ERROR)
@pytest.mark.parametrize("name", sorted(BAD_STDIN))
def test_hook_bad_stdin(project: Project, run_warden: Runner, on_error: str,
                        name: str) -> None:
    write_policy(project, on_error)
    proc = run_warden("hook", "claude", input=BAD_STDIN[name], timeout=120)
    assert_hook_failed(proc, on_error, "warden: ")
    assert not (project.root / ".warden" / "state.db").exists()
