#!/usr/bin/env python3
"""Concurrency load: many warden processes on one state database.

Two workloads, each driven by ``--procs`` parallel workers that start one ``warden``
process per call (as agents and CI jobs do):

1. ``hook``: ``--hooks`` calls of ``warden hook claude`` on ONE session: a third
   ``PostToolUse`` (Read, recorded), a third ``UserPromptSubmit`` (recorded) and a third
   ``PreToolUse`` (Edit) decided by a ``state:`` rule ("read the file before editing it"),
   so writers and readers of the same session contend. Checked: every call answers (exit 0,
   nothing on stderr), and every recorded event is in the database (zero lost).
2. ``run``: ``--runs`` calls of ``warden run deploy -p n=K`` on one action guarded by a
   ``rate_limit`` gate (``--rate`` per day) and an ``idempotent`` gate, with ``--distinct``
   different values of K. Checked: exactly ``--rate`` executions succeed (the step appends a
   line to deployed.log: exactly that many lines, no K twice), every other call is blocked
   (exit 2), none fails.

Both check that no "database is locked" reached stderr and that ``warden audit verify``
passes, and print the throughput (calls per second, wall clock) and the latency of single
calls (median, p90, p99 and worst, ms).

    python bench/load_bench.py [--procs 16] [--hooks 2000] [--runs 200] [--rate 50]
                               [--distinct 100] [--json]

tests/reliability/test_load.py runs the same workloads (small in ``make test``, full size in
``make stress``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

WARDEN = shutil.which("warden", path=str(Path(sys.executable).parent)) or "warden"
SESSION = "load-session"

POLICY = """\
version: 1
settings: {on_error: deny}
policies:
  - name: read-before-edit
    event: PreToolUse
    tool: Edit
    when:
      not:
        state:
          event: PostToolUse
          tool: Read
          where: {field: tool_input.file_path, equals: "{tool_input.file_path}"}
    effect: deny
    message: "read {tool_input.file_path} before editing it"
  - name: no-rm-rf
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, matches: 'rm\\s+-rf'}
    effect: deny
actions:
  deploy:
    params:
      type: object
      required: [n]
      additionalProperties: false
      properties: {n: {type: integer}}
    gates: [rate, once]
    idempotency_key: "deploy:{params.n}"
    steps:
      - name: log
        run: ["sh", "-c", "echo \\"$0\\" >> deployed.log", "{params.n}"]
gates:
  rate: {kind: rate_limit, key: deploy, max: RATE, per: 1d}
  once: {kind: idempotent}
