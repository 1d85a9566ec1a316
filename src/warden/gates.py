"""Gate evaluation for guarded actions (DESIGN §6, §8).

Every gate an action lists is evaluated, and every result reported as
``{name, kind, passed, detail}``, even after the first failure, so a user sees everything
that blocks them at once. On top of the listed gates: the global kill switch (``warden
kill-switch on`` blocks every run, listed or not) and the ``event: action`` rules (reported as
one entry of kind ``policy``; a ``deny`` blocks, an ``ask`` needs an approval like an
``approval`` gate with ``approvals: 1``).

A gate with ``when`` (any kind but ``condition``) applies only when the condition holds;
otherwise it passes with "does not apply". During ``--dry-run`` and ``propose`` the
``dry_run``, ``approval``, ``rate_limit`` and ``idempotent`` gates are evaluated and reported
but never block (``GateResult.blocking`` is False).

Rate-limit and idempotency results computed here are advisory: the executor re-checks them in
the same ``BEGIN IMMEDIATE`` transaction that journals the run ``started`` (``claims``), so
concurrent processes can never both pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from warden import execute, paths
from warden.errors import InputError
from warden.paths import MISSING

KILL_SWITCH_KEY = "kill_switch"
NON_BLOCKING_IN_PREVIEW = frozenset({"dry_run", "approval", "rate_limit", "idempotent"})
CLAIM_KINDS = frozenset({"rate_limit", "idempotent"})
HOLDING = frozenset({"started", "rolling_back", "succeeded", "partial", "interrupted"})


@dataclass
class GateResult:
    """One gate's verdict. ``public()`` is the decision document's entry."""

    name: str
    kind: str
    passed: bool
    detail: str
    blocking: bool = True
    applies: bool = True
    needs_approval: bool = False

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "passed": self.passed, "detail": self.detail}

    @property
    def blocks(self) -> bool:
        return not self.passed and self.blocking


@dataclass
class Context:
    """What the gates of one attempt can see."""

    engine: Any  # warden.engine.Engine
    store: Any  # warden.state.Store
    action: dict[str, Any]
    input: dict[str, Any]
    params_key: str
    now: float
    phase: str = "run"  # run | dry_run | propose
    proposal: dict[str, Any] | None = None
    idem_key: str | None = None
    rate_keys: dict[str, str] = field(default_factory=dict)
    side_effects: bool = False
    decision: Any = None  # the event:action rules' Decision, once evaluated

    @property
    def gates(self) -> dict[str, Any]:
        plan_gates: dict[str, Any] = self.engine.plan.get("gates", {})
        return {g: plan_gates[g] for g in self.action.get("gates", []) if g in plan_gates}

    def env(self) -> Any:
        return self.engine.make_env(self.input, now=self.now)


# ------------------------------------------------------------------------ keys


def render_key(parts: paths.TemplateParts, data: dict[str, Any], what: str) -> str:
    """A strict template render for keys: a missing or empty field is exit 65."""
    value = paths.render(parts, data, "strict")
    if value is MISSING:
        holes = ", ".join("{" + paths.join_path(p) + "}" for p in paths.template_paths(parts))
        raise InputError(f"{what}: {holes} is missing or empty")
    return paths.to_text(value)


def idempotency_key(action: dict[str, Any], data: dict[str, Any], canonical_params: str) -> str:
    """The rendered ``idempotency_key``, default ``{action}:{canonical params}``."""
    parts = action.get("idempotency_key")
    if parts:
        return render_key(parts, data, f"action {action['name']!r}: idempotency_key")
    return f"{action['name']}:{canonical_params}"


def rate_keys(
    action: dict[str, Any], gates: dict[str, Any], data: dict[str, Any]
) -> dict[str, str]:
    """gate name -> rendered key, for every rate_limit gate of the action."""
    out = {}
    for name, gate in gates.items():
        if gate.get("kind") == "rate_limit":
            out[name] = render_key(gate.get("key") or [["action"]], data, f"gate {name!r}: key")
    return out


# --------------------------------------------------------------------- evaluate


def evaluate(ctx: Context) -> list[GateResult]:
    """Every gate of the action, the kill switch and the ``event: action`` rules."""
    results: list[GateResult] = []
    env = ctx.env()
    for name, gate in ctx.gates.items():
        results.append(evaluate_gate(ctx, name, gate, env))
    if not any(g.get("kind") == "kill_switch" for g in ctx.gates.values()):
        ks = kill_switch_state(ctx.store)
        if ks.get("on"):
            results.append(GateResult("kill-switch", "kill_switch", False, _ks_detail(ks)))
    rules = _rules(ctx)
    if rules is not None:
        results.append(rules)
    return results


def evaluate_gate(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> GateResult:
    kind = str(gate.get("kind"))
    blocking = not (ctx.phase != "run" and kind in NON_BLOCKING_IN_PREVIEW)
    when = gate.get("when")
    if when is not None and kind != "condition":
        from warden.runtime import build

        if not build(when)(env, ctx.input):
            return GateResult(
                name,
                kind,
                True,
                "does not apply (its when: condition is false)",
                blocking,
                applies=False,
            )
    check = _KINDS.get(kind)
    if check is None:
        return GateResult(name, kind, False, f"unknown gate kind {kind!r}", blocking)
    passed, detail, needs_approval = check(ctx, name, gate, env)
    return GateResult(name, kind, passed, detail, blocking, needs_approval=needs_approval)


Verdict = tuple[bool, str, bool]


def kill_switch_state(store: Any) -> dict[str, Any]:
    value = store.get(KILL_SWITCH_KEY) if store is not None else None
    return value if isinstance(value, dict) else {"on": False}


def _ks_detail(ks: dict[str, Any]) -> str:
    who = f" by {ks['by']}" if ks.get("by") else ""
    when = f" at {iso(ks['ts'])}" if ks.get("ts") else ""
    why = f": {ks['reason']}" if ks.get("reason") else ""
    return f"the kill switch is on (set{who}{when}{why}); `warden kill-switch off` lifts it"


def _kill_switch(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> Verdict:
    ks = kill_switch_state(ctx.store)
    if ks.get("on"):
        return False, _ks_detail(ks), False
    return True, "the kill switch is off", False


def valid_approvals(ctx: Context, approvers: list[str] | None) -> tuple[list[str], list[str]]:
    """(names of valid approvals, notes on ignored ones) of the context's proposal."""
    p = ctx.proposal
    if p is None:
        return [], []
    names: list[str] = []
    notes: list[str] = []
    for a in ctx.store.approvals(p["id"]):
        if a["kind"] != "approve":
            continue
        who = a["actor"]
        if who == p["proposer"]:
            notes.append(f"{who} proposed it and cannot approve it")
        elif a["action_hash"] != ctx.action["hash"]:
            notes.append(f"{who}'s approval was for another version of the action")
        elif approvers and who not in approvers:
            notes.append(f"{who} is not an allowed approver")
        elif who not in names:
            names.append(who)
    return names, notes


