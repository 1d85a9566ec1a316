"""Guarded actions end to end (DESIGN §6, §8): params, gates, proposals and approvals, dry
runs, runs, history, rollback, recovery, the kill switch and the mode.

Every operation returns an ``Outcome``: the JSON record the CLI prints with ``--format json``
(always with its ``id``), the exit code of DESIGN §4, and the pieces the text output needs.
Every state change appends an audit record in the same transaction as the rows it writes.

Choices where the design is silent (also in docs/actions.md):

- ``warden propose`` exits 0 and prints the proposal id (the proposal was made; exit 3 is
  for a ``run`` that stopped because it needs approval).
- ``on_failure: stop`` when nothing had changed yet (the first step's precondition failed, or
  a file step failed before touching anything) ends ``rolled_back`` (exit 5): the tree is as
  it was.
- A run step without a ``rollback`` command is skipped during rollback ("nothing to undo");
  a run step whose command failed or timed out is not rolled back (its rollback assumes it
  ran); file steps always undo exactly what they did.
- An approval authorises one run: ``run --proposal`` marks the proposal ``executed`` when the
  run is journalled ``started``.
- The kill switch also blocks dry runs and proposals; observe mode does not block dry runs
  (they change nothing).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from warden import audit, durations, execute, gates, paths
from warden.errors import InputError, UsageError, WardenError

STATUSES = (
    "succeeded",
    "rolled_back",
    "partial",
    "aborted",
    "interrupted",
    "started",
    "rolling_back",
)
PROPOSAL_OPEN = ("pending", "approved")
MODE_KEY = "mode"


class Refused(WardenError):
    """The request is understood but not allowed (a gate, a void approval...): exit 2."""

    exit_code = 2


@dataclass
class Outcome:
    """What an operation made or read, and how the CLI should exit."""

    doc: dict[str, Any]
    exit_code: int = 0
    text: list[str] = field(default_factory=list)


def os_user() -> str:
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):  # no passwd entry, no $USER
        return "unknown"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def params_key(canon: str) -> str:
    return "sha256:" + hashlib.sha256(canon.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------ params

_JSON_TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _scalar(value: str) -> Any:
    from warden.load import _core_scalar

    return _core_scalar(value, "tag:yaml.org,2002:str")


def coerce(value: str, schema: Any) -> Any:
    """A ``-p`` value as the type the schema declares; otherwise a YAML 1.2 scalar."""
    if not isinstance(schema, dict):
        return _scalar(value)
    types = schema.get("type")
    if isinstance(types, str):
        types = [types]
    if not types:
        scalar = _scalar(value)
        allowed = (
            schema.get("enum")
            if isinstance(schema.get("enum"), list)
            else ([schema["const"]] if "const" in schema else None)
        )
        if allowed is not None and not _member(scalar, allowed) and value in allowed:
            return value
        return scalar
    if types == ["string"]:
        return value
    scalar = _scalar(value)
    if any(_JSON_TYPES.get(t, lambda v: False)(scalar) for t in types):
        if isinstance(scalar, float) and "integer" in types and "number" not in types:
            return int(scalar)
        return scalar
    if "array" in types or "object" in types:
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if any(_JSON_TYPES[t](parsed) for t in types if t in ("array", "object")):
            return parsed
    return value  # a string: the schema check reports the type mismatch


def _member(value: Any, items: list[Any]) -> bool:
    from warden.runtime import json_equal

    return any(json_equal(value, x) for x in items)


def parse_params(
    action: dict[str, Any],
    pairs: list[str] | None = None,
    file: str | None = None,
    json_text: str | None = None,
) -> dict[str, Any]:
    """Params from ``--params-file``, then ``--params-json``, then each ``-p key=value``."""
    params: dict[str, Any] = {}
    if file is not None:
        params.update(_params_file(file))
    if json_text is not None:
        try:
            data = json.loads(json_text)
        except ValueError as exc:
            raise InputError(f"--params-json: invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InputError("--params-json: expected a JSON object")
        params.update(data)
    props = action.get("params", {}).get("properties") or {}
    for key, schema in props.items():  # top-level defaults of the params schema
        if isinstance(schema, dict) and "default" in schema:
            params.setdefault(key, json.loads(json.dumps(schema["default"])))
    grouped: dict[str, list[str]] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"-p {pair!r}: expected key=value")
        grouped.setdefault(key, []).append(value)
    for key, values in grouped.items():
        schema = props.get(key)
        types = schema.get("type") if isinstance(schema, dict) else None
        is_array = types == "array" or (isinstance(types, list) and types == ["array"])
        if is_array:
            assert isinstance(schema, dict)
            if len(values) == 1:
                whole = coerce(values[0], {"type": "array"})
                if isinstance(whole, list):
                    params[key] = whole
                    continue
            params[key] = [coerce(v, schema.get("items")) for v in values]
        elif len(values) > 1:
            raise UsageError(
                f"-p {key}=... given {len(values)} times (only array params take several values)"
            )
        else:
            params[key] = coerce(values[0], schema)
    return params


def _params_file(path: str) -> dict[str, Any]:
    import sys

    from warden.errors import PolicyError
    from warden.load import FileTooLarge, parse_yaml, read_limited

    try:
        raw = read_limited(sys.stdin.buffer if path == "-" else path)
    except OSError as exc:
        raise InputError(f"--params-file {path}: {exc.strerror}") from None
    except FileTooLarge as exc:
        raise InputError(f"--params-file {path}: {exc}") from None
    try:
        docs = parse_yaml(raw, path)
    except PolicyError as exc:
        raise InputError(f"--params-file {exc}") from None
    data = docs[0].data if docs else {}
    if not isinstance(data, dict):
        raise InputError(f"--params-file {path}: expected a mapping of params")
    return data


def validate_params(action: dict[str, Any], params: dict[str, Any]) -> None:
    """Draft-07 validation against the action's params schema; every violation listed."""
    schema = action.get("params") or {"type": "object"}
    if schema == {"type": "object"}:  # no params schema: skip importing jsonschema
        return
    from jsonschema import Draft7Validator

    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(params), key=lambda e: [str(p) for p in e.path])
    if not errors:
        return
    lines = []
    for e in errors:
        where = "params" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path)
        lines.append(f"{where}: {e.message}")
    raise InputError(
        f"invalid params for action {action['name']!r} "
        f"({len(lines)} problem{'s' if len(lines) > 1 else ''}):\n  " + "\n  ".join(lines)
    )


