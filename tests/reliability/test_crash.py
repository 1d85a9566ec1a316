"""Crash safety (issue 7, item 4): SIGKILL a ``warden run`` at random moments.

The action writes, overwrites and deletes files, creates directories and runs child
processes (which outlive a killed warden in their own process group). After every kill:

- the SQLite file passes ``PRAGMA integrity_check``; every execution is either finished
  (status, end time and exit code written together) or still ``started``/``rolling_back``
  with a dead pid, which ``warden history`` reports as ``interrupted``; never half-written;
- ``warden audit verify`` passes;
- ``warden recover`` rolls the interrupted run back: the project tree is byte for byte what
  it was before the run (or what a complete run leaves, when the kill came after the end),
  no child process of the killed run is left, and the audit chain still verifies.

Kill moments are drawn from a seeded RNG over the measured length of a whole run. ``make
test`` kills 10 runs; ``make stress`` 50, and also kills ``warden recover`` itself now and
then before recovering again.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from wardentest import WARDEN, Env, Project, Runner

SLEEP = "import sys, time; time.sleep(float(sys.argv[1]))"
BIG = "0123456789abcdef" * 16384  # 256 KiB: widens the window inside a file write
FINISHED = {"succeeded", "rolled_back", "partial", "aborted"}
LIVE = {"started", "rolling_back"}


def policy(marker: str) -> str:
    py = json.dumps(sys.executable)
    sleep = json.dumps(SLEEP)

    def child(seconds: str) -> str:
        return f'[{py}, "-c", {sleep}, "{seconds}", "{marker}"]'

    return f"""
version: 1
actions:
  deploy:
    description: Many kinds of change, with pauses between them.
    steps:
      - {{name: w1, write_file: {{path: out/a/one.txt, content: "one\\n"}}}}
      - {{name: s1, run: {child("0.15")}, rollback: ["true"]}}
      - {{name: w2, write_file: {{path: existing.txt, content: "changed\\n", mode: "0640"}}}}
      - {{name: d1, delete_file: {{path: victim.txt}}}}
      - {{name: s2, run: {child("0.15")}}}
      - {{name: m1, mkdir: {{path: made/deeper}}}}
      - {{name: w3, write_file: {{path: big.txt, content: "{BIG}"}}}}
      - {{name: s3, run: {child("0.1")}, verify: ["test", "-f", "big.txt"]}}
"""


STEPS = 8


def reset_tree(root: Path) -> None:
    import shutil

    for name in ("out", "made"):
        shutil.rmtree(root / name, ignore_errors=True)
    for name in ("big.txt", "marker"):
        (root / name).unlink(missing_ok=True)
    (root / "existing.txt").write_text("original\n")
    os.chmod(root / "existing.txt", 0o644)
    (root / "victim.txt").write_text("victim\n")


def tree(root: Path) -> dict[str, str]:
    """Every path under the project except warden's own .warden/: content hash and mode."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".warden")
        for name in dirnames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = f"dir {os.stat(p).st_mode:o}"
        for name in sorted(filenames):
            p = Path(dirpath) / name
            digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            out[str(p.relative_to(root))] = f"{digest} {os.stat(p).st_mode:o}"
    return out


