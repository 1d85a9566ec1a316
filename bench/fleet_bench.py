"""Fleet-mode benchmark: `warden serve` throughput and latency, and guarded runs per second
on PostgreSQL vs SQLite.

    .venv/bin/python bench/fleet_bench.py                 # everything, default sizes
    .venv/bin/python bench/fleet_bench.py --skip-runs     # only the server
    .venv/bin/python bench/fleet_bench.py --json out.json

1. For policy sets of 100 and 10,000 rules (generated: regex, glob, equals and tool-only
   rules over Bash/Edit/Read/WebFetch events), it starts the real `warden serve` on a free
   loopback port and sends a FIXED number of `POST /v1/decide` requests from a bounded
   Python load generator (T threads, one keep-alive connection each, a mix of allowed and
   denied events). It reports decisions/s, p50/p90/p99/max latency as the client sees it
   (HTTP included), and the in-process `Engine.evaluate` median for the same inputs: the
   figure comparable with OPA's published ~36 us median per evaluation of its RBAC example
   (evaluation only, no HTTP). Load generator and server share this machine's cores.
2. Guarded runs/s: `warden run` of a one-step action gated by kill switch, rate limit and
   idempotency (a fresh key per run), R runs from W concurrent workers, on a SQLite file and
   on a throwaway PostgreSQL server (started like the test suite does; skipped without
   PostgreSQL binaries or psycopg). Each run is a whole CLI process, as in CI.

Traffic goes to 127.0.0.1 only; every loop is bounded by a request count and a timeout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WARDEN = str(Path(sys.executable).parent / "warden")
OPA_MEDIAN_US = 36.0  # OPA's published median for its RBAC example (evaluation only)


# ------------------------------------------------------------------------------- policies


def policy_text(n: int) -> str:
    lines = ["version: 1", "policies:"]
    for i in range(n):
        kind = i % 4
        if kind == 0:
            lines += [f"  - name: deny-cmd-{i}", "    tool: Bash",
                      f"    when: {{field: tool_input.command, matches: '\\bcmd{i}\\b'}}",
                      "    effect: deny", f"    message: 'cmd{i} is not allowed'"]
        elif kind == 1:
            lines += [f"  - name: protect-{i}", "    tool: {matches: 'Write|Edit'}",
                      f"    when: {{field: tool_input.file_path, glob: '**/secret{i}/*'}}",
                      "    effect: deny"]
        elif kind == 2:
            lines += [f"  - name: ask-url-{i}", "    tool: WebFetch",
                      f"    when: {{field: tool_input.url, equals: 'https://h{i}.example/'}}",
                      "    effect: ask"]
        else:
            lines += [f"  - name: warn-read-{i}", "    tool: Read",
                      f"    when: {{field: tool_input.file_path, ends_with: '.key{i}'}}",
                      "    effect: warn", "    message: 'reading a key file'"]
    return "\n".join(lines) + "\n"


def inputs(n: int) -> list[dict[str, Any]]:
    mid = (n // 2) - (n // 2) % 4
    return [
        {"hook_event_name": "PreToolUse", "tool_name": "Bash",
         "tool_input": {"command": "ls -la src"}},
        {"hook_event_name": "PreToolUse", "tool_name": "Bash",
         "tool_input": {"command": f"run cmd{mid} now"}},
        {"hook_event_name": "PreToolUse", "tool_name": "Edit",
         "tool_input": {"file_path": f"/repo/secret{mid + 1}/a.txt"}},
        {"hook_event_name": "PreToolUse", "tool_name": "Edit",
         "tool_input": {"file_path": "/repo/src/main.py"}},
        {"hook_event_name": "PreToolUse", "tool_name": "WebFetch",
         "tool_input": {"url": "https://docs.python.org/"}},
        {"hook_event_name": "PreToolUse", "tool_name": "Read",
         "tool_input": {"file_path": "/repo/README.md"}},
    ]


# --------------------------------------------------------------------------------- server


def start_server(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([WARDEN, "serve", "--port", "0", "--no-user-policies"], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"warden serve did not start: {line} {err}")
    return proc, line.split("listening on ", 1)[1].split()[0]


def load(url: str, bodies: list[bytes], requests: int, threads: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    per_thread = requests // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    barrier = threading.Barrier(threads + 1)

    def worker(t: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        out = latencies[t]
        barrier.wait()
        try:
            for i in range(per_thread):
                body = bodies[(i + t) % len(bodies)]
                t0 = time.perf_counter()
                conn.request("POST", "/v1/decide", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                out.append(time.perf_counter() - t0)
                if resp.status != 200 or b'"decision"' not in data:
                    errors.append(f"{resp.status}")
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            conn.close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    barrier.wait()
    start = time.perf_counter()
    for th in pool:
        th.join(600)
    wall = time.perf_counter() - start
    flat = sorted(x for lat in latencies for x in lat)
    return {
        "requests": len(flat),
        "threads": threads,
        "errors": len(errors),
        "wall_s": round(wall, 3),
        "decisions_per_s": round(len(flat) / wall, 1),
        "p50_ms": round(_pct(flat, 50) * 1000, 3),
        "p90_ms": round(_pct(flat, 90) * 1000, 3),
        "p99_ms": round(_pct(flat, 99) * 1000, 3),
        "max_ms": round(flat[-1] * 1000, 3) if flat else None,
    }


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def in_process_median_us(root: Path, cases: list[dict[str, Any]], n: int = 3000) -> float:
    import warden

    engine = warden.load(root, user_policies=False)
    times = []
    for i in range(n):
        inp = cases[i % len(cases)]
        t0 = time.perf_counter()
        engine.evaluate(inp, side_effects=False, mode="enforce")
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def bench_server(sizes: list[int], requests: int, threads: list[int], env: dict[str, str],
                 work: Path) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        root = work / f"rules{n}"
        root.mkdir()
        (root / "warden.yaml").write_text(policy_text(n))
        cases = inputs(n)
        bodies = [json.dumps(c).encode() for c in cases]
        proc, url = start_server(root, env)
        try:
            load(url, bodies, min(500, requests), 2)  # warm-up (plan cache, connections)
            for t in threads:
                row = {"rules": n, **load(url, bodies, requests, t)}
                rows.append(row)
                print(f"serve  rules={n:>6}  threads={t:>2}  {row['decisions_per_s']:>8} dec/s"
                      f"  p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms"
                      f"  max {row['max_ms']:.1f} ms  errors {row['errors']}", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
        old_env = dict(os.environ)
        os.environ.update(env)
        try:
            median = in_process_median_us(root, cases)
        finally:
            os.environ.clear()
            os.environ.update(old_env)
        rows.append({"rules": n, "in_process_median_us": round(median, 1),
                     "opa_rbac_median_us": OPA_MEDIAN_US})
        print(f"engine rules={n:>6}  in-process evaluate median {median:.1f} us "
              f"(OPA RBAC example, published: ~{OPA_MEDIAN_US:.0f} us)", flush=True)
    return rows


# ---------------------------------------------------------------------------- guarded runs

RUN_POLICY = """\
version: 1
actions:
  bump:
    params:
      type: object
      required: [n]
      properties: {n: {type: integer}}
    gates: [kill-switch, hourly, once]
    idempotency_key: "bump:{params.n}"
    steps:
      - name: touch
        run: ["true"]