"""


def make_project(base: Path, rate: int) -> tuple[Path, dict[str, str]]:
    """A project directory and the environment its warden processes run with."""
    root = base / "project"
    root.mkdir(parents=True)
    (root / "warden.yaml").write_text(POLICY.replace("RATE", str(rate)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "CLAUDE_"))}
    env.update(HOME=str(base / "home"), XDG_CONFIG_HOME=str(base / "config"),
               XDG_CACHE_HOME=str(base / "cache"), CLAUDE_PROJECT_DIR=str(root))
    return root, env


def hook_event(i: int) -> dict[str, Any]:
    kind = i % 3
    path = f"src/file{i % 50}.py"
    if kind == 0:
        return {"session_id": SESSION, "hook_event_name": "PostToolUse", "tool_name": "Read",
                "tool_input": {"file_path": path}, "tool_response": {"content": f"line {i}"}}
    if kind == 1:
        return {"session_id": SESSION, "hook_event_name": "UserPromptSubmit",
                "prompt": f"prompt number {i}"}
    return {"session_id": SESSION, "hook_event_name": "PreToolUse", "tool_name": "Edit",
            "tool_input": {"file_path": path, "old_string": "a", "new_string": "b"}}


RECORDED = frozenset({"PostToolUse", "UserPromptSubmit"})


def _pool(procs: int, n: int, call: Callable[[int], dict[str, Any]]
          ) -> tuple[list[dict[str, Any]], float]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=procs) as pool:
        results = list(pool.map(call, range(n)))
    return results, time.perf_counter() - t0


def _timed(args: list[str], root: Path, env: dict[str, str], stdin: str = "") -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run([WARDEN, *args], input=stdin, capture_output=True, text=True,
                          cwd=root, env=env, timeout=300, check=False)
    return {"ms": (time.perf_counter() - t0) * 1000, "code": proc.returncode,
            "stdout": proc.stdout, "stderr": proc.stderr}


def _latency(results: list[dict[str, Any]]) -> dict[str, float]:
    ms = sorted(r["ms"] for r in results)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p * len(ms)))], 1)

    return {"median_ms": round(statistics.median(ms), 1), "p90_ms": pct(0.90),
            "p99_ms": pct(0.99), "worst_ms": round(ms[-1], 1)}


def session_events(db: Path, session: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events WHERE session_id = ?",
                                (session,)).fetchone()[0])
    finally:
        conn.close()


def audit_verifies(root: Path, env: dict[str, str]) -> bool:
    return _timed(["audit", "verify"], root, env)["code"] == 0


def hook_load(root: Path, env: dict[str, str], *, procs: int, total: int) -> dict[str, Any]:
    # One call first: the plan cache and the database exist before the storm.
    warm = _timed(["hook", "claude"], root, env, json.dumps(
        {"session_id": "warm-up", "hook_event_name": "PostToolUse", "tool_name": "Read",
         "tool_input": {"file_path": "README"}}))
    assert warm["code"] == 0, warm

    def call(i: int) -> dict[str, Any]:
        return _timed(["hook", "claude"], root, env, json.dumps(hook_event(i)))

    results, wall = _pool(procs, total, call)
    sent = sum(1 for i in range(total) if hook_event(i)["hook_event_name"] in RECORDED)
    stored = session_events(root / ".warden" / "state.db", SESSION)
    denied = sum(1 for r in results if '"permissionDecision":"deny"' in r["stdout"])
    return {
        "workload": "hook", "procs": procs, "calls": total, "wall_s": round(wall, 2),
        "calls_per_s": round(total / wall, 1), **_latency(results),
        "exit_codes": dict(Counter(r["code"] for r in results)),
        "with_stderr": sum(1 for r in results if r["stderr"].strip()),
        "database_locked": sum(1 for r in results if "database is locked" in r["stderr"]),
        "recorded_sent": sent, "recorded_stored": stored, "lost_events": sent - stored,
        "denied_edits": denied, "audit_ok": audit_verifies(root, env),
        "stderr_sample": next((r["stderr"] for r in results if r["stderr"].strip()), ""),
    }


def run_load(root: Path, env: dict[str, str], *, procs: int, total: int, rate: int,
             distinct: int) -> dict[str, Any]:
    def call(i: int) -> dict[str, Any]:
        return _timed(["run", "deploy", "-p", f"n={i % distinct}", "--format", "json"],
                      root, env)

    results, wall = _pool(procs, total, call)
    log = root / "deployed.log"
    lines = log.read_text().split() if log.exists() else []
    succeeded = [r for r in results if r["code"] == 0]
    return {
        "workload": "run", "procs": procs, "calls": total, "rate": rate, "distinct": distinct,
        "wall_s": round(wall, 2), "calls_per_s": round(total / wall, 1), **_latency(results),
        "exit_codes": dict(Counter(r["code"] for r in results)),
        "succeeded": len(succeeded), "step_ran": len(lines),
        "duplicate_keys_ran": len(lines) - len(set(lines)),
        "database_locked": sum(1 for r in results if "database is locked" in r["stderr"]),
        "audit_ok": audit_verifies(root, env),
        "stderr_sample": next((r["stderr"] for r in results if r["code"] not in (0, 2)), ""),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=16)
    ap.add_argument("--hooks", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--distinct", type=int, default=100)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="warden-load-"))
    try:
        out = []
        if args.hooks:
            root, env = make_project(base / "hooks", args.rate)
            out.append(hook_load(root, env, procs=args.procs, total=args.hooks))
        if args.runs:
            root, env = make_project(base / "runs", args.rate)
            out.append(run_load(root, env, procs=args.procs, total=args.runs, rate=args.rate,
                                distinct=args.distinct))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"warden load bench: {args.procs} processes, {os.cpu_count()} CPUs, "
              f"load average {load:.1f}")
        print("| workload | calls | wall s | calls/s | median ms | p99 ms | worst ms | checks |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in out:
            if r["workload"] == "hook":
                checks = (f"lost events {r['lost_events']}, locked {r['database_locked']}, "
                          f"stderr {r['with_stderr']}, audit {'ok' if r['audit_ok'] else 'BAD'}")
            else:
                checks = (f"succeeded {r['succeeded']}/{r['rate']} permitted, step ran "
                          f"{r['step_ran']}, locked {r['database_locked']}, audit "
                          f"{'ok' if r['audit_ok'] else 'BAD'}")
            print(f"| {r['workload']} | {r['calls']} | {r['wall_s']} | {r['calls_per_s']} | "
                  f"{r['median_ms']} | {r['p99_ms']} | {r['worst_ms']} | {checks} |")
        for r in out:
            if r["stderr_sample"]:
                print(f"{r['workload']}: first unexpected stderr: {r['stderr_sample'].strip()}")
    bad = any(r["database_locked"] or not r["audit_ok"] for r in out) or any(
        r.get("lost_events") for r in out)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
