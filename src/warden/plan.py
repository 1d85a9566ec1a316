"""Stage 4: the plan document — hashing, JSON form, and the compiled-plan cache.

The cache is keyed by the source files' bytes, their scopes, the warden version and the
Python version, so an unchanged policy set skips YAML parsing and schema validation. Cache
files are ``marshal`` (the fastest stdlib loader) behind a sha256 checksum of their body;
a file that fails its checksum is deleted and rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import sys
from pathlib import Path

from warden.errors import PolicyError, Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from hashlib import sha256 as _sha256
else:
    try:  # the small builtin module: hashlib loads OpenSSL (~3 ms) on the hook hot path
        from _sha256 import sha256 as _sha256
    except ImportError:  # pragma: no cover - other interpreters
        from hashlib import sha256 as _sha256

MAGIC = b"WARDENPLAN1\n"


def sha256_hex(data: bytes) -> str:
    """sha256 of ``data`` in hex, without importing hashlib/OpenSSL."""
    return str(_sha256(data).hexdigest())


def dump_json(plan: dict[str, Any]) -> str:
    """The plan as deterministic JSON (sorted keys): same sources, same bytes."""
    return json.dumps(plan, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def load_json(path: str) -> dict[str, Any]:
    """Read a plan written by ``warden compile``; its hash must match its content."""
    from warden.compile import plan_hash

    try:
        with open(path, encoding="utf-8") as fh:
            plan = json.load(fh)
    except OSError as exc:
        raise PolicyError(Problem(f"cannot read plan: {exc.strerror}", path)) from None
    except ValueError as exc:
        raise PolicyError(Problem(f"not a plan (invalid JSON: {exc})", path)) from None
    if not isinstance(plan, dict) or "scopes" not in plan or "hash" not in plan:
        raise PolicyError(Problem("not a warden plan (no scopes/hash)", path))
    if plan_hash(plan) != plan["hash"]:
        raise PolicyError(Problem("plan hash does not match its content (edited?)", path))
    return plan


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "warden" / "plans"


def source_key(entries: list[tuple[str, str, bytes]], version: str) -> str:
    """Cache key over (scope, display path, file bytes) of every source, in order."""
    h = _sha256()
    h.update(f"warden {version} python {sys.version_info[:2]}\n".encode())
    for scope, display, data in entries:
        h.update(f"{scope}\0{display}\0{len(data)}\0".encode())
        h.update(_sha256(data).digest())
    return h.hexdigest()


def read_cached(key: str) -> dict[str, Any] | None:
    path = cache_dir() / f"{key}.plan"
    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except OSError:
        return None
    header_len = len(MAGIC) + 65
    body = blob[header_len:]
    digest = blob[len(MAGIC) : header_len - 1].decode("ascii", "replace")
    if not blob.startswith(MAGIC) or _sha256(body).hexdigest() != digest:
        _discard(path)
        return None
    try:
        plan = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        _discard(path)
        return None
    if not isinstance(plan, dict) or "scopes" not in plan:
        _discard(path)
        return None
    return plan


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def write_cached(key: str, plan: dict[str, Any]) -> None:
    """Atomically write a cache file (0600 in a 0700 directory); failures are ignored."""
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = marshal.dumps(plan)
        blob = MAGIC + _sha256(body).hexdigest().encode() + b"\n" + body
        import tempfile  # only when writing: the cached path never needs it

        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".plan")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, d / f"{key}.plan")
        except BaseException:
            _discard(Path(tmp))
            raise
    except OSError:
        return