# ---------------------------------------------------------------------- session


class Session:
    """One command against one engine (policy set) and its state store."""

    def __init__(self, engine: Any, actor: str | None = None) -> None:
        self.engine = engine
        self.actor = actor or os_user()
        self.now = durations.now()
        self._store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = self.engine.store()
        return self._store

    @property
    def plan(self) -> dict[str, Any]:
        plan: dict[str, Any] = self.engine.plan
        return plan

    @property
    def redact_paths(self) -> list[str]:
        return list(self.engine.settings.get("redact") or [])

    def redact_params(self, params: Any) -> Any:
        if not self.redact_paths:
            return params
        return audit.redact({"params": params}, self.redact_paths)["params"]

    def audit(
        self, kind: str, record: dict[str, Any], action: str | None = None, actor: str | None = None
    ) -> audit.AuditRecord:
        return audit.append(
            self.store,
            kind=kind,
            actor=actor or self.actor,
            action=action,
            record=record,
            redact_paths=self.redact_paths,
        )

    def action(self, name: str) -> dict[str, Any]:
        actions: dict[str, Any] = self.plan.get("actions", {})
        if name not in actions:
            import difflib

            close = difflib.get_close_matches(name, list(actions), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = f"; known: {', '.join(actions)}" if actions and not close else ""
            raise UsageError(f"unknown action {name!r}{hint}{known}")
        action: dict[str, Any] = actions[name]
        return action

    def close(self) -> None:
        self.engine.close()


# -------------------------------------------------------------------------- run


@dataclass
class Attempt:
    """Everything known about one run, dry run or proposal before it acts."""

    action: dict[str, Any]
    params: dict[str, Any]
    canon: str
    pkey: str
    data: dict[str, Any]
    steps: list[execute.Prepared]
    ctx: gates.Context
    results: list[gates.GateResult] = field(default_factory=list)


def prepare_attempt(
    s: Session,
    name: str,
    params: dict[str, Any],
    *,
    phase: str,
    proposal: dict[str, Any] | None = None,
) -> Attempt:
    action = s.action(name)
    validate_params(action, params)
    canon = canonical(params)
    pkey = params_key(canon)
    data = {
        "event": "action",
        "action": name,
        "params": params,
        "risk": action["risk"],
        "actor": s.actor,
    }
    steps = execute.prepare(action, data, s.engine.root)
    ctx = gates.Context(
        s.engine, s.store, action, data, pkey, s.now, phase, proposal, side_effects=phase == "run"
    )
    kinds = {g.get("kind") for g in ctx.gates.values()}
    if "idempotent" in kinds or action.get("idempotency_key"):
        ctx.idem_key = gates.idempotency_key(action, data, canon)
    ctx.rate_keys = gates.rate_keys(action, ctx.gates, data)
    return Attempt(action, params, canon, pkey, data, steps, ctx)


def _decision(
    s: Session, att: Attempt | None, decision: str, reason: str, mode: str, t0: float, **extra: Any
) -> dict[str, Any]:
    from warden.decision import Decision

    rules = att.ctx.decision if att is not None else None
    d = Decision(
        decision=decision,
        enforced=mode == "enforce",
        reason=reason,
        feedback=list(rules.feedback) if rules is not None else [],
        matched=list(rules.matched) if rules is not None else [],
        gates=[r.public() for r in att.results] if att is not None else [],
        plan_hash=s.engine.plan_hash,
        event="action",
        tool=None,
        mode=mode,
        extra={k: v for k, v in extra.items() if v is not None},
    )
    d.duration_ms = round((time.perf_counter() - t0) * 1000, 3)
    return d.to_dict()


def _reasons(results: list[gates.GateResult]) -> list[str]:
    return [f"{r.name} ({r.kind}): {r.detail}" for r in results if r.blocks]


def run(
    s: Session,
    name: str | None,
    params: dict[str, Any] | None,
    *,
    dry_run: bool = False,
    proposal_id: str | None = None,
) -> Outcome:
    """``warden run``: gates, then the journalled steps (or the dry run)."""
    t0 = time.perf_counter()
    proposal = None
    if proposal_id is not None:
        proposal = _proposal(s, proposal_id)
        if name is not None and name != proposal["action"]:
            raise UsageError(
                f"proposal {proposal_id} is for action {proposal['action']!r}, not {name!r}"
            )
        if params:
            raise UsageError(
                "--proposal runs the proposal's own params; do not give -p, "
                "--params-file or --params-json with it"
            )
        name, params = proposal["action"], proposal["params"]
        if proposal["status"] not in PROPOSAL_OPEN:
            raise Refused(f"proposal {proposal_id} is {proposal['status']}: it cannot be run")
    if name is None:
        raise UsageError("warden run: name an ACTION (or give --proposal ID)")
    phase = "dry_run" if dry_run else "run"
    att = prepare_attempt(s, name, params or {}, phase=phase, proposal=proposal)
    mode = s.engine.effective_mode()
    if proposal is not None:
        void = gates.void_reason(att.ctx)
        if void:
            att.results = [gates.GateResult("proposal", "approval", False, void)]
            row = record_aborted(s, att, [void], 2)
            return Outcome(
                _decision(
                    s,
                    att,
                    "deny",
                    void,
                    mode,
                    t0,
                    execution=execution_doc(s, row),
                    proposal=proposal_doc(s, proposal),
                ),
                2,
            )
    att.results = gates.evaluate(att.ctx)
    if dry_run:
        return _dry_run(s, att, mode, t0)
    blocking = [r for r in att.results if r.blocks]
    if mode == "observe":
        verdict = "would be blocked" if blocking else "would pass"
        reason = f"observe mode: no step runs (the gates {verdict})"
        row = record_aborted(s, att, ["observe mode", *_reasons(att.results)], 2)
        return Outcome(
            _decision(
                s,
                att,
                "deny" if blocking else "allow",
                reason,
                mode,
                t0,
                execution=execution_doc(s, row),
            ),
            2,
        )
    if blocking:
        return _blocked(s, att, blocking, mode, t0, proposal)
    return _execute(s, att, mode, t0, proposal)


def _blocked(
    s: Session,
    att: Attempt,
    blocking: list[gates.GateResult],
    mode: str,
    t0: float,
    proposal: dict[str, Any] | None,
) -> Outcome:
    reasons = _reasons(att.results)
    if all(r.needs_approval for r in blocking):
        if proposal is None:
            proposal, reused = create_proposal(s, att, required=_required(att))
            how = "an open proposal already exists" if reused else "proposal created"
            reason = (
                f"needs approval: {how}: {proposal['id']} "
                f"(`warden approve {proposal['id']} --by NAME`, then "
                f"`warden run --proposal {proposal['id']}`)"
            )
        else:
            reason = f"needs approval: proposal {proposal['id']} is not approved yet"
        row = record_aborted(s, att, [reason, *reasons], 3)
        return Outcome(
            _decision(
                s,
                att,
                "ask",
                reason,
                mode,
                t0,
                execution=execution_doc(s, row),
                proposal=proposal_doc(s, proposal),
            ),
            3,
        )
    reason = "blocked: " + "; ".join(reasons)
    row = record_aborted(s, att, reasons, 2)
    return Outcome(
        _decision(
            s,
            att,
            "deny",
            reason,
            mode,
            t0,
            execution=execution_doc(s, row),
            proposal=proposal_doc(s, proposal) if proposal else None,
        ),
        2,
    )


def _required(att: Attempt) -> int:
    need = [
        int(att.ctx.gates[r.name].get("approvals", 1))
        for r in att.results
        if r.kind == "approval" and r.applies and r.name in att.ctx.gates
    ]
    if any(r.kind == "policy" and r.needs_approval for r in att.results):
        need.append(1)
    return max(need or [1])


def _row_base(s: Session, att: Attempt, xid: str, status: str) -> dict[str, Any]:
    return {
        "id": xid,
        "action": att.action["name"],
        "action_hash": att.action["hash"],
        "plan_hash": s.engine.plan_hash,
        "params": s.redact_params(att.params),
        "params_key": att.pkey,
        "status": status,
        "actor": s.actor,
        "proposal_id": att.ctx.proposal["id"] if att.ctx.proposal else None,
        "idem_key": att.ctx.idem_key,
        "started": s.now,
        "root": str(s.engine.root),
        "gates": [r.public() for r in att.results],
        "detail": {"host": socket.gethostname(), "risk": att.action["risk"], "pgid": os.getpgid(0)},
    }


def record_aborted(s: Session, att: Attempt, reasons: list[str], code: int) -> dict[str, Any]:
    """Journal an attempt that never ran (a gate blocked it)."""
    row = {
        **_row_base(s, att, new_id("x"), "aborted"),
        "exit_code": code,
        "ended": s.now,
        "reasons": reasons,
    }
    with s.store.transaction():
        s.store.execution_insert(row)
        s.audit(
            "run.aborted",
            {
                "execution": row["id"],
                "params": att.params,
                "action_hash": att.action["hash"],
                "plan_hash": s.engine.plan_hash,
                "outcome": "aborted",
                "exit_code": code,
                "reasons": reasons,
                "proposal": row["proposal_id"],
            },
            action=att.action["name"],
        )
    return row


class _ClaimLost(Exception):
    def __init__(self, results: list[gates.GateResult]) -> None:
        super().__init__("claim lost")
        self.results = results


def _execute(
    s: Session, att: Attempt, mode: str, t0: float, proposal: dict[str, Any] | None
) -> Outcome:
    store = s.store
    xid = new_id("x")
    rate = {
        name: key
        for name, key in att.ctx.rate_keys.items()
        if name in gates.applying(att.ctx, att.results, "rate_limit")
    }
    idem = bool(gates.applying(att.ctx, att.results, "idempotent"))
    row = {
        **_row_base(s, att, xid, "started"),
        "rate_keys": sorted(set(rate.values())),
        "pid": os.getpid(),
        "pid_start": execute.proc_start(os.getpid()),
    }
    if not idem:
        row["idem_key"] = None
    try:
        with store.transaction():
            lost = gates.recheck_claims(att.ctx)
            ks = gates.kill_switch_state(store)
            if ks.get("on"):
                lost.append(
                    gates.GateResult("kill-switch", "kill_switch", False, gates._ks_detail(ks))
                )
            if proposal is not None and not store.proposal_set_status(
                proposal["id"], PROPOSAL_OPEN, status="executed", execution_id=xid, updated=s.now
            ):
                lost.append(
                    gates.GateResult(
                        "proposal",
                        "approval",
                        False,
                        f"proposal {proposal['id']} was used, rejected or cancelled meanwhile",
                    )
                )
            if lost:
                raise _ClaimLost(lost)
            store.execution_insert(row)
            keep = rate_horizon(s.plan)
            for key in sorted(set(rate.values())):
                store.rate_take(key, s.now, xid, keep_s=keep)
            if idem and att.ctx.idem_key is not None:
                store.idem_put(att.ctx.idem_key, xid, s.now)
            s.audit(
                "run.start",
                {
                    "execution": xid,
                    "params": att.params,
                    "action_hash": att.action["hash"],
                    "plan_hash": s.engine.plan_hash,
                    "proposal": row["proposal_id"],
                    "idempotency_key": row["idem_key"],
                    "rate_keys": row["rate_keys"],
                    "gates": row["gates"],
                    "pid": row["pid"],
                },
                action=att.action["name"],
            )
    except _ClaimLost as exc:
        names = {r.name for r in exc.results}
        att.results = [r for r in att.results if r.name not in names] + exc.results
        return _blocked(s, att, exc.results, mode, t0, None)
    journal = _journal(s, xid, att.action["name"], Path(s.engine.root))
    executor = execute.Executor(journal, att.steps, att.action.get("on_failure", "rollback"))
    try:
        status = executor.run()
    except BaseException as exc:
        finish(
            s,
            xid,
            "partial",
            [f"internal error during the run: {exc!r}"],
            att.action["name"],
            idem_key=row["idem_key"],
        )
        raise
    reasons = [executor.failure] if executor.failure else []
    if executor.signals:
        reasons.append(f"warden received signal {executor.signals[0]}")
    finished = finish(s, xid, status, reasons, att.action["name"], idem_key=row["idem_key"])
    code = execute.OUTCOME_EXIT.get(status, 70)
    verb = {
        "succeeded": "succeeded",
        "rolled_back": "failed and was rolled back",
        "partial": "failed and could NOT be fully rolled back (needs a human)",
    }[status]
    reason = f"action {att.action['name']!r} {verb}" + (
        f": {executor.failure}" if executor.failure else ""
    )
    return Outcome(
        _decision(
            s,
            att,
            "allow",
            reason,
            mode,
            t0,
            execution=execution_doc(s, finished),
            proposal=proposal_doc(s, store.proposal_get(proposal["id"])) if proposal else None,
        ),
        code,
    )


def _journal(s: Session, xid: str, action: str, root: Path) -> execute.Journal:
    def write(kind: str, record: dict[str, Any]) -> None:
        s.audit(kind, record, action=action)

    return execute.Journal(s.store, xid, write, root / execute.BACKUPS / xid, root)


def finish(
    s: Session,
    xid: str,
    status: str,
    reasons: list[str],
    action: str,
    *,
    idem_key: str | None,
    kind: str = "run.end",
) -> dict[str, Any]:
    """Record an execution's outcome (and free its idempotency key if it no longer holds)."""
    store = s.store
    code = execute.OUTCOME_EXIT.get(status, 70)
    ended = durations.now()
    with store.transaction():
        row = store.execution_get(xid) or {}
        store.execution_update(
            xid,
            status=status,
            exit_code=code,
            ended=ended,
            reasons=list(row.get("reasons") or []) + reasons if kind != "run.end" else reasons,
        )
        if status in ("rolled_back", "aborted") and idem_key:
            store.idem_release(idem_key, xid)
        s.audit(
            kind,
            {
                "execution": xid,
                "outcome": status,
                "exit_code": code,
                "reasons": reasons,
                "duration_ms": round((ended - float(row.get("started") or ended)) * 1000, 3),
            },
            action=action,
        )
    if status == "rolled_back":
        _drop_backups(row.get("root"), xid)
    final: dict[str, Any] = store.execution_get(xid) or {}
    return final


def _drop_backups(root: Any, xid: str) -> None:
    if root:
        shutil.rmtree(Path(str(root)) / execute.BACKUPS / xid, ignore_errors=True)


# ----------------------------------------------------------------------- dry run


def _dry_run(s: Session, att: Attempt, mode: str, t0: float, *, record: bool = True) -> Outcome:
    blocking = [r for r in att.results if r.blocks]
    would = [
        f"{r.name} ({r.kind}): {r.detail}" for r in att.results if not r.passed and not r.blocking
    ]
    steps = [] if blocking else [execute.dry_run_step(st) for st in att.steps]
    failed = [st for st in steps if st.get("status") == "failed"]
    ok = not blocking and not failed
    did = new_id("d")
    row = {
        "id": did,
        "action": att.action["name"],
        "params_key": att.pkey,
        "action_hash": att.action["hash"],
        "plan_hash": s.engine.plan_hash,
        "ts": s.now,
        "actor": s.actor,
        "ok": 1 if ok else 0,
        "detail": {
            "steps": steps,
            "gates": [r.public() for r in att.results],
            "params": s.redact_params(att.params),
            "would_block": would,
        },
    }
    if record:
        with s.store.transaction():
            s.store.dry_run_insert(row)
            s.audit(
                "dry_run",
                {
                    "dry_run": did,
                    "params": att.params,
                    "action_hash": att.action["hash"],
                    "plan_hash": s.engine.plan_hash,
                    "ok": ok,
                    "reasons": _reasons(att.results)
                    + [f"step {st['name']!r}: {st['detail']}" for st in failed],
                },
                action=att.action["name"],
            )
    doc = dry_run_doc(s, row)
    if blocking:
        reason = "dry run blocked: " + "; ".join(_reasons(att.results))
        return Outcome(_decision(s, att, "deny", reason, mode, t0, execution=doc), 2)
    if failed:
        reason = "dry run failed: " + "; ".join(
            f"step {st['name']!r}: {st['detail']}" for st in failed
        )
        return Outcome(_decision(s, att, "deny", reason, mode, t0, execution=doc), 2)
    reason = f"dry run ok ({len(steps)} step{'s' if len(steps) != 1 else ''}, nothing changed)"
    if would:
        reason += "; a real run would still need: " + "; ".join(would)
    return Outcome(_decision(s, att, "allow", reason, mode, t0, execution=doc), 0)


def dry_run_doc(s: Session, row: dict[str, Any]) -> dict[str, Any]:
    detail = row.get("detail") or {}
    return {
        "id": row["id"],
        "dry_run": True,
        "action": row["action"],
        "status": "ok" if row["ok"] else "failed",
        "actor": row["actor"],
        "params": detail.get("params"),
        "action_hash": row["action_hash"],
        "plan_hash": row["plan_hash"],
        "time": gates.iso(row["ts"]),
        "would_block": detail.get("would_block", []),
        "steps": detail.get("steps", []),
        "gates": detail.get("gates", []),
    }


# --------------------------------------------------------------------- proposals


def _proposal(s: Session, pid: str) -> dict[str, Any]:
    p: dict[str, Any] | None = s.store.proposal_get(pid)
    if p is None:
        raise UsageError(f"no proposal {pid!r} (see `warden history` / `warden show`)")
    return p


def create_proposal(
    s: Session, att: Attempt, *, required: int, dry_run_id: str | None = None
) -> tuple[dict[str, Any], bool]:
    """A new pending proposal, or the caller's identical open one (reused=True)."""
    store = s.store
    with store.transaction():
        for p in store.proposals(
            action=att.action["name"], params_key=att.pkey, statuses=["pending"]
        ):
            if (
                p["action_hash"] == att.action["hash"]
                and p["proposer"] == s.actor
                and dry_run_id is None
            ):
                return p, True
        row = {
            "id": new_id("p"),
            "action": att.action["name"],
            "action_hash": att.action["hash"],
            "plan_hash": s.engine.plan_hash,
            "params": att.params,
            "params_key": att.pkey,
            "proposer": s.actor,
            "status": "pending",
            "required": required,
            "created": s.now,
            "updated": s.now,
            "note": "",
            "dry_run_id": dry_run_id,
            "execution_id": None,
            "detail": {"gates": [r.public() for r in att.results]},
        }
        store.proposal_insert(row)
        s.audit(
            "proposal.create",
            {
                "proposal": row["id"],
                "params": att.params,
                "action_hash": att.action["hash"],
                "plan_hash": s.engine.plan_hash,
                "required": required,
                "dry_run": dry_run_id,
            },
            action=att.action["name"],
        )
    return row, False


def propose(s: Session, name: str, params: dict[str, Any]) -> Outcome:
    """``warden propose``: the dry run, then a stored proposal (exit 0 with its id)."""
    t0 = time.perf_counter()
    att = prepare_attempt(s, name, params, phase="propose")
    mode = s.engine.effective_mode()
    att.results = gates.evaluate(att.ctx)
    dry = _dry_run(s, att, mode, t0)
    if dry.exit_code != 0:
        return dry
    dry_id = dry.doc["execution"]["id"]
    p, _ = create_proposal(s, att, required=_required(att), dry_run_id=dry_id)
    doc = proposal_doc(s, p)
    doc["dry_run"] = dry.doc["execution"]
    doc["gates"] = [r.public() for r in att.results]
    return Outcome(doc, 0)


def _approvers(s: Session, p: dict[str, Any], action: dict[str, Any]) -> list[str] | None:
    """The union of ``approvers`` of the approval gates that apply (None: anyone)."""
    from warden.runtime import build

    data = {
        "event": "action",
        "action": p["action"],
        "params": p["params"],
        "risk": action["risk"],
        "actor": p["proposer"],
    }
    env = s.engine.make_env(data, now=s.now)
    allowed: set[str] = set()
    restricted = False
    plan_gates = s.plan.get("gates", {})
    for g in action.get("gates", []):
        gate = plan_gates.get(g) or {}
        if gate.get("kind") != "approval":
            continue
        if gate.get("when") is not None and not build(gate["when"])(env, data):
            continue
        if gate.get("approvers"):
            restricted = True
            allowed.update(gate["approvers"])
        else:
            return None
    return sorted(allowed) if restricted else None


def _open_proposal(s: Session, pid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    p = _proposal(s, pid)
    if p["status"] not in PROPOSAL_OPEN:
        raise Refused(f"proposal {pid} is {p['status']}")
    actions = s.plan.get("actions", {})
    action = actions.get(p["action"])
    if action is None:
        raise Refused(f"proposal {pid} is void: action {p['action']!r} no longer exists")
    if action["hash"] != p["action_hash"]:
        raise Refused(
            f"proposal {pid} is void: action {p['action']!r} changed since it was "
            f"proposed (action hash {p['action_hash'][:15]}… -> "
            f"{action['hash'][:15]}…); any approval of it is void; propose again"
        )
    return p, action


def approve(s: Session, pid: str, by: str, note: str = "") -> Outcome:
    """``warden approve ID --by NAME``."""
    store = s.store
    with store.transaction():
        p, action = _open_proposal(s, pid)
        if by == p["proposer"]:
            raise Refused(f"{by} proposed {pid} and cannot approve their own proposal")
        allowed = _approvers(s, p, action)
        if allowed is not None and by not in allowed:
            raise Refused(f"{by} may not approve {pid} (approvers: {', '.join(allowed)})")
        prior = [a for a in store.approvals(pid) if a["kind"] == "approve"]
        if any(a["actor"] == by for a in prior):
            raise Refused(f"{by} has already approved {pid}")
        store.approval_insert(pid, "approve", by, s.now, note, action["hash"])
        valid = {
            a["actor"]
            for a in prior
            if a["action_hash"] == action["hash"] and a["actor"] != p["proposer"]
        } | {by}
        status = "approved" if len(valid) >= int(p["required"]) else "pending"
        store.proposal_update(pid, status=status, updated=s.now)
        s.audit(
            "proposal.approve",
            {
                "proposal": pid,
                "note": note,
                "approvals": len(valid),
                "required": p["required"],
                "status": status,
                "action_hash": action["hash"],
            },
            action=p["action"],
            actor=by,
        )
    return Outcome(proposal_doc(s, _proposal(s, pid)), 0)


def reject(s: Session, pid: str, by: str, note: str = "") -> Outcome:
    """``warden reject ID``: one rejection closes the proposal."""
    store = s.store
    with store.transaction():
        p = _proposal(s, pid)
        if p["status"] not in PROPOSAL_OPEN:
            raise Refused(f"proposal {pid} is {p['status']}")
        store.approval_insert(pid, "reject", by, s.now, note, p["action_hash"])
        store.proposal_update(pid, status="rejected", updated=s.now, note=note)
        s.audit("proposal.reject", {"proposal": pid, "note": note}, action=p["action"], actor=by)
    return Outcome(proposal_doc(s, _proposal(s, pid)), 0)


def cancel(s: Session, pid: str, note: str = "") -> Outcome:
    """``warden cancel ID``."""
    store = s.store
    with store.transaction():
        p = _proposal(s, pid)
        if p["status"] not in PROPOSAL_OPEN:
            raise Refused(f"proposal {pid} is {p['status']}")
        store.proposal_update(pid, status="cancelled", updated=s.now, note=note)
        s.audit("proposal.cancel", {"proposal": pid, "note": note}, action=p["action"])
    return Outcome(proposal_doc(s, _proposal(s, pid)), 0)


@overload
def proposal_doc(s: Session, p: dict[str, Any]) -> dict[str, Any]: ...
@overload
def proposal_doc(s: Session, p: None) -> None: ...
def proposal_doc(s: Session, p: dict[str, Any] | None) -> dict[str, Any] | None:
    """The proposal as printed (params redacted), with its approvals and rejections."""
    if p is None:
        return None
    votes = s.store.approvals(p["id"])
    return {
        "id": p["id"],
        "kind": "proposal",
        "action": p["action"],
        "status": p["status"],
        "proposer": p["proposer"],
        "params": s.redact_params(p["params"]),
        "action_hash": p["action_hash"],
        "plan_hash": p["plan_hash"],
        "required": p["required"],
        "approvals": [
            {"by": a["actor"], "time": gates.iso(a["ts"]), "note": a["note"]}
            for a in votes
            if a["kind"] == "approve"
        ],
        "rejections": [
            {"by": a["actor"], "time": gates.iso(a["ts"]), "note": a["note"]}
            for a in votes
            if a["kind"] == "reject"
        ],
        "created": gates.iso(p["created"]),
        "updated": gates.iso(p["updated"]),
        "note": p.get("note") or "",
        "dry_run": p.get("dry_run_id"),
        "execution": p.get("execution_id"),
    }


# ------------------------------------------------------------ history and show


def execution_doc(s: Session, row: dict[str, Any], *, steps: bool = True) -> dict[str, Any]:
    status = execute.effective_status(row)
    started, ended = row.get("started"), row.get("ended")
    doc: dict[str, Any] = {
        "id": row["id"],
        "kind": "execution",
        "action": row["action"],
        "status": status,
        "exit_code": row.get("exit_code")
        if status == row["status"]
        else execute.OUTCOME_EXIT.get(status),
        "actor": row["actor"],
        "params": row["params"],
        "action_hash": row["action_hash"],
        "plan_hash": row["plan_hash"],
        "proposal": row.get("proposal_id"),
        "idempotency_key": row.get("idem_key"),
        "rate_keys": row.get("rate_keys") or [],
        "started": gates.iso(started),
        "ended": gates.iso(ended) if ended else None,
        "duration_ms": round((float(ended) - float(started)) * 1000, 3)
        if ended and started
        else None,
        "pid": row.get("pid"),
        "reasons": row.get("reasons") or [],
        "gates": row.get("gates") or [],
    }
    if steps:
        doc["steps"] = [_step_doc(r) for r in s.store.steps(row["id"])]
    return doc


def _step_doc(r: dict[str, Any]) -> dict[str, Any]:
    rb = r.get("rollback") or {}
    out = {
        "idx": r["idx"],
        "name": r["name"],
        "kind": r["kind"],
        "status": r["status"],
        "started": gates.iso(r.get("started")),
        "ended": gates.iso(r.get("ended")),
        "duration_ms": r.get("duration_ms"),
        "exit_code": r.get("exit_code"),
        "stdout": r.get("stdout") or "",
        "stderr": r.get("stderr") or "",
        "detail": r.get("detail") or "",
        "snapshots": r.get("snapshots") or [],
    }
    if rb:
        out["rollback"] = {
            k: (gates.iso(v) if k in ("started", "ended") else v) for k, v in rb.items()
        }
    return out


def history(
    s: Session,
    *,
    action: str | None = None,
    status: str | None = None,
    since: str | None = None,
    limit: int = 50,
) -> Outcome:
    store = s.engine.store(create=False)
    if store is None:
        return Outcome({"executions": []})
    s._store = store
    since_ts = parse_since(since, s.now) if since else None
    statuses: list[str] | None = None
    if status is not None:
        if status not in STATUSES:
            raise UsageError(f"--status {status!r}: one of {', '.join(STATUSES)}")
        statuses = list(execute.LIVE) if status == "interrupted" else [status]
    rows = store.executions(
        action=action,
        statuses=statuses,
        since=since_ts,
        limit=None if status in ("interrupted", *execute.LIVE) else limit,
    )
    docs = [execution_doc(s, r, steps=False) for r in rows]
    if status is not None:
        docs = [d for d in docs if d["status"] == status][:limit]
    return Outcome({"executions": docs})


def parse_since(text: str, now: float) -> float:
    try:
        return now - durations.parse_duration(text)
    except (ValueError, TypeError):
        pass
    try:
        return durations.parse_instant(text)
    except ValueError:
        raise UsageError(f"--since {text!r}: a duration (1d, 2h) or an ISO 8601 time") from None


def show(s: Session, ident: str) -> Outcome:
    store = s.engine.store(create=False)
    if store is None:
        raise UsageError(f"nothing recorded yet: no {ident!r}")
    s._store = store
    row = store.execution_get(ident)
    if row is not None:
        return Outcome(execution_doc(s, row))
    p = store.proposal_get(ident)
    if p is not None:
        return Outcome(proposal_doc(s, p) or {})
    d = store.dry_run_get(ident)
    if d is not None:
        return Outcome(dry_run_doc(s, d))
    raise UsageError(f"no execution, proposal or dry run {ident!r}")


# ----------------------------------------------------------- rollback / recover


def _take_over(
    s: Session, xid: str, expected: tuple[str, ...], kind: str, record: dict[str, Any], action: str
) -> bool:
    with s.store.transaction():
        ok = bool(
            s.store.execution_set_status(
                xid,
                expected,
                status="rolling_back",
                pid=os.getpid(),
                pid_start=execute.proc_start(os.getpid()),
            )
        )
        if ok:
            s.audit(kind, {"execution": xid, **record}, action=action)
    return ok


def rollback(s: Session, xid: str) -> Outcome:
    """``warden rollback ID``: undo a succeeded execution from its journal and backups."""
    row = s.store.execution_get(xid)
    if row is None:
        raise UsageError(f"no execution {xid!r}")
    status = execute.effective_status(row)
    if status != "succeeded":
        hint = (
            f" (`warden recover {xid}` handles {status} runs)"
            if status in ("partial", "interrupted")
            else ""
        )
        raise Refused(f"execution {xid} is {status}: only a succeeded run can be rolled back{hint}")
    if not _take_over(s, xid, ("succeeded",), "rollback.start", {}, row["action"]):
        raise Refused(f"execution {xid} changed meanwhile (another rollback?)")
    journal = _journal(s, xid, row["action"], Path(row["root"] or s.engine.root))
    with execute.signals_interrupt():
        ok = execute.rollback_steps(journal, execute.rows_to_undo(s.store.steps(xid)))
    final = finish(
        s,
        xid,
        "rolled_back" if ok else "partial",
        [f"rolled back by {s.actor}" if ok else "rollback failed"],
        row["action"],
        idem_key=row.get("idem_key"),
        kind="rollback.end",
    )
    return Outcome(execution_doc(s, final), 0 if ok else 6)


def recover(s: Session, xid: str | None = None) -> Outcome:
    """``warden recover [ID]``: kill what an interrupted run left running, roll it back."""
    store = s.engine.store(create=False)
    if store is None:
        return Outcome({"recovered": [], "skipped": []})
    s._store = store
    if xid is not None:
        row = store.execution_get(xid)
        if row is None:
            raise UsageError(f"no execution {xid!r}")
        targets = [row]
    else:
        targets = [
            r
            for r in store.executions(statuses=[*execute.LIVE, "partial"])
            if execute.effective_status(r) == "interrupted"
        ]
    done, skipped, code = [], [], 0
    for row in targets:
        status = execute.effective_status(row)
        if status not in ("interrupted", "partial"):
            if xid is not None:
                raise Refused(
                    f"execution {row['id']} is {status}: nothing to recover"
                    + (
                        f" (pid {row.get('pid')} is still running)"
                        if status in execute.LIVE
                        else ""
                    )
                )
            skipped.append(row["id"])
            continue
        if not _take_over(
            s, row["id"], (row["status"],), "recover.start", {"was": status}, row["action"]
        ):
            skipped.append(row["id"])
            continue
        killed = []
        for st in store.steps(row["id"]):
            child = st.get("child") or {}
            if st["status"] == "running" and child and execute.kill_recorded_group(child):
                killed.append(child.get("pgid"))
        journal = _journal(s, row["id"], row["action"], Path(row["root"] or s.engine.root))
        with execute.signals_interrupt():
            ok = execute.rollback_steps(journal, execute.rows_to_undo(store.steps(row["id"])))
        for st in store.steps(row["id"]):
            if st["status"] == "running":
                store.step_update(
                    row["id"], st["idx"], status="failed", detail="interrupted (warden was killed)"
                )
        note = f"recovered by {s.actor} (was {status}"
        note += f"; killed process group {', '.join(map(str, killed))})" if killed else ")"
        final = finish(
            s,
            row["id"],
            "rolled_back" if ok else "partial",
            [note if ok else note + ": rollback failed"],
            row["action"],
            idem_key=row.get("idem_key"),
            kind="recover.end",
        )
        done.append(execution_doc(s, final))
        if not ok:
            code = 6
    return Outcome({"recovered": done, "skipped": skipped}, code)


# ------------------------------------------------------------ kill switch, mode


def kill_switch(s: Session, op: str, reason: str = "") -> Outcome:
    store = s.store
    if op == "status":
        ks = gates.kill_switch_state(store)
        return Outcome(_ks_doc(ks))
    on = op == "on"
    value = {"on": on, "reason": reason, "by": s.actor, "ts": s.now}
    with store.transaction():
        before = gates.kill_switch_state(store)
        store.put(gates.KILL_SWITCH_KEY, value, by=s.actor)
        rec = s.audit("kill_switch", {"on": on, "reason": reason, "was": bool(before.get("on"))})
    doc = _ks_doc(value)
    doc["audit_seq"] = rec.seq
    return Outcome(doc)


def _ks_doc(ks: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "kill-switch",
        "on": bool(ks.get("on")),
        "reason": ks.get("reason") or "",
        "by": ks.get("by"),
        "time": gates.iso(ks.get("ts")) if ks.get("ts") else None,
    }


def mode(s: Session, op: str) -> Outcome:
    settings_mode = str(s.engine.settings.get("mode", "enforce"))
    if op == "status":
        store = s.engine.store(create=False)
        stored = store.get(MODE_KEY) if store is not None else None
        effective = stored if stored in ("enforce", "observe") else settings_mode
        return Outcome(
            {
                "id": "mode",
                "mode": effective,
                "source": "state" if stored in ("enforce", "observe") else "settings",
                "settings_mode": settings_mode,
            }
        )
    store = s.store
    with store.transaction():
        before = store.get(MODE_KEY)
        store.put(MODE_KEY, op, by=s.actor)
        rec = s.audit("mode", {"mode": op, "was": before or settings_mode})
    return Outcome(
        {
            "id": "mode",
            "mode": op,
            "source": "state",
            "settings_mode": settings_mode,
            "audit_seq": rec.seq,
        }
    )


RATE_KEEP_MIN_S = 30 * 86400.0


def rate_horizon(plan: dict[str, Any]) -> float:
    """How long rate-limit slots are kept: the longest ``per`` of any rate_limit gate in the
    plan, and at least 30 days (so a window widened later still sees recent runs)."""
    pers = [
        float(g.get("per", 0))
        for g in plan.get("gates", {}).values()
        if isinstance(g, dict) and g.get("kind") == "rate_limit"
    ]
    return max([RATE_KEEP_MIN_S, *pers])


# ----------------------------------------------------------------------- registry


def list_actions(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": a["name"],
            "risk": a["risk"],
            "gates": a.get("gates", []),
            "description": a.get("description", ""),
            "steps": len(a.get("steps", [])),
            "hash": a.get("hash"),
        }
        for a in plan.get("actions", {}).values()
    ]


def action_doc(plan: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    def text(parts: Any) -> Any:
        if isinstance(parts, list) and all(isinstance(p, (str, list)) for p in parts):
            return "".join(
                p if isinstance(p, str) else "{" + paths.join_path(p) + "}" for p in parts
            )
        return parts

    def argv(v: Any) -> Any:
        return [text(p) for p in v] if isinstance(v, list) else v

    steps = []
    for st in action.get("steps", []):
        out: dict[str, Any] = {"name": st["name"], "kind": st["kind"]}
        for k, v in st.items():
            if k in ("name", "kind"):
                continue
            if k in ("run", "precondition", "verify", "dry_run", "rollback"):
                out[k] = argv(v)
            elif k in ("path", "content", "cwd"):
                out[k] = text(v)
            elif k == "mode" and v is not None:
                out[k] = f"{int(v):04o}"
            else:
                out[k] = v
        if st["kind"] in execute.FILE_KINDS and "rollback" not in out:
            out["rollback"] = "automatic (backup / created directories)"
        steps.append(out)

    def readable(node: Any) -> Any:  # a compiled condition without positions and paths
        if isinstance(node, dict):
            return {k: readable(v) for k, v in node.items() if k not in ("at", "path")}
        if isinstance(node, list):
            return [readable(v) for v in node]
        return node

    plan_gates = plan.get("gates", {})
    gate_docs = []
    for g in action.get("gates", []):
        spec = {
            k: readable(v) for k, v in (plan_gates.get(g) or {}).items() if k not in ("source",)
        }
        for k in ("key", "run"):
            if k in spec:
                spec[k] = argv(spec[k]) if k == "run" else text(spec[k])
        gate_docs.append(spec)
    return {
        "id": action["name"],
        "name": action["name"],
        "description": action.get("description"),
        "risk": action["risk"],
        "params": action.get("params"),
        "gates": gate_docs,
        "on_failure": action.get("on_failure", "rollback"),
        "idempotency_key": text(action["idempotency_key"])
        if action.get("idempotency_key")
        else "{action}:{canonical params}",
        "allowed_roots": action.get("allowed_roots", []),
        "steps": steps,
        "hash": action.get("hash"),
        "source": action.get("source"),
    }


# -------------------------------------------------------------------------- audit


def audit_verify(store: Any) -> Outcome:
    res = audit.verify(store)
    return Outcome(
        {
            "id": "audit",
            "ok": res.ok,
            "count": res.count,
            "first_bad_seq": res.first_bad_seq,
            "problem": res.problem,
        },
        0 if res.ok else 1,
    )