def void_reason(ctx: Context) -> str | None:
    """Why the context's proposal cannot authorise this run, or None."""
    p = ctx.proposal
    if p is None:
        return None
    if p["action_hash"] != ctx.action["hash"]:
        return (
            f"the approval of proposal {p['id']} is void: action {p['action']!r} changed "
            f"since it was proposed (action hash {_short(p['action_hash'])} -> "
            f"{_short(ctx.action['hash'])}); propose it again"
        )
    return None


def _approval(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> Verdict:
    need = int(gate.get("approvals", 1))
    return _approved(ctx, need, gate.get("approvers"))


def _approved(ctx: Context, need: int, approvers: list[str] | None) -> Verdict:
    p = ctx.proposal
    if p is None:
        extra = f" from {', '.join(approvers)}" if approvers else ""
        return (
            False,
            f"needs {need} approval(s){extra}: `warden run` without --proposal "
            "creates a proposal; then `warden approve ID --by NAME`",
            True,
        )
    void = void_reason(ctx)
    if void:
        return False, void, False
    names, notes = valid_approvals(ctx, approvers)
    ignored = f" (ignored: {'; '.join(notes)})" if notes else ""
    if len(names) >= need:
        return (
            True,
            f"{len(names)}/{need} approval(s) on proposal {p['id']}: {', '.join(names)}{ignored}",
            False,
        )
    have = f": {', '.join(names)}" if names else ""
    return (
        False,
        f"{len(names)}/{need} approval(s) on proposal {p['id']}{have}{ignored}; "
        f"`warden approve {p['id']} --by NAME`",
        True,
    )


def _rate_limit(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> Verdict:
    key = ctx.rate_keys.get(name)
    if key is None:
        return False, "no key rendered", False
    per, most = float(gate["per"]), int(gate["max"])
    n = ctx.store.rate_count(key, ctx.now - per)
    window = fmt_duration(per)
    if n < most:
        return True, f"{n}/{most} runs in the last {window} for key {key!r}", False
    oldest = ctx.store.rate_oldest(key, ctx.now - per)
    again = f"; next slot in {fmt_duration(oldest + per - ctx.now)}" if oldest else ""
    return (
        False,
        f"rate limit reached: {n}/{most} runs in the last {window} for key {key!r}{again}",
        False,
    )


def _dry_run(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> Verdict:
    max_age = float(gate.get("max_age", 3600))
    action = ctx.action
    rows = ctx.store.dry_runs(action["name"], ctx.params_key, ok=True, limit=50)
    same = [r for r in rows if r["action_hash"] == action["hash"]]
    hint = f"`warden run {action['name']} --dry-run` with the same params"
    if same:
        last = same[0]
        age = ctx.now - float(last["ts"])
        if age <= max_age:
            return (
                True,
                f"dry run {last['id']} {fmt_duration(max(age, 0))} ago "
                f"(max_age {fmt_duration(max_age)})",
                False,
            )
        return (
            False,
            f"the last dry run {last['id']} is {fmt_duration(age)} old, older "
            f"than max_age {fmt_duration(max_age)}: {hint} again",
            False,
        )
    if rows:
        return (
            False,
            f"the last dry run {rows[0]['id']} was of another version of the "
            f"action (it changed since; the dry run is void): {hint} again",
            False,
        )
    return False, f"no successful dry run of this action with these params: {hint} first", False


def claim_holder(ctx: Context, key: str, window: float | None) -> dict[str, Any] | None:
    """The execution that holds an idempotency key now (with its effective status), or None."""
    claim = ctx.store.idem_get(key)
    if claim is None:
        return None
    ex = ctx.store.execution_get(claim["execution_id"])
    if ex is None:
        return None
    status = execute.effective_status(ex)
    if status not in HOLDING:
        return None
    if status == "succeeded" and window is not None:
        ended = float(ex.get("ended") or ex["started"])
        if ended + window <= ctx.now:
            return None
    return {**ex, "status": status}


def _idempotent(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> Verdict:
    key = ctx.idem_key
    if key is None:
        return False, "no idempotency key rendered", False
    window = gate.get("window")
    holder = claim_holder(ctx, key, float(window) if window is not None else None)
    if holder is None:
        return True, f"idempotency key {key!r} is free", False
    status, xid = holder["status"], holder["id"]
    free = {
        "started": "it is still running",
        "rolling_back": "it is being rolled back",
        "succeeded": f"`warden rollback {xid}` frees it"
        + (
            f", or wait until its window of {fmt_duration(float(window))} passes"
            if window is not None
            else ""
        ),
        "partial": f"`warden recover {xid}` frees it",
        "interrupted": f"`warden recover {xid}` frees it",
    }[status]
    return (
        False,
        f"idempotency key {key!r} is held by execution {xid} ({status}, "
        f"{iso(float(holder['started']))}): {free}",
        False,
    )


def _time_window(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> Verdict:
    from zoneinfo import ZoneInfo

    from warden.runtime import clock_matches

    tz = gate.get("tz") or "UTC"
    local = datetime.fromtimestamp(ctx.now, ZoneInfo(tz))
    days = gate.get("days")
    from warden.durations import DAYS

    span = ",".join(DAYS[d] for d in days) if days else "any day"
    hours = f"{_hm(gate.get('after'), '00:00')}-{_hm(gate.get('before'), '24:00')}"
    now = local.strftime("%a %H:%M").lower()
    if clock_matches(gate, ctx.now):
        return True, f"inside the window {span} {hours} {tz} (now {now})", False
    return False, f"outside the window {span} {hours} {tz} (now {now})", False


def _hm(minutes: Any, default: str) -> str:
    if minutes is None:
        return default
    return f"{int(minutes) // 60:02d}:{int(minutes) % 60:02d}"


def _command(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> Verdict:
    argv = [
        render_key(p, ctx.input, f"gate {name!r}: run[{i}]")
        for i, p in enumerate(gate.get("run") or [])
    ]
    timeout = float(gate.get("timeout", 600))
    want = int(gate.get("exit_code", 0))
    r = execute.run_process(
        argv, env=dict(os.environ), cwd=str(ctx.engine.root), timeout=timeout, interruptible=False
    )
    shown = " ".join(argv)
    if r.error or r.timed_out:
        return False, r.why(f"`{shown}`", timeout), False
    tail = (r.stderr or r.stdout).strip().splitlines()
    last = f": {tail[-1][:200]}" if tail and r.exit_code != want else ""
    if r.exit_code == want:
        return True, f"`{shown}` exited {r.exit_code}", False
    return False, f"`{shown}` exited {r.exit_code}, expected {want}{last}", False


def _condition(ctx: Context, name: str, gate: dict[str, Any], env: Any) -> Verdict:
    from warden.runtime import build, explain_condition

    when = gate.get("when")
    if when is None:
        return False, "no condition", False
    ok = build(when)(env, ctx.input)
    _, why = explain_condition(when, env, ctx.input)
    return ok, ("condition holds: " if ok else "condition does not hold: ") + why, False


_KINDS = {
    "kill_switch": _kill_switch,
    "approval": _approval,
    "rate_limit": _rate_limit,
    "dry_run": _dry_run,
    "idempotent": _idempotent,
    "time_window": _time_window,
    "command": _command,
    "condition": _condition,
}


def has_action_rules(plan: dict[str, Any]) -> bool:
    """Whether any rule can apply to ``event: action`` inputs."""
    return any(
        not r.get("events") or "action" in r["events"]
        for sc in plan.get("scopes", [])
        for r in sc.get("rules", [])
    )


def _rules(ctx: Context) -> GateResult | None:
    engine = ctx.engine
    if not has_action_rules(engine.plan):
        return None
    decision = engine.evaluate(
        ctx.input, now=ctx.now, mode="enforce", side_effects=ctx.side_effects
    )
    ctx.decision = decision
    deciding = decision.matched[0]["policy"] if decision.matched else "policies"
    blocking = True
    if decision.decision == "deny":
        return GateResult(deciding, "policy", False, decision.reason)
    if decision.decision == "ask":
        if ctx.phase != "run":
            blocking = False
        passed, detail, needs = _approved(ctx, 1, None)
        return GateResult(
            deciding,
            "policy",
            passed,
            f"{decision.reason} ({detail})",
            blocking,
            needs_approval=needs,
        )
    return GateResult(deciding, "policy", True, decision.reason)


# ------------------------------------------------------------------ claims (atomic)


def recheck_claims(ctx: Context) -> list[GateResult]:
    """Re-evaluate the rate_limit and idempotent gates that apply (inside the claim
    transaction); returns the ones that now fail."""
    env = ctx.env()
    failed = []
    for name, gate in ctx.gates.items():
        if gate.get("kind") in CLAIM_KINDS:
            r = evaluate_gate(ctx, name, gate, env)
            if not r.passed:
                failed.append(r)
    return failed


def applying(ctx: Context, results: list[GateResult], kind: str) -> list[str]:
    """Names of the gates of ``kind`` that apply to this attempt."""
    return [r.name for r in results if r.kind == kind and r.applies and r.name in ctx.gates]


# ---------------------------------------------------------------------- format


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    dt = datetime.fromtimestamp(float(ts), UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fmt_duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out.append(f"{s // size}{unit}")
            s %= size
    return "".join(out[:2])


def _short(h: str) -> str:
    return h[:15] + "…" if len(h) > 16 else h
