#!/usr/bin/env python3
"""Wall time of one `warden hook claude` process, next to `python3 -c pass`.

DESIGN §5 / issue 3: a hook call on an unchanged policy set (cached plan) must answer well
under 100 ms; the target is under 2.5x the bare interpreter on the same machine, measured in
the same run. This script:

1. writes a generated 100-rule policy (bench/gen.py ``realistic(100)``) into a tmp project
   with its own HOME / XDG_CONFIG_HOME / XDG_CACHE_HOME;
2. runs the hook once to compile and cache the plan (and, unless --no-bytecode, lets Python
   write its .pyc files, as on any real installation);
3. times ``--runs`` (default 30) processes of each, interleaved: the bare interpreter
   (``python -c pass``, the interpreter warden itself runs on), ``warden hook claude`` on a
   PreToolUse event, and on a PostToolUse event (which also records into the SQLite state);
4. prints markdown table rows: median and p90 wall time in ms and the ratio to the
   interpreter, plus the median CPU time (user + system) of the process, which a busy
   machine disturbs less than wall time.

    python bench/hook_bench.py [--runs 30] [--rules 100] [--json] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen  # noqa: E402

LEAKY = ("WARDEN_NOW", "WARDEN_STATE", "WARDEN_ON_ERROR", "WARDEN_DEBUG", "CLAUDE_PROJECT_DIR")


def warden_bin() -> str:
    candidate = Path(sys.executable).parent / "warden"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("warden")
    if not found:
        raise SystemExit("hook_bench: no `warden` next to this Python or on PATH")
    return found


def timed(argv: list[str], stdin: bytes, cwd: Path, env: dict[str, str]
          ) -> tuple[float, float, int]:
    """(wall ms, CPU ms of the child: user + system, exit code) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, cwd=cwd, env=env, check=False)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu, proc.returncode


def p90(xs: list[float]) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def run(runs: int, rules: int, bytecode: bool) -> dict[str, Any]:
    ps = gen.realistic(rules)
    pre = json.dumps(next(r for r in gen.requests(ps, 50) if r.get("tool_name") == "Bash"))
    post_event = json.loads(pre)
    post_event.update(hook_event_name="PostToolUse",
                      tool_response={"stdout": "", "stderr": "", "interrupted": False})
    post = json.dumps(post_event)
    wb = warden_bin()
    with tempfile.TemporaryDirectory(prefix="warden-hook-bench-") as tmp:
        root = Path(tmp) / "project"
        home = Path(tmp) / "home"
        ps.write(root)
        (home / ".config").mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if k not in LEAKY}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                   XDG_CACHE_HOME=str(home / ".cache"))
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        cases: dict[str, tuple[list[str], bytes]] = {
            "python3 -c pass": ([sys.executable, "-c", "pass"], b""),
            "warden hook claude (PreToolUse)": ([wb, "hook", "claude"], pre.encode()),
            "warden hook claude (PostToolUse, records state)": ([wb, "hook", "claude"],
                                                                post.encode()),
        }
        time.sleep(2.2)  # the discovery index records policy files once they are 2 s old
        for argv, stdin in cases.values():  # warm: plan cache, .pyc files, state db
            for _ in range(3):
                _, _, code = timed(argv, stdin, root, env)
                if code not in (0, 2):
                    raise SystemExit(f"hook_bench: {' '.join(argv)} exited {code}")
        plans = list((home / ".cache" / "warden" / "plans").glob("*.plan"))
        if not plans:
            raise SystemExit("hook_bench: the plan was not cached; nothing to measure")
        samples: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(runs):
            for name, (argv, stdin) in cases.items():
                wall, used, _ = timed(argv, stdin, root, env)
                samples[name].append(wall)
                cpu[name].append(used)
    base = statistics.median(samples["python3 -c pass"])
    base_cpu = statistics.median(cpu["python3 -c pass"]) or 1.0
    rows = []
    for name, xs in samples.items():
        med = statistics.median(xs)
        med_cpu = statistics.median(cpu[name])
        rows.append({"case": name, "median_ms": round(med, 1), "p90_ms": round(p90(xs), 1),
                     "ratio": round(med / base, 2), "cpu_ms": round(med_cpu, 1),
                     "cpu_ratio": round(med_cpu / base_cpu, 2), "runs": len(xs)})
    return {"rules": rules, "runs": runs, "bytecode": bytecode, "python": sys.version.split()[0],
            "load_average": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
            "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Hook wall time, {result['rules']}-rule generated policy, warm plan cache, "
        f"{result['runs']} runs each (Python {result['python']}"
        f"{'' if result['bytecode'] else ', no .pyc files'}; load average "
        f"{result['load_average']} on {result['cpus']} CPUs):",
        "",
        "| case | median ms | p90 ms | x python3 -c pass | CPU ms | CPU x |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['case']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | "
                     f"{r['ratio']:.2f} | {r['cpu_ms']:.1f} | {r['cpu_ratio']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="processes per case (default 30)")
    ap.add_argument("--rules", type=int, default=100, help="rules in the policy (default 100)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    ap.add_argument("--no-bytecode", dest="bytecode", action="store_false",
                    help="run with PYTHONDONTWRITEBYTECODE=1 (every import compiles source)")
    args = ap.parse_args()
    if args.runs < 20:
        ap.error("--runs must be at least 20")
    result = run(args.runs, args.rules, args.bytecode)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
