"""``warden`` entry point: parse arguments, dispatch, map errors to exit codes.

Only the module of the command being run is imported (so ``warden hook`` and ``warden
eval`` stay near interpreter start-up); ``warden --help`` imports them all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from warden import __version__
from warden.errors import PolicyError, UsageError, WardenError

# command name -> module under warden.cli that registers it
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "compile": "compile",
    "eval": "eval",
    "explain": "eval",
    "schema": "schema",
    "help": "schema",
    "hook": "hook",
    "state": "hook",
    "run": "actions",
    "propose": "actions",
    "approve": "actions",
    "reject": "actions",
    "cancel": "actions",
    "actions": "actions",
    "history": "actions",
    "show": "actions",
    "rollback": "actions",
    "recover": "actions",
    "kill-switch": "actions",
    "mode": "actions",
    "audit": "actions",
    "test": "testing",
    "check": "check",
    "fmt": "fmt",
    "init": "fmt",
    "serve": "serve",
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 64 (DESIGN §4), not 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # report() prefixes "warden: "; name the subcommand, if any, once.
        where = self.prog.removeprefix("warden").strip()
        raise UsageError(f"{where}: {message}" if where else message)


def build_parser(only: str | None = None) -> Parser:
    parser = Parser(
        prog="warden",
        description="Declarative YAML policy-as-code: agent hooks, guarded actions, CI checks.",
        epilog="Exit codes: `warden help exit-codes`.",
    )
    parser.add_argument("--version", action="version", version=f"warden {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    modules = [COMMANDS[only]] if only in COMMANDS else sorted(set(COMMANDS.values()))
    for name in dict.fromkeys(modules):
        try:
            module = importlib.import_module(f"warden.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"warden.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def report(exc: WardenError) -> None:
    if isinstance(exc, PolicyError):
        for p in exc.problems:
            print(str(p), file=sys.stderr)
        errors = sum(1 for p in exc.problems if p.severity == "error")
        if errors > 1:
            print(f"warden: {errors} errors in policy files", file=sys.stderr)
        return
    print(f"warden: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        first = next((a for a in args_list if not a.startswith("-")), None)
        parser = build_parser(first)
        if first is not None and first not in COMMANDS:
            raise UsageError(f"unknown command {first!r} (see `warden --help`)")
        args = parser.parse_args(args_list)
        if getattr(args, "func", None) is None:
            if args.command:
                raise UsageError(f"the {args.command} command is not available in this build")
            parser.print_help()
            return 64
        code: int = args.func(args)
        return code
    except WardenError as exc:
        report(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("warden: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("WARDEN_DEBUG"):
            raise
        print(f"warden: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 70


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
