"""The audit trail: append-only, hash-chained records in the state store.

Each record carries the hash of the one before it (the first one the genesis hash), and its own
hash covers its seq, time, actor, kind, action, record and previous hash:

    hash = "sha256:" + sha256(canonical_json({seq, ts, actor, kind, action, record, prev_hash}))

so editing, deleting, inserting or reordering records breaks the chain and `verify` names the
first bad record. The head of the chain (last seq and hash) is also kept in the key/value table
under `audit.head`, in the same transaction, so deleting the newest records is detected too.
The audit table itself refuses UPDATE and DELETE (triggers); tampering needs raw SQL.

The SQL lives in `warden.state`; this module holds the chain logic and `redact`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from warden.state import AuditRow, Store, dumps

__all__ = [
    "GENESIS_HASH",
    "HEAD_KEY",
    "REDACTED",
    "AuditRecord",
    "VerifyResult",
    "append",
    "canonical_json",
    "compute_hash",
    "export",
    "redact",
    "split_path",
    "verify",
]

GENESIS_HASH = "sha256:" + "0" * 64
HEAD_KEY = "audit.head"
REDACTED = "***"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record of the audit trail."""

    seq: int
    ts: float
    actor: str
    kind: str
    action: str | None
    record: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The record as exported (`warden audit export`)."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "kind": self.kind,
            "action": self.action,
            "record": self.record,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of `verify`: `count` is the number of records found intact before any problem."""

    ok: bool
    count: int
    first_bad_seq: int | None
    problem: str


def canonical_json(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 kept (raises StateError if not JSON)."""
    return dumps(value)


def compute_hash(
    *,
    seq: int,
    ts: float,
    actor: str,
    kind: str,
    action: str | None,
    record: Any,
    prev_hash: str,
) -> str:
    """The hash of one record, as `append` stores it and `verify` recomputes it."""
    import hashlib

    body = {
        "seq": seq,
        "ts": float(ts),
        "actor": actor,
        "kind": kind,
        "action": action,
        "record": record,
        "prev_hash": prev_hash,
    }
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


# -- append ---------------------------------------------------------------------------------


def append(
    store: Store,
    *,
    kind: str,
    actor: str,
    action: str | None,
    record: dict[str, Any],
    ts: float | None = None,
    redact_paths: Sequence[str] = (),
) -> AuditRecord:
    """Append one record to the trail and return it.

    Runs in one `BEGIN IMMEDIATE` transaction, so concurrent writers form one linear chain.
    Called inside the caller's `with store.transaction():`, it joins that transaction (through
    a savepoint) and commits or rolls back with the caller's other writes.
    `redact_paths` (settings.redact) are replaced by "***" before the record is stored.
    """
    body = redact(record, redact_paths) if redact_paths else record
    record_json = canonical_json(body)
    stored: dict[str, Any] = json.loads(record_json)
    when = time.time() if ts is None else float(ts)
    with store.transaction():
        last_seq, prev_hash = _head(store)
        seq = last_seq + 1
        digest = compute_hash(
            seq=seq,
            ts=when,
            actor=actor,
            kind=kind,
            action=action,
            record=stored,
            prev_hash=prev_hash,
        )
        store.audit_insert(AuditRow(seq, when, actor, kind, action, record_json, prev_hash, digest))
        store.put(HEAD_KEY, {"seq": seq, "hash": digest}, by=actor)
    return AuditRecord(seq, when, actor, kind, action, stored, prev_hash, digest)


def _anchor(store: Store) -> tuple[int, str] | None:
    """The recorded head of the chain (seq, hash), if present and well-formed."""
    value = store.get(HEAD_KEY)
    if not isinstance(value, dict):
        return None
    seq, digest = value.get("seq"), value.get("hash")
    if isinstance(seq, int) and not isinstance(seq, bool) and isinstance(digest, str):
        return seq, digest
    return None


def _head(store: Store) -> tuple[int, str]:
    """(seq, hash) the next record links to: the later of the table's tail and the anchor."""
    candidates = [c for c in (store.audit_tail(), _anchor(store)) if c is not None]
    if not candidates:
        return 0, GENESIS_HASH
    return max(candidates, key=lambda c: c[0])


# -- verify ---------------------------------------------------------------------------------


