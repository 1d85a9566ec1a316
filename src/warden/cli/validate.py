"""``warden validate [PATHS]``: every schema and semantic error as file:line:col (exit 78)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from warden.cli.common import add_format, add_policy_options
from warden.errors import PolicyError, Problem, no_such_path
from warden.load import (
    Source,
    discover,
    find_project_root,
    is_test_file,
    project_files,
    test_files_under,
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="check policy files against the schema and semantics",
        description="Check policy (and test) files: schema and semantic errors, "
        "every one as file:line:col. Exit 0 when valid, 78 otherwise.",
    )
    p.add_argument("paths", nargs="*", help="policy files or directories (default: the project)")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    add_policy_options(p, user_default=False)
    add_format(p, ("text", "json"), "text")
    p.set_defaults(func=run)


def policy_sets(paths: list[str]) -> tuple[list[list[Source]], list[Path]]:
    """Group the files named (or found under directories) into policy sets by project root;
    test files are returned separately."""
    sets: dict[Path, list[Source]] = {}
    tests: list[Path] = []
    cwd = Path.cwd()
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            roots = sorted(
                {
                    find_project_root(f.parent) or f.parent
                    for f in [*p.rglob("warden.yaml"), *p.rglob(".warden/*.yaml")]
                }
            )
            files = [f for r in roots for f in project_files(r)]
            if not files:
                files = sorted(f for f in p.glob("*.y*ml") if not is_test_file(f.name))
            tests.extend(test_files_under(p))
        elif p.is_file():
            files = [p]
        else:
            raise PolicyError(Problem(str(no_such_path(arg)).removeprefix(f"{arg}: "), arg))
        for f in files:
            if is_test_file(f.name):
                tests.append(f)
                continue
            key = find_project_root(f.parent) or f.parent.resolve()
            group = sets.setdefault(key, [])
            if all(Path(s.path).resolve() != f.resolve() for s in group):
                group.append(Source(str(f), "project", _display(f, cwd)))
    return list(sets.values()), sorted(set(tests))


def _display(f: Path, cwd: Path) -> str:
    try:
        return str(f.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(f)


def run(args: argparse.Namespace) -> int:
    from warden.engine import check_sources

    if args.paths:
        sets, tests = policy_sets(args.paths)
    else:
        sources, _ = discover(args.policy, user=args.user_policies)
        sets, tests = [sources], []
        if not sources:
            raise PolicyError(Problem("no policy files found (no warden.yaml or .warden/*.yaml)"))
    problems: list[Problem] = []
    files = 0
    for sources in sets:
        files += len(sources)
        problems.extend(check_sources(sources, strict=args.strict)[1])
    for t in tests:
        files += 1
        problems.extend(_check_test_file(t, strict=args.strict))
    problems.sort(key=lambda p: p.sort_key())
    errors = [p for p in problems if p.severity == "error"]
    if args.format == "json":
        doc = {
            "valid": not errors,
            "files": files,
            "problems": [
                {
                    "file": p.file,
                    "line": p.line,
                    "column": p.column,
                    "severity": p.severity,
                    "message": p.message,
                    "path": p.path,
                }
                for p in problems
            ],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for p in problems:
            print(str(p), file=sys.stderr if p.severity == "error" else sys.stdout)
        if errors:
            print(f"warden: {len(errors)} error(s) in {files} file(s)", file=sys.stderr)
        else:
            warn = len(problems)
            print(f"{files} file(s) valid" + (f", {warn} warning(s)" if warn else ""))
    return 78 if errors else 0


def _check_test_file(path: Path, *, strict: bool) -> list[Problem]:
    from warden.load import load_document
    from warden.validate import schema_problems

    try:
        doc = load_document(path, _display(path, Path.cwd()))
    except PolicyError as exc:
        return exc.problems
    return schema_problems(doc, "warden-test")