def check_db(db: Path) -> list[dict[str, Any]]:
    """Integrity and the 'finished or interrupted, never half-written' invariant."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = [dict(r) for r in conn.execute("SELECT * FROM executions ORDER BY started")]
        for r in rows:
            assert r["status"] in FINISHED | LIVE, r
            if r["status"] in FINISHED:
                assert r["ended"] is not None and r["exit_code"] is not None, r
            else:
                assert r["ended"] is None, r
                assert not _alive(r["pid"]), f"execution {r['id']} still has a live pid"
            steps = [dict(s) for s in conn.execute(
                "SELECT idx, status FROM execution_steps WHERE execution_id = ? ORDER BY idx",
                (r["id"],))]
            assert all(s["status"] in ("running", "ok", "failed") for s in steps), steps
            if r["status"] == "succeeded":
                assert [s["status"] for s in steps] == ["ok"] * STEPS, steps
        return rows
    finally:
        conn.close()


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


def children_of(marker: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and _alive(int(d.name)):
            out.append(int(d.name))
    return out


def _env(xdg: Env) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "CLAUDE_"))}
    env.update(XDG_CONFIG_HOME=str(xdg.config), XDG_CACHE_HOME=str(xdg.cache))
    return env


def kill_at(args: list[str], root: Path, xdg: Env, delay: float) -> int:
    """Start warden, SIGKILL it after ``delay`` seconds (if still running); its exit code."""
    proc = subprocess.Popen([WARDEN, *args], cwd=root, env=_env(xdg),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


def crash_runs(project: Project, run_warden: Runner, xdg: Env, n: int, seed: int,
               kill_recover: bool) -> list[str]:
    marker = f"warden-crash-{uuid.uuid4().hex[:12]}"
    project.policy(policy(marker))
    root = project.root
    db = root / ".warden" / "state.db"
    reset_tree(root)
    before = tree(root)
    # Calibrate: one whole run (also warms the plan cache), and the tree it leaves.
    t0 = time.monotonic()
    ok = run_warden("run", "deploy")
    length = time.monotonic() - t0
    assert ok.returncode == 0, ok.stdout + ok.stderr
    after_success = tree(root)
    assert after_success != before
    rng = random.Random(seed)
    log = []
    for i in range(n):
        reset_tree(root)
        assert tree(root) == before
        delay = rng.uniform(0.0, length * 1.1)
        known = {r["id"] for r in check_db(db)}
        code = kill_at(["run", "deploy"], root, xdg, delay)
        check_db(db)
        hist = json.loads(run_warden("history", "--format", "json", "--limit", "1000").stdout)
        statuses = [e["status"] for e in hist["executions"]]
        assert "started" not in statuses and "rolling_back" not in statuses, statuses
        verify = run_warden("audit", "verify")
        assert verify.returncode == 0, f"run {i} (kill at {delay:.3f}s): {verify.stdout}"
        if kill_recover and rng.random() < 0.4:
            kill_at(["recover"], root, xdg, rng.uniform(0.0, 0.6))
            check_db(db)
        rec = run_warden("recover", "--format", "json")
        assert rec.returncode == 0, f"run {i} (kill at {delay:.3f}s): {rec.stdout} {rec.stderr}"
        rows = check_db(db)
        assert all(r["status"] in FINISHED for r in rows), [r["status"] for r in rows]
        mine = [r for r in rows if r["id"] not in known]
        assert len(mine) <= 1, mine
        final = mine[0]["status"] if mine else "never journalled"
        want = after_success if final == "succeeded" else before
        got = tree(root)
        assert got == want, (f"run {i} (kill at {delay:.3f}s, exit {code}, {final}): tree "
                             f"differs: {_tree_diff(want, got)}")
        deadline = time.monotonic() + 5
        while children_of(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not children_of(marker), f"run {i}: a child of the killed run is still alive"
        verify = run_warden("audit", "verify")
        assert verify.returncode == 0, verify.stdout
        log.append(f"{delay:.3f}s:{'killed' if code == -9 else code}:{final}")
    return log


def _tree_diff(want: dict[str, str], got: dict[str, str]) -> list[str]:
    out = []
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            out.append(f"{k}: {want.get(k)} -> {got.get(k)}")
    return out


def test_sigkill_runs(project: Project, run_warden: Runner, xdg: Env) -> None:
    log = crash_runs(project, run_warden, xdg, n=10, seed=20240607, kill_recover=False)
    assert len(log) == 10


@pytest.mark.stress
def test_sigkill_runs_stress(project: Project, run_warden: Runner, xdg: Env) -> None:
    n = int(os.environ.get("WARDEN_CRASH_RUNS", "50"))
    log = crash_runs(project, run_warden, xdg, n=n, seed=1234567, kill_recover=True)
    assert len(log) == n


# ------------------------------------------------- a kill at the worst moment, on purpose

KILLER = """
import os, signal
_replace = os.replace
def replace(src, dst, *a, **kw):
    if os.path.basename(str(src)).startswith(".warden-") and \
            os.path.basename(str(dst)) == os.environ.get("KILL_ON_RENAME"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _replace(src, dst, *a, **kw)
os.replace = replace
"""


def test_kill_between_write_and_rename(project: Project, run_warden: Runner, xdg: Env,
                                       tmp_path: Path) -> None:
    # warden writes a file as temp file + rename. Killed after the temp file is written but
    # before the rename (a sitecustomize makes the kill land exactly there), the temp file
    # sits next to the target; `recover` must remove it, and a recover killed the same way
    # while restoring must leave nothing a second recover cannot clean.
    project.policy(policy("unused-marker"))
    root = project.root
    reset_tree(root)
    before = tree(root)
    hook_dir = tmp_path / "killer"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(KILLER)
    env = _env(xdg)
    env.update(PYTHONPATH=str(hook_dir), KILL_ON_RENAME="existing.txt")
    for args in (["run", "deploy"], ["recover"]):
        proc = subprocess.run([WARDEN, *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == -signal.SIGKILL, (args, proc.stdout, proc.stderr)
        check_db(root / ".warden" / "state.db")
        assert run_warden("audit", "verify").returncode == 0
    strays = [p for p in tree(root) if Path(p).name.startswith(".warden-")]
    assert strays, "the kill did not land between write and rename"
    rec = run_warden("recover", "--format", "json")
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert json.loads(rec.stdout)["recovered"], rec.stdout
    assert tree(root) == before, _tree_diff(before, tree(root))
    assert run_warden("audit", "verify").returncode == 0
