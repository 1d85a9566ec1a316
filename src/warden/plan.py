"""Stage 4: the plan document — hashing, JSON form, and the compiled-plan cache.

The cache is keyed by the source files' bytes, their scopes, the warden version and the
Python version, so an unchanged policy set skips YAML parsing and schema validation. Cache
files are ``marshal`` (the fastest stdlib loader) behind a CRC-32 of their body; a file that
fails its check is deleted and rebuilt, never trusted. Inside, every rule is its own marshal
blob (with its RE2 screens precomputed), decoded only when an evaluation first needs it:
a hook process on a 10,000-rule plan decodes the rules of one (event, tool) bucket.

An *index* entry (``index/<id>.idx``, one per discovery: cwd, start, ``--policy``, user
policies) remembers which sources a discovery found, the ``stat`` of every file it looked at
(found or not), the policy file names of every directory it listed, and the plan key. When
none of them changed, the hook and ``eval`` go straight to the cached plan: no discovery, no
reading or hashing of the sources (as ``.pyc`` files and git's index trust ``stat``). A
state database next to the policies does not disturb it (only ``*.yaml``/``*.yml`` names are
compared). An entry is only written when every file it records is at least ``SETTLED_NS``
old, so an edit within the file system's timestamp granularity can never be missed.
"""

from __future__ import annotations

import marshal
import os
import sys

from warden.errors import PolicyError, Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

if TYPE_CHECKING:
    from hashlib import sha256 as _sha256
else:
    try:  # the small builtin module: hashlib loads OpenSSL (~3 ms) on the hook hot path
        from _sha256 import sha256 as _sha256
    except ImportError:  # pragma: no cover - other interpreters
        from hashlib import sha256 as _sha256

# The cache layout (rules, screens, index): part of every key, so that a warden whose
# cache files differ in shape never reads another's. Bump it with any change to them.
FORMAT = 3
MAGIC = b"WARDENPLAN3\n"
INDEX_MAGIC = b"WARDENINDEX1\n"
SETTLED_NS = 2_000_000_000  # coarser than any file system's timestamps (FAT: 2 s)


def sha256_hex(data: bytes) -> str:
    """sha256 of ``data`` in hex, without importing hashlib/OpenSSL."""
    return str(_sha256(data).hexdigest())


def dump_json(plan: dict[str, Any]) -> str:
    """The plan as deterministic JSON (sorted keys): same sources, same bytes."""
    import json

    return json.dumps(materialize(plan), sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def load_json(path: str) -> dict[str, Any]:
    """Read a plan written by ``warden compile``; its hash must match its content."""
    import json

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


def cache_root() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "warden")


def cache_dir() -> str:
    return os.path.join(cache_root(), "plans")


def source_key(entries: list[tuple[str, str, bytes]], version: str) -> str:
    """Cache key over (scope, display path, file bytes) of every source, in order."""
    h = _sha256()
    h.update(
        f"warden {version} format {FORMAT} python {sys.version_info[:2]} {sys.byteorder}\n".encode()
    )
    for scope, display, data in entries:
        h.update(f"{scope}\0{display}\0{len(data)}\0".encode())
        h.update(_sha256(data).digest())
    return str(h.hexdigest())


# ------------------------------------------------------------------ sealed files


def _crc32(data: bytes | memoryview) -> int:
    from binascii import crc32  # 0.4 ms to import, 1 ms for 3.5 MB (sha256: 11 ms)

    return crc32(data)


def seal(magic: bytes, body: bytes) -> bytes:
    """``magic``, the body's CRC-32 in hex, a newline, the body."""
    return magic + b"%08x\n" % _crc32(body) + body


def unseal(magic: bytes, blob: bytes) -> memoryview | None:
    """The body of a sealed blob, or None when the magic or the checksum is wrong."""
    head = len(magic) + 9
    if not blob.startswith(magic) or blob[head - 1 : head] != b"\n":
        return None
    body = memoryview(blob)[head:]
    return body if b"%08x" % _crc32(body) == blob[len(magic) : head - 1] else None


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


