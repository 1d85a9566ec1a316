"""File modes of what warden writes (docs/security.md): the state database (which holds the
audit trail), its WAL companions, the rollback backups and the plan cache are private to
the user, even under ``umask 000``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wardentest import WARDEN, Env, Project

POLICY = f"""
version: 1
actions:
  overwrite:
    on_failure: stop
    steps:
      - {{name: a, write_file: {{path: f.txt, content: "new\\n"}}}}
      - {{name: hold, run: [{sys.executable!r}, "-c", "import time; time.sleep(1.5)"]}}
      - {{name: b, run: ["false"]}}
"""


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_private_files(project: Project, xdg: Env, umask: int) -> None:
    project.policy(POLICY)
    (project.root / "f.txt").write_text("old\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "CLAUDE_"))}
    env.update(XDG_CONFIG_HOME=str(xdg.config), XDG_CACHE_HOME=str(xdg.cache))
    seen: dict[str, int] = {}
    db = project.root / ".warden" / "state.db"

    def watch() -> None:  # the -wal and -shm files exist only while warden runs
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(seen) < 2:
            for suffix in ("-wal", "-shm"):
                p = Path(f"{db}{suffix}")
                if p.exists():
                    seen[suffix] = mode(p)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    proc = subprocess.run([WARDEN, "run", "overwrite"], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=lambda: os.umask(umask))
    watcher.join()
    assert proc.returncode == 6, proc.stdout + proc.stderr  # failed after a change: partial
    assert mode(project.root / ".warden") == 0o700
    assert mode(db) == 0o600
    assert seen and all(m == 0o600 for m in seen.values()), seen
    backups = list((project.root / ".warden" / "backups").iterdir())
    assert backups and all(mode(b) == 0o700 for b in backups)
    files = [f for b in backups for f in b.iterdir()]
    assert files and all(mode(f) == 0o600 for f in files)
    plans = list(xdg.plans.glob("*.plan"))
    assert plans and mode(xdg.plans) == 0o700 and all(mode(p) == 0o600 for p in plans)
