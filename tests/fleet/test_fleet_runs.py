"""Fleet concurrency: two simulated hosts, four warden processes on each, one state store.

Each host is its own working directory (its own copy of the policy files, its own HOME and
caches); all share one store through ``$WARDEN_STATE``. They race ``warden run`` on the same
idempotent and rate-limited actions, whose steps append to one shared log file. Exactly one
idempotent run and exactly K rate-limited runs may happen, the audit trail must verify, and a
kill switch set on one host must block the next run on every host. Run against PostgreSQL
(the point of fleet mode) and, for comparison, a SQLite file both hosts can reach.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fleet_helpers import WARDEN, clean_env, write

HOSTS = 2
PROCS_PER_HOST = 4
RATE_MAX = 3

POLICY = """\
version: 1
actions:
  migrate-db:
    description: Run once per schema version, whoever gets there first.
    params:
      type: object
      required: [version]
      properties: {{version: {{type: integer}}}}
    gates: [once]
    idempotency_key: "migrate-db:{{params.version}}"
    steps:
      - name: apply
        run: ["sh", "-c", "echo migrate-db $WARDEN_HOST >> {log}"]
        env: [WARDEN_HOST]
  rotate-logs:
    description: At most {rate} times a day across the fleet.
    gates: [daily]
    steps:
      - name: rotate
        run: ["sh", "-c", "echo rotate-logs $WARDEN_HOST >> {log}"]
        env: [WARDEN_HOST]
gates:
  once: {{kind: idempotent}}
  daily: {{kind: rate_limit, key: rotate-logs, max: {rate}, per: 1d}}
"""


@pytest.fixture(params=["postgres", "sqlite"])
def shared_state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "shared" / "state.db")
    url: str = request.getfixturevalue("pg_database")
    return url


class Fleet:
    def __init__(self, tmp_path: Path, state: str, xdg: Any) -> None:
        self.log = tmp_path / "side-effects.log"
        self.log.touch()
        self.state = state
        self.hosts = []
        for h in range(HOSTS):
            root = tmp_path / f"host{h}"
            write(root / "warden.yaml", POLICY.format(log=self.log, rate=RATE_MAX))
            home = tmp_path / f"home{h}"
            (home / "config").mkdir(parents=True)
            (home / "cache").mkdir()
            self.hosts.append((root, home))
        self.xdg = xdg

    def env(self, h: int) -> dict[str, str]:
        _root, home = self.hosts[h]
        return clean_env(self.xdg, {"WARDEN_STATE": self.state, "HOME": str(home),
                                    "XDG_CONFIG_HOME": str(home / "config"),
                                    "XDG_CACHE_HOME": str(home / "cache"),
                                    "WARDEN_HOST": f"host{h}"})

    def start(self, h: int, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([WARDEN, *args], cwd=self.hosts[h][0], env=self.env(h),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, h: int, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([WARDEN, *args], cwd=self.hosts[h][0], env=self.env(h),
                              capture_output=True, text=True, timeout=120, check=False)

    def everywhere(self, *args: str, rounds: int = 1) -> list[tuple[int, dict[str, Any]]]:
        """``rounds`` waves of HOSTS x PROCS_PER_HOST concurrent ``warden ARGS``."""
        results = []
        for _ in range(rounds):
            procs = [self.start(h, *args, "--format", "json", "--no-user-policies")
                     for _ in range(PROCS_PER_HOST) for h in range(HOSTS)]
            for p in procs:
                out, err = p.communicate(timeout=180)
                assert p.returncode in (0, 2), f"exit {p.returncode}: {err}"
                results.append((p.returncode, json.loads(out)))
        return results

    def lines(self, word: str) -> list[str]:
        return [ln for ln in self.log.read_text().splitlines() if ln.startswith(word)]


def test_exactly_once_exactly_k_and_one_chain(shared_state: str, tmp_path: Path,
                                              xdg: Any) -> None:
    fleet = Fleet(tmp_path, shared_state, xdg)

    once = fleet.everywhere("run", "migrate-db", "-p", "version=7")
    assert sorted(code for code, _ in once) == [0] + [2] * (HOSTS * PROCS_PER_HOST - 1)
    assert len(fleet.lines("migrate-db")) == 1
    blocked = [doc for code, doc in once if code == 2]
    assert all(any(g["kind"] == "idempotent" and not g["passed"] for g in doc["gates"])
               for doc in blocked)

    ticks = fleet.everywhere("run", "rotate-logs")
    assert sum(1 for code, _ in ticks if code == 0) == RATE_MAX
    assert len(fleet.lines("rotate-logs")) == RATE_MAX
    assert {ln.split()[1] for ln in fleet.lines("rotate-logs")} <= {"host0", "host1"}
    # a second wave finds every slot taken
    again = fleet.everywhere("run", "rotate-logs")
    assert {code for code, _ in again} == {2}
    assert len(fleet.lines("rotate-logs")) == RATE_MAX

    for h in range(HOSTS):
        verify = fleet.run(h, "audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "intact" in verify.stdout


def test_kill_switch_from_one_host_blocks_every_host(shared_state: str, tmp_path: Path,
                                                     xdg: Any) -> None:
    fleet = Fleet(tmp_path, shared_state, xdg)
    assert fleet.run(1, "run", "rotate-logs", "--no-user-policies").returncode == 0

    on = fleet.run(0, "kill-switch", "on", "--reason", "incident 42")
    assert on.returncode == 0, on.stderr
    for h in range(HOSTS):
        status = fleet.run(h, "kill-switch", "status", "--format", "json")
        assert json.loads(status.stdout)["on"] is True
    results = fleet.everywhere("run", "rotate-logs")
    assert {code for code, _ in results} == {2}
    for _, doc in results:
        assert any(g["kind"] == "kill_switch" and not g["passed"] for g in doc["gates"])
        assert "incident 42" in json.dumps(doc["gates"])
    assert len(fleet.lines("rotate-logs")) == 1

    assert fleet.run(1, "kill-switch", "off").returncode == 0
    assert fleet.run(0, "run", "rotate-logs", "--no-user-policies").returncode == 0
    assert len(fleet.lines("rotate-logs")) == 2
    assert fleet.run(0, "audit", "verify").returncode == 0
