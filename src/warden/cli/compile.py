"""``warden compile [-o FILE]``: write the evaluation plan (and warm the cache)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from warden.cli.common import add_policy_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "compile",
        help="compile policies into a plan (JSON)",
        description="Validate and compile the policy set into a deterministic "
        "plan document (schema/plan.schema.json); warms the plan cache.",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the plan here (default: stdout)")
    add_policy_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from warden.engine import build_plan
    from warden.errors import PolicyError, Problem, UsageError
    from warden.load import discover
    from warden.plan import dump_json

    sources, root = discover(args.policy, user=args.user_policies)
    if not sources:
        raise PolicyError(Problem("no policy files found (no warden.yaml or .warden/*.yaml)"))
    loaded = build_plan(sources, root, use_cache=False)
    from warden.engine import build_plan as warm

    warm(sources, root)
    for w in loaded.warnings:
        print(str(w), file=sys.stderr)
    text = dump_json(loaded.plan)
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    target = os.path.abspath(args.output)
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".warden-plan-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plan is an ordinary file
        os.replace(tmp, target)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    print(
        f"wrote {args.output} ({loaded.plan['hash']}, "
        f"{sum(len(s['rules']) for s in loaded.plan['scopes'])} rules)",
        file=sys.stderr,
    )
    return 0