gates:
  kill-switch: {kind: kill_switch}
  hourly: {kind: rate_limit, key: bump, max: 1000000, per: 1h}
  once: {kind: idempotent}
"""


def bench_runs(state: str, label: str, runs: int, workers: int, env: dict[str, str],
               work: Path) -> dict[str, Any]:
    root = work / f"runs-{label}"
    root.mkdir()
    (root / "warden.yaml").write_text(RUN_POLICY)
    run_env = {**env, "WARDEN_STATE": state}
    subprocess.run([WARDEN, "state", "migrate", "--no-user-policies"], cwd=root, env=run_env,
                   check=True, capture_output=True, timeout=120)
    counter = iter(range(10**9))
    lock = threading.Lock()
    codes: list[int] = []
    durations: list[float] = []

    def one(_: int) -> None:
        with lock:
            n = next(counter)
        t0 = time.perf_counter()
        p = subprocess.run([WARDEN, "run", "bump", "-p", f"n={n}", "--no-user-policies"],
                           cwd=root, env=run_env, capture_output=True, timeout=120, check=False)
        with lock:
            durations.append(time.perf_counter() - t0)
            codes.append(p.returncode)

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(runs)))
    wall = time.perf_counter() - start
    durations.sort()
    row = {"engine": label, "runs": runs, "workers": workers,
           "succeeded": codes.count(0), "runs_per_s": round(runs / wall, 2),
           "p50_s": round(_pct(durations, 50), 3), "p99_s": round(_pct(durations, 99), 3)}
    print(f"runs   {label:<10} workers={workers}  {row['runs_per_s']:>6} runs/s  "
          f"p50 {row['p50_s']:.3f} s  p99 {row['p99_s']:.3f} s  ok {row['succeeded']}/{runs}",
          flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, nargs="+", default=[100, 10_000])
    ap.add_argument("--requests", type=int, default=20_000, help="requests per measurement")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--runs", type=int, default=60, help="guarded runs per engine")
    ap.add_argument("--workers", type=int, default=4, help="concurrent `warden run` workers")
    ap.add_argument("--skip-runs", action="store_true")
    ap.add_argument("--skip-serve", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()

    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }
    with tempfile.TemporaryDirectory(prefix="warden-fleet-bench-") as tmp:
        work = Path(tmp)
        home = work / "home"
        (home / "config").mkdir(parents=True)
        (home / "cache").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
        if not args.skip_serve:
            results["serve"] = bench_server(args.rules, args.requests, args.threads, env, work)
        if not args.skip_runs:
            runs = [bench_runs(str(work / "state.db"), "sqlite", args.runs, args.workers, env,
                               work)]
            pg = _postgres()
            if pg is None:
                print("runs   postgres   skipped (no PostgreSQL binaries or psycopg)")
            else:
                server, stop = pg
                try:
                    runs.append(bench_runs(server, "postgres", args.runs, args.workers, env,
                                           work))
                finally:
                    stop()
            results["runs"] = runs
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _postgres() -> tuple[str, Any] | None:
    """A throwaway PostgreSQL server (the test suite's helper) and its stop function."""
    sys.path[:0] = [str(REPO / "tests" / "fleet"), str(REPO / "tests")]
    try:
        import psycopg  # noqa: F401
        from fleet_helpers import _start_postgres, _stop_postgres, pg_bin_dir
    except ImportError:
        return None
    bindir = pg_bin_dir()
    if bindir is None:
        return None
    server = _start_postgres(bindir)
    return server.url, lambda: _stop_postgres(server)


if __name__ == "__main__":
    raise SystemExit(main())
