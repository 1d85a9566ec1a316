"""Guarded actions on the command line: run, propose, approve, reject, cancel, actions,
history, show, rollback, recover, kill-switch, mode, audit (DESIGN §6; docs/actions.md).

Every command takes ``--format json`` and then prints the record it made or read (with its
``id``); text output is for people. Exit codes follow DESIGN §4.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from warden.cli.common import add_policy_options, print_json
from warden.errors import PolicyError, UsageError

FORMATS = ("text", "json")


def _fmt(
    p: argparse.ArgumentParser, choices: tuple[str, ...] = FORMATS, default: str = "text"
) -> None:
    p.add_argument(
        "--format", choices=choices, default=default, help=f"output format (default: {default})"
    )


def _actor(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--actor", metavar="NAME", help="who is acting, for the audit trail (default: the OS user)"
    )


def _params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter (repeatable); the value is coerced "
        "to the type the action's params schema declares, else read as a YAML "
        "scalar",
    )
    p.add_argument(
        "--params-file",
        metavar="FILE",
        help="params from a YAML/JSON file (- for stdin); -p values override",
    )
    p.add_argument("--params-json", metavar="JSON", help="params as one JSON object")


def _common(
    p: argparse.ArgumentParser,
    *,
    actor: bool = True,
    formats: tuple[str, ...] = FORMATS,
    default: str = "text",
) -> None:
    add_policy_options(p)
    _fmt(p, formats, default)
    if actor:
        _actor(p)


def register(sub: Any) -> None:
    r = sub.add_parser(
        "run",
        help="run a guarded action (gates, steps, rollback)",
        description="Run ACTION if every gate passes: params are validated, gates and "
        "event: action rules evaluated, then the steps run with rollback on failure. Exit 0 "
        "succeeded, 2 blocked (nothing ran), 3 needs approval (a proposal was created), 5 "
        "failed and rolled back, 6 failed and not fully rolled back, 65 bad params/template/"
        "path.",
    )
    r.add_argument("action", nargs="?", metavar="ACTION")
    _params(r)
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="evaluate the gates and run only the steps' dry_run commands",
    )
    r.add_argument("--proposal", metavar="ID", help="run an approved proposal")
    _common(r)
    r.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "propose",
        help="propose an action run for approval",
        description="Dry-run ACTION and store a proposal (exit 0, prints its "
        "id). Others approve it with `warden approve ID --by NAME`; then "
        "`warden run --proposal ID`.",
    )
    p.add_argument("action", metavar="ACTION")
    _params(p)
    _common(p)
    p.set_defaults(func=cmd_propose)

    a = sub.add_parser(
        "approve",
        help="approve a proposal",
        description="Approve proposal ID. The proposer cannot approve their "
        "own proposal, nobody can approve twice, and an approval is void once "
        "the action changed. Exit 2 when refused.",
    )
    a.add_argument("id", metavar="ID")
    a.add_argument("--by", required=True, metavar="NAME", help="who approves")
    a.add_argument("--note", default="", help="a note for the audit trail")
    _common(a, actor=False)
    a.set_defaults(func=cmd_approve)

    j = sub.add_parser("reject", help="reject a proposal")
    j.add_argument("id", metavar="ID")
    j.add_argument("--by", metavar="NAME", help="who rejects (default: --actor or the OS user)")
    j.add_argument("--note", default="")
    _common(j)
    j.set_defaults(func=cmd_reject)

    c = sub.add_parser("cancel", help="cancel a proposal")
    c.add_argument("id", metavar="ID")
    c.add_argument("--note", default="")
    _common(c)
    c.set_defaults(func=cmd_cancel)

    x = sub.add_parser("actions", help="list or show the declared actions")
    xs = x.add_subparsers(dest="actions_cmd", metavar="list|show", parser_class=type(x))
    xl = xs.add_parser("list", help="every action: name, risk, gates, description")
    _common(xl, actor=False)
    xl.set_defaults(func=cmd_actions_list)
    xw = xs.add_parser("show", help="one action: params schema, steps, gates, rollback")
    xw.add_argument("name", metavar="NAME")
    _common(xw, actor=False)
    xw.set_defaults(func=cmd_actions_show)
    _common(x, actor=False)
    x.set_defaults(func=cmd_actions_list)

    h = sub.add_parser(
        "history",
        help="past runs (executions)",
        description="Executions, newest first. A run found started whose "
        "warden process is gone is shown as interrupted.",
    )
    h.add_argument("--action", metavar="NAME")
    h.add_argument(
        "--status",
        metavar="STATUS",
        help="succeeded, rolled_back, partial, aborted, interrupted, started",
    )
    h.add_argument("--since", metavar="WHEN", help="a duration (1d, 2h) or an ISO 8601 time")
    h.add_argument("--limit", type=int, default=50)
    _common(h, actor=False)
    h.set_defaults(func=cmd_history)

    s = sub.add_parser("show", help="one execution, proposal or dry run by id")
    s.add_argument("id", metavar="ID")
    _common(s, actor=False)
    s.set_defaults(func=cmd_show)

    b = sub.add_parser(
        "rollback",
        help="roll back a succeeded execution",
        description="Undo a succeeded execution from its journal and backups "
        "(steps in reverse). Exit 0 rolled back, 6 not fully rolled back.",
    )
    b.add_argument("id", metavar="ID")
    _common(b)
    b.set_defaults(func=cmd_rollback)

    v = sub.add_parser(
        "recover",
        help="recover interrupted (or partial) executions",
        description="Kill the process group an interrupted run left behind and "
        "roll back what it did. Without ID: every interrupted execution. Exit 0 "
        "recovered (or nothing to do), 6 not fully rolled back.",
    )
    v.add_argument("id", nargs="?", metavar="ID")
    _common(v)
    v.set_defaults(func=cmd_recover)

    k = sub.add_parser("kill-switch", help="block (or unblock) every warden run")
    k.add_argument("op", choices=("on", "off", "status"))
    k.add_argument("--reason", default="")
    _common(k)
    k.set_defaults(func=cmd_kill_switch)

    m = sub.add_parser("mode", help="enforce or observe (overrides settings.mode)")
    m.add_argument("op", choices=("enforce", "observe", "status"))
    _common(m)
    m.set_defaults(func=cmd_mode)

    u = sub.add_parser(
        "audit",
        help="verify or export the hash-chained audit trail",
        description="verify: exit 0 when the chain is intact, else print the "
        "first bad record and exit 1. export: every record (jsonl).",
    )
    u.add_argument("op", choices=("verify", "export"))
    add_policy_options(u)
    u.add_argument(
        "--format",
        choices=("text", "json", "jsonl"),
        default=None,
        help="verify: text|json (default text); export: jsonl|json (default jsonl)",
    )
    u.set_defaults(func=cmd_audit)


# ------------------------------------------------------------------------ plumbing


def _engine(args: argparse.Namespace, *, state_only: bool = False) -> Any:
    from warden.engine import load

    try:
        return load(policies=args.policy, user_policies=args.user_policies)
    except PolicyError as exc:
        if not state_only:
            raise
        return _bare_engine(exc)


def _bare_engine(exc: PolicyError) -> Any:
    """An engine without policies, for state commands while the policy files are broken."""
    import os

    from warden.compile import DEFAULT_SETTINGS, plan_hash
    from warden.engine import Engine
    from warden.load import find_project_root

    plan: dict[str, Any] = {
        "format": 1,
        "settings": dict(DEFAULT_SETTINGS),
        "scopes": [],
        "actions": {},
        "gates": {},
        "sources": [],
    }
    plan["hash"] = plan_hash(plan)
    root = find_project_root(os.getcwd()) or Path.cwd()
    engine = Engine(plan, root)
    first = str(exc).splitlines()[0] if str(exc) else "no policies"
    print(
        f"warden: warning: policies not loaded ({first}); using the state at "
        f"{engine.state_location()}",
        file=sys.stderr,
    )
    return engine


def _session(args: argparse.Namespace, *, state_only: bool = False) -> Any:
    from warden.actions import Session

    return Session(_engine(args, state_only=state_only), getattr(args, "actor", None))


def _params_of(args: argparse.Namespace, action: dict[str, Any]) -> dict[str, Any]:
    from warden.actions import parse_params

    return parse_params(action, args.params, args.params_file, args.params_json)


def _emit(args: argparse.Namespace, outcome: Any, text: Any) -> int:
    if args.format == "json":
        print_json(outcome.doc)
    else:
        lines = text(outcome.doc)
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
    code: int = outcome.exit_code
    return code


# ------------------------------------------------------------------------ commands


def cmd_run(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args)
    try:
        given = bool(args.params or args.params_file or args.params_json)
        if args.proposal:
            params = None
            if given:
                if args.action is None:
                    raise UsageError(
                        "--proposal runs the proposal's own params; do not "
                        "give -p, --params-file or --params-json with it"
                    )
                params = _params_of(args, s.action(args.action))
            out = actions.run(
                s, args.action, params, dry_run=args.dry_run, proposal_id=args.proposal
            )
        else:
            if args.action is None:
                raise UsageError("warden run: name an ACTION (or give --proposal ID)")
            params = _params_of(args, s.action(args.action))
            out = actions.run(s, args.action, params, dry_run=args.dry_run)
        return _emit(args, out, _decision_text)
    finally:
        s.close()


def cmd_propose(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args)
    try:
        params = _params_of(args, s.action(args.action))
        out = actions.propose(s, args.action, params)
        if out.exit_code != 0:
            return _emit(args, out, _decision_text)
        return _emit(args, out, _proposal_text)
    finally:
        s.close()


def cmd_approve(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args)
    try:
        return _emit(args, actions.approve(s, args.id, args.by, args.note), _proposal_text)
    finally:
        s.close()


def cmd_reject(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args, state_only=True)
    try:
        out = actions.reject(s, args.id, args.by or s.actor, args.note)
        return _emit(args, out, _proposal_text)
    finally:
        s.close()


def cmd_cancel(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args, state_only=True)
    try:
        return _emit(args, actions.cancel(s, args.id, args.note), _proposal_text)
    finally:
        s.close()


def cmd_actions_list(args: argparse.Namespace) -> int:
    from warden import actions

    engine = _engine(args)
    rows = actions.list_actions(engine.plan)
    if args.format == "json":
        print_json({"actions": rows})
        return 0
    if not rows:
        print("no actions declared")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        gates = ", ".join(r["gates"]) or "-"
        print(f"{r['name']:<{width}}  {r['risk']:<8}  gates: {gates}")
        if r["description"]:
            print(f"{'':<{width}}  {r['description']}")
    return 0


def cmd_actions_show(args: argparse.Namespace) -> int:
    from warden import actions

    engine = _engine(args)
    s = actions.Session(engine)
    doc = actions.action_doc(engine.plan, s.action(args.name))
    if args.format == "json":
        print_json(doc)
        return 0
    out = [f"{doc['name']} (risk {doc['risk']}, on_failure {doc['on_failure']})"]
    if doc.get("description"):
        out.append(f"  {doc['description']}")
    out.append(f"  defined at {doc['source']}; action hash {doc['hash']}")
    out.append("  params: " + json.dumps(doc["params"], ensure_ascii=False))
    out.append(f"  idempotency key: {doc['idempotency_key']}")
    if doc["allowed_roots"]:
        out.append(f"  allowed roots: {', '.join(doc['allowed_roots'])}")
    out.append("  gates:" + ("" if doc["gates"] else " none"))
    for g in doc["gates"]:
        rest = {k: v for k, v in g.items() if k not in ("name", "kind")}
        out.append(
            f"    {g.get('name')} ({g.get('kind')})"
            + (f" {json.dumps(rest, ensure_ascii=False)}" if rest else "")
        )
    out.append("  steps:")
    for i, st in enumerate(doc["steps"], 1):
        body = {k: v for k, v in st.items() if k not in ("name", "kind")}
        out.append(f"    {i}. {st['name']} ({st['kind']})")
        for k, v in body.items():
            out.append(f"         {k}: {json.dumps(v, ensure_ascii=False)}")
    print("\n".join(out))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args, state_only=True)
    try:
        out = actions.history(
            s, action=args.action, status=args.status, since=args.since, limit=args.limit
        )
        return _emit(args, out, _history_text)
    finally:
        s.close()


def cmd_show(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args, state_only=True)
    try:
        out = actions.show(s, args.id)
        kind = out.doc.get("kind")
        text = (
            _proposal_text
            if kind == "proposal"
            else (_dry_run_text if out.doc.get("dry_run") else _execution_text)
        )
        return _emit(args, out, text)
    finally:
        s.close()


def cmd_rollback(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args, state_only=True)
    try:
        return _emit(args, actions.rollback(s, args.id), _execution_text)
    finally:
        s.close()


def cmd_recover(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args, state_only=True)
    try:
        out = actions.recover(s, args.id)

        def text(doc: dict[str, Any]) -> list[str]:
            lines: list[str] = []
            for ex in doc["recovered"]:
                lines.extend(_execution_text(ex))
            if doc["skipped"]:
                lines.append(f"skipped (changed meanwhile): {', '.join(doc['skipped'])}")
            return lines or ["nothing to recover"]

        return _emit(args, out, text)
    finally:
        s.close()


def cmd_kill_switch(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args, state_only=True)
    try:
        out = actions.kill_switch(s, args.op, args.reason)

        def text(doc: dict[str, Any]) -> list[str]:
            state = "ON: every warden run is blocked" if doc["on"] else "off"
            who = f" (set by {doc['by']} at {doc['time']})" if doc.get("by") else ""
            why = f"\nreason: {doc['reason']}" if doc.get("reason") else ""
            return [f"kill switch {state}{who}{why}"]

        return _emit(args, out, text)
    finally:
        s.close()


def cmd_mode(args: argparse.Namespace) -> int:
    from warden import actions

    s = _session(args, state_only=True)
    try:
        out = actions.mode(s, args.op)

        def text(doc: dict[str, Any]) -> list[str]:
            src = "set with `warden mode`" if doc["source"] == "state" else "from settings.mode"
            return [f"mode: {doc['mode']} ({src})"]

        return _emit(args, out, text)
    finally:
        s.close()


def cmd_audit(args: argparse.Namespace) -> int:
    from warden import actions, audit

    engine = _engine(args, state_only=True)
    try:
        store = engine.store(create=False)
        if args.op == "export":
            fmt = args.format or "jsonl"
            if fmt == "text":
                raise UsageError("audit export: --format jsonl or json")
            records = list(audit.export(store)) if store is not None else []
            if fmt == "json":
                print_json(records)
            else:
                for rec in records:
                    sys.stdout.write(
                        json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
                    )
            return 0
        fmt = args.format or "text"
        if fmt == "jsonl":
            raise UsageError("audit verify: --format text or json")
        if store is None:
            out = actions.Outcome(
                {"id": "audit", "ok": True, "count": 0, "first_bad_seq": None, "problem": ""}
            )
        else:
            out = actions.audit_verify(store)
        if fmt == "json":
            print_json(out.doc)
        elif out.doc["ok"]:
            print(f"audit trail intact: {out.doc['count']} records")
        else:
            print(
                f"audit trail BROKEN: {out.doc['problem']} "
                f"({out.doc['count']} records intact before it)"
            )
        code: int = out.exit_code
        return code
    finally:
        engine.close()


# ---------------------------------------------------------------------- text output


def _decision_text(doc: dict[str, Any]) -> list[str]:
    ex = doc.get("execution") or {}
    head = doc["decision"].upper() + ("" if doc["enforced"] else " (observe mode)")
    if ex and not ex.get("dry_run") and ex.get("status") != "aborted":
        head = str(ex.get("status", "")).replace("_", " ").upper()
    lines = [f"{head}: {doc['reason']}"]
    for g in doc.get("gates", []):
        mark = "pass" if g["passed"] else "FAIL"
        lines.append(f"  gate  {g['name']} ({g['kind']}): {mark}: {g['detail']}")
    for f in doc.get("feedback", []):
        lines.append(f"  warn  {f['policy']}: {f['message']}")
    if ex.get("dry_run"):
        lines.extend(x for x in _dry_run_text(ex)[1:] if not x.startswith("  a real run"))
        lines.append(f"dry run {ex['id']} recorded ({ex['status']})")
    elif ex:
        lines.extend(_steps_text(ex.get("steps", [])))
        took = f" in {ex['duration_ms']:.0f} ms" if ex.get("duration_ms") is not None else ""
        lines.append(f"execution {ex['id']}: {ex['status']}{took}")
    p = doc.get("proposal")
    if p:
        lines.append(
            f"proposal {p['id']}: {p['status']} ({len(p['approvals'])}/{p['required']} approvals)"
        )
    return lines


def _steps_text(steps: list[dict[str, Any]]) -> list[str]:
    lines = []
    for st in steps:
        took = f"{st['duration_ms']:.0f} ms" if st.get("duration_ms") is not None else ""
        lines.append(
            f"  step  {st['idx'] + 1}. {st['name']} ({st['kind']}): {st['status']} "
            f"{took} {st.get('detail', '')}".rstrip()
        )
        if st["status"] != "ok" and (st.get("stderr") or st.get("stdout")):
            last = (st.get("stderr") or st.get("stdout") or "").strip().splitlines()
            if last:
                lines.append(f"        output: {last[-1][:200]}")
        rb = st.get("rollback")
        if rb:
            lines.append(f"        rollback: {rb.get('status')}: {rb.get('detail', '')}")
    return lines


def _execution_text(ex: dict[str, Any]) -> list[str]:
    lines = [
        f"{ex['id']}  {ex['action']}  {ex['status']} (exit {ex.get('exit_code')})  "
        f"by {ex['actor']} at {ex['started']}"
    ]
    lines.append(f"  params: {json.dumps(ex['params'], ensure_ascii=False)}")
    if ex.get("proposal"):
        lines.append(f"  proposal: {ex['proposal']}")
    for r in ex.get("reasons", []):
        lines.append(f"  reason: {r}")
    for g in ex.get("gates", []):
        if not g["passed"]:
            lines.append(f"  gate  {g['name']} ({g['kind']}): FAIL: {g['detail']}")
    lines.extend(_steps_text(ex.get("steps", [])))
    for st in ex.get("steps", []):
        for snap in st.get("snapshots", []):
            lines.append(
                f"  file  {snap['path']}: {_snap(snap.get('before'))} -> {_snap(snap.get('after'))}"
            )
    return lines


def _snap(s: Any) -> str:
    if not s:
        return "absent"
    if "sha256" in s:
        return f"{s['size']} bytes sha256:{s['sha256'][:12]}"
    return json.dumps(s)


def _dry_run_text(doc: dict[str, Any]) -> list[str]:
    lines = [f"{doc['id']}  dry run of {doc['action']}: {doc['status']} at {doc['time']}"]
    for st in doc.get("steps", []):
        lines.append(
            f"  would {st['idx'] + 1}. {st['name']}: {st['would']}"
            + (f" [dry_run: {st['detail']}]" if st.get("exit_code") is not None else "")
        )
    for w in doc.get("would_block", []):
        lines.append(f"  a real run would still need: {w}")
    return lines


def _proposal_text(p: dict[str, Any]) -> list[str]:
    lines = [
        f"{p['id']}  proposal to run {p['action']}: {p['status']} "
        f"({len(p['approvals'])}/{p['required']} approvals), proposed by {p['proposer']}"
    ]
    lines.append(f"  params: {json.dumps(p['params'], ensure_ascii=False)}")
    for a in p["approvals"]:
        lines.append(
            f"  approved by {a['by']} at {a['time']}" + (f": {a['note']}" if a["note"] else "")
        )
    for a in p["rejections"]:
        lines.append(
            f"  rejected by {a['by']} at {a['time']}" + (f": {a['note']}" if a["note"] else "")
        )
    if p["status"] in ("pending", "approved"):
        nxt = (
            f"warden run --proposal {p['id']}"
            if p["status"] == "approved"
            else f"warden approve {p['id']} --by NAME"
        )
        lines.append(f"  next: {nxt}")
    return lines


def _history_text(doc: dict[str, Any]) -> list[str]:
    rows = doc["executions"]
    if not rows:
        return ["no executions"]
    out = []
    for ex in rows:
        why = f"  {ex['reasons'][0]}" if ex.get("reasons") else ""
        out.append(
            f"{ex['id']}  {ex['started']}  {ex['action']:<16} {ex['status']:<12} "
            f"{ex['actor']}{why}"[:200]
        )
    return out
