"""Helpers shared by the reliability tests (imported as ``rel_util``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

Snapshot = dict[str, tuple[int, str, int]]


def snapshot(*roots: Path) -> Snapshot:
    """Every file and directory under ``roots``: (size, sha256, mode). Compare two to prove
    that nothing was created, changed or deleted."""
    out: Snapshot = {}
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            d = Path(dirpath)
            out[str(d)] = (0, "dir", os.stat(d).st_mode)
            dirnames.sort()
            for name in sorted(filenames):
                p = d / name
                st = os.lstat(p)
                digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "-"
                out[str(p)] = (st.st_size, digest, st.st_mode)
    return out


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable differences between two snapshots (empty: unchanged)."""
    lines = []
    for k in sorted(set(before) | set(after)):
        if k not in before:
            lines.append(f"created {k}")
        elif k not in after:
            lines.append(f"deleted {k}")
        elif before[k] != after[k]:
            lines.append(f"changed {k}")
    return lines


def assert_clean_error(proc: subprocess.CompletedProcess[Any], code: int, *,
                       lines: int | None = 1, contains: str | None = None) -> str:
    """Exit ``code``, an error on stderr (``lines`` lines; None: any number), no traceback,
    nothing on stdout. Returns stderr."""
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
    out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}\nstderr: {err[:2000]}"
    assert "Traceback" not in err, err[:4000]
    assert "internal error" not in err, err[:2000]
    assert err.strip(), "no error message on stderr"
    if lines is not None:
        got = err.strip("\n").split("\n")
        assert len(got) == lines, f"wanted {lines} line(s) on stderr, got {len(got)}:\n{err[:2000]}"
    if contains is not None:
        assert contains in err, err[:2000]
    assert out == "", f"unexpected stdout: {out[:500]}"
    return err
