#!/usr/bin/env python3
"""Run every fuzz target for a fixed number of iterations (``make fuzz``).

    python fuzz/run.py [--runs N] [--targets load,eval,hook] [--engine auto|atheris|hypothesis]

With atheris (coverage-guided, libFuzzer) each target runs in its own process on a scratch
copy of its seed corpus (fuzz/corpus/<target>/, never modified) with a token dictionary;
new interesting inputs stay in the scratch directory, crashes are copied to
fuzz/crashes/ and make the run fail. When atheris cannot be installed (no wheel for this
Python or platform), the runner says so and falls back to hypothesis-driven random bytes
and mutations of the seed corpus, for the same number of iterations.

Exit status: 0 when no target crashed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TARGETS = ("load", "eval", "hook")
DICTS = {"load": "yaml.dict", "eval": "json.dict", "hook": "json.dict"}
DEFAULT_RUNS = int(os.environ.get("WARDEN_FUZZ_RUNS", "20000"))
MAX_LEN = 4096


def seeds(target: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((HERE / "corpus" / target).iterdir()) if p.is_file()]


def replay_seeds(target: str) -> list[str]:
    """Every seed through the target in this process: a quick sanity check."""
    import targets

    failures = []
    for data in seeds(target):
        try:
            targets.TARGETS[target](data)
        except Exception:
            failures.append(f"seed {data[:60]!r}:\n{traceback.format_exc()}")
    return failures


def run_atheris(target: str, runs: int, scratch: Path) -> tuple[bool, str]:
    work = scratch / target
    shutil.copytree(HERE / "corpus" / target, work / "seed")
    (work / "new").mkdir()
    artifacts = work / "artifacts"
    artifacts.mkdir()
    cmd = [sys.executable, str(HERE / f"fuzz_{target}.py"), f"-runs={runs}",
           f"-max_len={MAX_LEN}", f"-dict={HERE / DICTS[target]}", "-timeout=30",
           "-rss_limit_mb=4096", f"-artifact_prefix={artifacts}/", "-print_final_stats=1",
           str(work / "new"), str(work / "seed")]
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"),
               XDG_CONFIG_HOME=str(work / "config"))
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, check=False)
    elapsed = time.monotonic() - start
    log = proc.stdout + proc.stderr
    crashes = sorted(artifacts.iterdir())
    if crashes:
        out = HERE / "crashes"
        out.mkdir(exist_ok=True)
        for c in crashes:
            shutil.copy(c, out / f"{target}-{c.name}")
    stats = [line for line in log.splitlines() if line.startswith(("stat::", "Done "))]
    ok = proc.returncode == 0 and not crashes
    summary = f"{target}: {runs} runs in {elapsed:.1f}s, exit {proc.returncode}, " \
              f"{len(crashes)} crash file(s), {len(list((work / 'new').iterdir()))} new corpus " \
              f"entries"
    if not ok:
        tail = "\n".join(log.splitlines()[-60:])
        summary += f"\n--- libFuzzer output (tail) ---\n{tail}"
    elif stats:
        summary += "\n  " + "\n  ".join(s for s in stats if "number_of_executed_units" in s
                                        or "average_exec_per_sec" in s or "peak_rss" in s)
    return ok, summary


def run_hypothesis(target: str, runs: int) -> tuple[bool, str]:
    import targets
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seed_list = seeds(target)

    def mutate(t: tuple[int, int, int, bytes, bool]) -> bytes:
        pick, at, cut, insert, dup = t
        base = seed_list[pick % len(seed_list)]
        at %= len(base) + 1
        out = base[:at] + insert + base[at + cut:]
        return out + out if dup else out

    data = st.one_of(
        st.binary(max_size=MAX_LEN),
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 16),
                  st.binary(max_size=16), st.booleans()).map(mutate),
        st.lists(st.sampled_from(seed_list), min_size=1, max_size=3).map(b"".join),
    )
    failure: list[str] = []

    @settings(max_examples=runs, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data)
    def check(raw: bytes) -> None:
        targets.TARGETS[target](raw)

    start = time.monotonic()
    try:
        check()
    except Exception:
        failure.append(traceback.format_exc())
    elapsed = time.monotonic() - start
    summary = f"{target}: {runs} hypothesis examples in {elapsed:.1f}s"
    if failure:
        summary += "\n" + failure[0]
    return not failure, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                    help=f"iterations per target (default {DEFAULT_RUNS}, $WARDEN_FUZZ_RUNS)")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    args = ap.parse_args()
    names = [t for t in args.targets.split(",") if t]
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s): {', '.join(unknown)}")
    engine = args.engine
    if engine in ("auto", "atheris"):
        try:
            import atheris  # noqa: F401
            engine = "atheris"
        except ImportError:
            if args.engine == "atheris":
                print("atheris is not installed", file=sys.stderr)
                return 1
            print("fuzz: atheris cannot be installed here; falling back to hypothesis-driven "
                  "random bytes and seed mutations (not coverage-guided)")
            engine = "hypothesis"
    scratch_root = Path(tempfile.mkdtemp(prefix="warden-fuzz-"))
    os.environ["XDG_CACHE_HOME"] = str(scratch_root / "cache")
    os.environ["XDG_CONFIG_HOME"] = str(scratch_root / "config")
    print(f"fuzz: engine {engine}, {args.runs} iterations per target, targets "
          f"{', '.join(names)}")
    failed = []
    try:
        for target in names:
            problems = replay_seeds(target)
            if problems:
                failed.append(target)
                print(f"{target}: seed corpus FAILED\n" + "\n".join(problems))
                continue
            if engine == "atheris":
                ok, summary = run_atheris(target, args.runs, scratch_root)
            else:
                ok, summary = run_hypothesis(target, args.runs)
            print(summary)
            if not ok:
                failed.append(target)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)
    if failed:
        print(f"fuzz: FAILED: {', '.join(failed)}" + (" (inputs in fuzz/crashes/)"
                                                     if engine == "atheris" else ""))
        return 1
    print("fuzz: no crashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