def verify(store: Store) -> VerifyResult:
    """Recompute the whole chain in seq order; report the first edited/missing/moved record."""
    anchor = _anchor(store)  # read before the rows: appends only ever add after it
    prev_seq, prev_hash, count = 0, GENESIS_HASH, 0
    for row in store.audit_rows():
        problem = _check_row(row, prev_seq, prev_hash)
        if problem:
            return _bad(count, row.seq, problem)
        prev_seq, prev_hash, count = row.seq, row.hash, count + 1
    if anchor is not None:
        problem = _check_anchor(anchor, prev_seq, prev_hash)
        if problem:
            return _bad(count, min(anchor[0], prev_seq + 1), problem)
    return VerifyResult(True, count, None, "")


def _bad(count: int, seq: int, problem: str) -> VerifyResult:
    return VerifyResult(False, count, seq, f"audit record {seq}: {problem}")


def _check_row(row: AuditRow, prev_seq: int, prev_hash: str) -> str:
    """Why `row` does not continue the chain ending at (prev_seq, prev_hash), or ''."""
    try:
        record = json.loads(row.record)
    except ValueError:
        return "record is not valid JSON (record edited)"
    digest = compute_hash(
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        kind=row.kind,
        action=row.action,
        record=record,
        prev_hash=row.prev_hash,
    )
    if digest != row.hash:
        return "hash mismatch (record edited)"
    if row.prev_hash != prev_hash:
        return _link_problem(row.seq, prev_seq)
    if row.seq != prev_seq + 1:
        return f"sequence does not follow record {prev_seq}"
    return ""


def _link_problem(seq: int, prev_seq: int) -> str:
    where = f"record {prev_seq}" if prev_seq else "the start of the trail"
    if seq > prev_seq + 1:
        return f"previous hash does not match {where} ({_missing(prev_seq + 1, seq - 1)} deleted?)"
    return f"previous hash does not match {where} (records edited, inserted or reordered?)"


def _missing(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first}-{last}"


def _check_anchor(anchor: tuple[int, str], last_seq: int, last_hash: str) -> str:
    seq, digest = anchor
    if seq > last_seq:
        return (
            f"missing: the trail ends at record {last_seq} but {seq} were appended "
            f"({_missing(last_seq + 1, seq)} deleted?)"
        )
    if seq == last_seq and digest != last_hash:
        return "hash does not match the recorded head of the trail (record rewritten?)"
    return ""


# -- export ---------------------------------------------------------------------------------


def export(store: Store) -> Iterator[dict[str, Any]]:
    """Every record in seq order as a dict (seq, ts, actor, kind, action, record, hashes)."""
    for row in store.audit_rows():
        try:
            record: Any = json.loads(row.record)
        except ValueError:
            record = row.record
        yield {
            "seq": row.seq,
            "ts": row.ts,
            "actor": row.actor,
            "kind": row.kind,
            "action": row.action,
            "record": record,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }


# -- redact ---------------------------------------------------------------------------------

Segment = str | None  # None is the wildcard `*`


def split_path(path: str) -> list[Segment]:
    """Split a dotted field path: `\\.` is a literal dot, `\\*` a literal star, `*` any."""
    segments: list[Segment] = []
    chars: list[str] = []
    escaped = False
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path) and path[i + 1] in ".*\\":
            chars.append(path[i + 1])
            escaped = True
            i += 2
            continue
        if ch == ".":
            segments.append(_segment(chars, escaped))
            chars, escaped = [], False
        else:
            chars.append(ch)
        i += 1
    segments.append(_segment(chars, escaped))
    return segments


def _segment(chars: list[str], escaped: bool) -> Segment:
    text = "".join(chars)
    return None if text == "*" and not escaped else text


def redact(data: Any, paths: Sequence[str]) -> Any:
    """A deep copy of `data` with the value at each field path replaced by "***".

    Paths are dotted (`params.token`, `items.0.secret`, `env.*`,
    `metadata.labels.app\\.kubernetes\\.io/name`); paths that do not exist are ignored.
    """
    result = _clone(data)
    for path in paths:
        result = _redact(result, split_path(path))
    return result


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clone(item) for item in value]
    return value


def _redact(node: Any, segments: list[Segment]) -> Any:
    if not segments:
        return REDACTED
    head, rest = segments[0], segments[1:]
    for key in _children(node, head):
        node[key] = _redact(node[key], rest)
    return node


def _children(node: Any, segment: Segment) -> list[Any]:
    if isinstance(node, dict):
        if segment is None:
            return list(node)
        return [segment] if segment in node else []
    if isinstance(node, list):
        if segment is None:
            return list(range(len(node)))
        if segment.isascii() and segment.isdigit() and int(segment) < len(node):
            return [int(segment)]
    return []
