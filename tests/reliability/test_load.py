"""Load (issue 7, item 5): many warden processes on one SQLite state database.

``make test`` runs a small version; ``make stress`` the full size of the issue: 16 processes
making 2,000 hook decisions on one session, and 200 guarded runs of one rate-limited,
idempotent action. The workloads are bench/load_bench.py's (which also prints throughput
and latency).

Checked: zero lost events, exactly the permitted number of executions (and of step side
effects), no call fails, zero "database is locked" on stderr, the audit chain verifies.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from wardentest import REPO

sys.path.insert(0, str(REPO / "bench"))
import load_bench


def check_hooks(stats: dict[str, Any]) -> None:
    assert stats["database_locked"] == 0, stats["stderr_sample"]
    assert stats["with_stderr"] == 0, stats["stderr_sample"]
    assert stats["exit_codes"] == {0: stats["calls"]}, stats
    assert stats["lost_events"] == 0, stats
    assert stats["recorded_stored"] == stats["recorded_sent"]
    assert stats["denied_edits"] > 0  # the state rule was really evaluated
    assert stats["audit_ok"]


def check_runs(stats: dict[str, Any]) -> None:
    assert stats["database_locked"] == 0, stats["stderr_sample"]
    assert set(stats["exit_codes"]) <= {0, 2}, (stats["exit_codes"], stats["stderr_sample"])
    assert stats["succeeded"] == stats["rate"], stats
    assert stats["step_ran"] == stats["rate"], stats
    assert stats["duplicate_keys_ran"] == 0, stats
    assert stats["audit_ok"]


def test_hook_load_small(tmp_path: Path) -> None:
    root, env = load_bench.make_project(tmp_path, rate=5)
    check_hooks(load_bench.hook_load(root, env, procs=4, total=90))


def test_run_load_small(tmp_path: Path) -> None:
    root, env = load_bench.make_project(tmp_path, rate=5)
    check_runs(load_bench.run_load(root, env, procs=4, total=24, rate=5, distinct=10))


@pytest.mark.stress
def test_hook_load_full(tmp_path: Path) -> None:
    root, env = load_bench.make_project(tmp_path, rate=50)
    stats = load_bench.hook_load(root, env, procs=16, total=2000)
    print(stats)
    check_hooks(stats)


@pytest.mark.stress
def test_run_load_full(tmp_path: Path) -> None:
    root, env = load_bench.make_project(tmp_path, rate=50)
    stats = load_bench.run_load(root, env, procs=16, total=200, rate=50, distinct=100)
    print(stats)
    check_runs(stats)
