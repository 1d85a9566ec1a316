"""``warden eval`` (one decision) and ``warden explain`` (one decision, and why)."""

from __future__ import annotations

import sys

from warden.cli.common import add_format, add_policy_options, print_json, read_input

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i", "--input", metavar="FILE", help="input JSON file, or - for stdin (default: stdin)"
    )
    p.add_argument("--plan", metavar="FILE", help="evaluate a plan written by `warden compile`")
    add_policy_options(p)


def register(sub: Any) -> None:
    e = sub.add_parser(
        "eval",
        help="evaluate one input, print the decision",
        description="Evaluate one JSON input against the policies and print the "
        "decision document. Exit 0 allow, 2 deny, 3 ask (0 in observe mode).",
    )
    _common(e)
    add_format(e, ("json", "text"), "json")
    e.add_argument("--fail-on-warn", action="store_true", help="exit 4 when allowed with warnings")
    e.set_defaults(func=run_eval)
    x = sub.add_parser(
        "explain",
        help="evaluate one input and show every rule's verdict",
        description="Like eval, and for every rule: whether it applied and "
        "which condition decided that.",
    )
    _common(x)
    add_format(x, ("text", "json"), "text")
    x.set_defaults(func=run_explain)


def load_engine(args: argparse.Namespace) -> Any:
    from warden.engine import load, load_plan

    if args.plan:
        return load_plan(args.plan)
    return load(policies=args.policy, user_policies=args.user_policies)


def run_eval(args: argparse.Namespace) -> int:
    from warden.engine import parse_input

    engine = load_engine(args)
    inp = parse_input(read_input(args.input))
    decision = engine.evaluate(inp)
    if args.format == "text":
        print(format_text(decision.to_dict()))
    else:
        print_json(decision.to_dict())
    code: int = decision.exit_code_for(fail_on_warn=args.fail_on_warn)
    return code


def format_text(doc: dict[str, Any]) -> str:
    head = doc["decision"].upper() + ("" if doc["enforced"] else " (observe: not enforced)")
    lines = [f"{head}: {doc['reason']}"]
    for m in doc["matched"]:
        lines.append(f"  matched  {m['policy']} ({m['effect']}) at {m['source']}")
    for f in doc["feedback"]:
        lines.append(f"  warn     {f['policy']}: {f['message']}")
    for g in doc.get("gates", []):
        mark = "pass" if g["passed"] else "FAIL"
        lines.append(f"  gate     {g['name']} ({g['kind']}): {mark} {g['detail']}")
    for s in doc.get("side_effects", []):
        lines.append(
            f"  effect   {s['policy']} {s['kind']}: {'ok' if s['ok'] else 'FAILED'} "
            f"{s.get('detail', '')}"
        )
    return "\n".join(lines)


def run_explain(args: argparse.Namespace) -> int:
    from warden.engine import parse_input

    engine = load_engine(args)
    inp = parse_input(read_input(args.input))
    rules = engine.explain(inp)
    decision = engine.evaluate(inp, side_effects=False)
    if args.format == "json":
        print_json({"decision": decision.to_dict(), "rules": rules})
        return 0
    out = sys.stdout
    out.write(format_text(decision.to_dict()) + "\n\n")
    width = max((len(r["policy"]) for r in rules), default=6)
    for r in rules:
        mark = "APPLIES" if r["applied"] else "skip   "
        out.write(f"{mark} {r['policy']:<{width}} {r['effect']:<5} {r['source']}\n")
        out.write(f"        {r['detail']}\n")
    return 0