KEEP_FILES = 64  # cache files kept per directory (plans, index entries): the newest


def _write_atomic(directory: str, name: str, blob: bytes) -> None:
    """Write ``directory/name`` (0600 in a 0700 directory) atomically; errors propagate.
    Then the oldest files beyond ``KEEP_FILES`` go: every edit of a policy set leaves a plan
    behind, and a plan of 10,000 rules is a few MB."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    import tempfile  # only when writing: the cached path never needs it

    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        discard(tmp)
        raise
    _prune(directory, name)


def _prune(directory: str, written: str) -> None:
    try:
        entries = [e for e in os.scandir(directory) if not e.name.startswith(".")]
        if len(entries) <= KEEP_FILES:
            return
        entries.sort(key=lambda e: e.stat().st_mtime_ns, reverse=True)
    except OSError:
        return
    for e in entries[KEEP_FILES:]:
        if e.name != written:  # a reader that loses its file just rebuilds it
            discard(e.path)


def discard(path: str) -> None:
    """Remove a file if it is there (cache files, temporary files)."""
    try:  # noqa: SIM105 - contextlib costs an import on the hot path
        os.unlink(path)
    except OSError:
        pass


# ------------------------------------------------------------ the plan cache


class LazyList:
    """A read-only list stored as concatenated marshal blobs (``data``) and their end
    offsets (``ends``: unsigned 32-bit integers in the machine's byte order); an item is
    decoded on first access and an empty blob stands for None. Loading one costs two byte
    strings, however long it is."""

    __slots__ = ("_data", "_ends", "_items")

    def __init__(self, data: bytes, ends: bytes) -> None:
        self._data = memoryview(data)
        self._ends = memoryview(ends).cast("I")
        self._items: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> Any:
        try:
            return self._items[i]
        except KeyError:
            value = self._items[i] = self._load(i)
            return value

    def _load(self, i: int) -> Any:
        ends = self._ends
        start = ends[i - 1] if i > 0 else 0
        end = ends[i]  # IndexError past the end
        return marshal.loads(self._data[start:end]) if end > start else None

    def many(self, indexes: list[int]) -> list[Any]:
        """``[self[i] for i in indexes]``, decoded without caching (read once)."""
        return [self._load(i) for i in indexes]

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self._ends)))


def pack(items: list[Any]) -> tuple[bytes, bytes]:
    """(data, ends) of a ``LazyList`` holding ``items``."""
    from array import array  # only when writing

    blobs = [b"" if item is None else marshal.dumps(item) for item in items]
    ends = array("I")
    total = 0
    for b in blobs:
        total += len(b)
        ends.append(total)
    return b"".join(blobs), ends.tobytes()


def is_lazy(plan: dict[str, Any]) -> bool:
    return any(isinstance(s.get("rules"), LazyList) for s in plan.get("scopes", ()))


def materialize(plan: dict[str, Any]) -> dict[str, Any]:
    """A plain plan (lists of dicts) from one read lazily from the cache."""
    if not is_lazy(plan):
        return plan
    out = dict(plan)
    out["scopes"] = [
        {k: list(v) if k == "rules" else v for k, v in s.items() if k != "screens"}
        for s in plan["scopes"]
    ]
    return out


def _split(plan: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[bytes, bytes, bytes, bytes]]]:
    """(the plan without its rules, every scope's packed rules and RE2 screens)."""
    from warden.runtime import screen_entries

    head = dict(plan)
    head["scopes"] = [{k: v for k, v in s.items() if k != "rules"} for s in plan["scopes"]]
    packed = []
    for s in plan["scopes"]:
        pre = [screen_entries(r.get("when")) for r in s["rules"]]
        packed.append((*pack(s["rules"]), *pack(pre)))
    return head, packed


def read_cached(key: str, *, lazy: bool = False) -> dict[str, Any] | None:
    """The cached plan for ``key`` (None when absent or damaged: a damaged file is deleted).
    ``lazy``: rules stay marshal blobs until used (the runtime only asks for some)."""
    path = os.path.join(cache_dir(), f"{key}.plan")
    blob = _read(path)
    if blob is None:
        return None
    body = unseal(MAGIC, blob)
    try:
        if body is None:
            raise ValueError("bad checksum")
        head, packed = marshal.loads(body)
        scopes = head["scopes"]
        if len(scopes) != len(packed):
            raise ValueError("scopes")
        for scope, (rules, rule_ends, pre, pre_ends) in zip(scopes, packed, strict=True):
            scope["rules"] = LazyList(rules, rule_ends)
            scope["screens"] = LazyList(pre, pre_ends)
        if not lazy:
            head = materialize(head)
    except (ValueError, EOFError, TypeError, KeyError, AttributeError):
        discard(path)
        return None
    return head if isinstance(head, dict) else None


def write_cached(key: str, plan: dict[str, Any]) -> None:
    """Atomically write a cache file (0600 in a 0700 directory); failures are ignored."""
    try:
        body = marshal.dumps(_split(plan))
        _write_atomic(cache_dir(), f"{key}.plan", seal(MAGIC, body))
    except (OSError, ValueError):
        return


# ------------------------------------------------------------------ the index


def signature(path: str) -> tuple[int, ...] | None:
    """What ``stat`` says of a path (None: it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def listing(directory: str) -> tuple[tuple[str, bool], ...] | None:
    """The ``*.yaml``/``*.yml`` names in a directory, and whether each is a file (None: not
    a directory). Other entries (a state database, its journal) do not count."""
    try:
        with os.scandir(directory) as it:
            return tuple(
                sorted((e.name, e.is_file()) for e in it if e.name.endswith((".yaml", ".yml")))
            )
    except OSError:
        return None


def probe(kind: str, path: str) -> Any:
    """("stat", path): its signature; ("list", directory): its listing; ("yaml",
    directory): its listing, None when it has no policy file (as when it is missing: a
    ``.warden/`` that only holds the state database is no different for discovery)."""
    if kind == "stat":
        return signature(path)
    found = listing(path)
    return found or None if kind == "yaml" else found


def snapshot(probes: list[tuple[str, str]]) -> list[Any]:
    """The value of each probe, now."""
    return [probe(kind, p) for kind, p in probes]


def index_id(parts: tuple[Any, ...]) -> str:
    """The index entry of one discovery (cwd, start, --policy, user dir...)."""
    text = repr((FORMAT, sys.version_info[:2], *parts))
    return sha256_hex(text.encode("utf-8", "surrogateescape"))[:40]


def read_index(ident: str) -> tuple[str, str] | None:
    """(plan key, project root) when nothing the discovery looked at has changed."""
    blob = _read(os.path.join(cache_root(), "index", f"{ident}.idx"))
    body = None if blob is None else unseal(INDEX_MAGIC, blob)
    if body is None:
        return None
    try:
        key, root, reals, probes, seen = marshal.loads(body)
        for path, real in reals:
            if os.path.realpath(path) != real:
                return None
        for (kind, path), value in zip(probes, seen, strict=True):
            if probe(kind, path) != value:
                return None
    except (ValueError, EOFError, TypeError):
        return None
    return str(key), str(root)


def write_index(
    ident: str,
    key: str,
    root: str,
    reals: list[str],
    probes: list[tuple[str, str]],
    seen: list[Any],
) -> bool:
    """Remember a discovery and what it saw (``seen``: ``snapshot(probes)`` taken after the
    sources were read). Skipped (False) while a file it saw is still settling: a change
    within the file system's timestamp granularity could otherwise go unseen."""
    import time

    limit = time.time_ns() - SETTLED_NS
    for (kind, _), value in zip(probes, seen, strict=True):
        if kind == "stat" and value is not None and max(value[4], value[5]) > limit:
            return False
    body = marshal.dumps(
        (key, root, [(p, os.path.realpath(p)) for p in reals], [tuple(p) for p in probes], seen)
    )
    try:
        _write_atomic(os.path.join(cache_root(), "index"), f"{ident}.idx", seal(INDEX_MAGIC, body))
    except OSError:
        return False
    return True
