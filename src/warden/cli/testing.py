"""``warden test [PATHS]``: run ``*.warden-test.yaml`` suites, optionally with coverage."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from warden.cli.common import add_format


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"not between 0 and 100: {text!r}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "test",
        help="run the policies' unit tests (*.warden-test.yaml)",
        description="Find *.warden-test.yaml files under PATHS (default: .), evaluate every "
        "case against its policies and compare the decision with `expect`. Exit 0 when all "
        "pass, 1 when a case fails, no test is found or coverage is below --min-coverage, "
        "78 when a test or policy file is invalid.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        default=["."],
        metavar="PATH",
        help="test files or directories to search (default: .)",
    )
    p.add_argument(
        "--coverage",
        action="store_true",
        help="report rules that never applied and any/all branches never true",
    )
    p.add_argument(
        "--min-coverage",
        type=_percent,
        default=None,
        metavar="PCT",
        help="fail (exit 1) when total coverage is below PCT percent (implies --coverage)",
    )
    p.add_argument(
        "-k",
        dest="keyword",
        metavar="NAME",
        help="run only cases whose name contains NAME (case-insensitive)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="list every case")
    p.add_argument("--no-cache", action="store_true", help="do not use the plan cache")
    add_format(p, ("text", "json", "junit"), "text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from warden import testing
    from warden.cli.common import print_json

    want_cov = args.coverage or args.min_coverage is not None
    result = testing.run_tests(
        args.paths or ["."], keyword=args.keyword, coverage=want_cov, use_cache=not args.no_cache
    )
    for p in result.problems:  # warnings only: errors raised PolicyError (exit 78)
        print(str(p), file=sys.stderr)
    if args.format == "json":
        print_json(testing.to_json(result))
    elif args.format == "junit":
        sys.stdout.write(testing.to_junit(result) + "\n")
    else:
        print(testing.format_text(result, verbose=args.verbose))
    total = result.passed + result.failed
    if not result.files:
        where = " ".join(args.paths or ["."])
        print(f"warden: no test files (*.warden-test.yaml) found in {where}", file=sys.stderr)
        return 1
    if total == 0:
        print(
            f"warden: no test case selected (-k {args.keyword!r})"
            if args.keyword
            else "warden: the test files hold no test case",
            file=sys.stderr,
        )
        return 1
    code = 1 if result.failed else 0
    if args.min_coverage is not None and result.coverage is not None:
        pct = result.coverage["percent"]
        if pct < args.min_coverage:
            print(
                f"warden: coverage {pct:.1f}% is below --min-coverage {args.min_coverage:g}%",
                file=sys.stderr,
            )
            code = 1
    return code
