"""``warden fmt [--check] [PATHS]`` and ``warden init [--force]``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    f = sub.add_parser(
        "fmt",
        help="format policy and test files (canonical key order, comments kept)",
        description="Rewrite policy and test files in canonical form: key order, 2-space "
        "indentation, sequences indented under their key; comments, the modeline and "
        "quoting are kept. Default PATHS: the project's policy files and test files. "
        "With --check nothing is written: exit 1 and list the files that would change.",
    )
    f.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories (default: the project)"
    )
    f.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file would change"
    )
    f.add_argument(
        "--diff", action="store_true", help="print a unified diff of the changes (implies --check)"
    )
    f.set_defaults(func=run_fmt)
    i = sub.add_parser(
        "init",
        help="write a starter warden.yaml, test file and pre-commit config",
        description="Write warden.yaml (with the schema modeline), warden.warden-test.yaml "
        "and a .pre-commit-config.yaml entry into the current directory. Refuses to "
        "overwrite existing files (exit 64, nothing written) unless --force.",
    )
    i.add_argument("--force", action="store_true", help="overwrite existing starter files")
    i.set_defaults(func=run_init)


def run_fmt(args: argparse.Namespace) -> int:
    from warden import fmt
    from warden.errors import PolicyError, Problem

    files = fmt.files_for(args.paths)
    if not files:
        raise PolicyError(
            Problem(
                "no policy files found (no warden.yaml or .warden/*.yaml); name the files to format"
            )
        )
    check = args.check or args.diff
    problems = []
    changed = []
    for path in files:
        result = fmt.format_file(path)
        if result.problem is not None:
            problems.append(result.problem)
            continue
        if not result.changed:
            continue
        changed.append(result.path)
        if args.diff:
            sys.stdout.write(fmt.diff(result))
        if not check:
            path.write_text(result.formatted, "utf-8")
    for p in problems:
        print(str(p), file=sys.stderr)
    if check:
        for name in changed:
            print(f"would reformat {name}", file=sys.stderr if args.diff else sys.stdout)
        print(
            f"{len(changed)} file(s) would be reformatted, "
            f"{len(files) - len(changed) - len(problems)} unchanged",
            file=sys.stderr,
        )
    else:
        for name in changed:
            print(f"reformatted {name}")
        print(
            f"{len(changed)} file(s) reformatted, "
            f"{len(files) - len(changed) - len(problems)} unchanged",
            file=sys.stderr,
        )
    if problems:
        return 78
    return 1 if check and changed else 0


def run_init(args: argparse.Namespace) -> int:
    from warden.init import init

    outcome = init(".", force=args.force)
    for name in outcome.written:
        print(f"wrote {name}")
    for name in outcome.appended:
        print(f"added the warden hooks to {name}")
    for name in outcome.skipped:
        print(f"{name} already has warden hooks (left as it is)")
    print(
        "next: `warden validate`, `warden test`, and `pre-commit install` to run them on "
        "every commit"
    )
    return 0
