"""``warden`` entry point: parse arguments, dispatch, map errors to exit codes.

Only the module of the command being run is imported (so ``warden hook`` and ``warden
eval`` stay near interpreter start-up); ``warden --help`` imports them all.
"""

from __future__ import annotations

import os
import sys

from warden import __version__
from warden.errors import PolicyError, UsageError, WardenError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

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


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse

    class Parser(argparse.ArgumentParser):
        """argparse, but a usage error exits 64 (DESIGN §4), not 2."""

        def error(self, message: str) -> None:  # type: ignore[override]
            # report() prefixes "warden: "; name the subcommand, if any, once.
            where = self.prog.removeprefix("warden").strip()
            raise UsageError(f"{where}: {message}" if where else message)

    return Parser


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    import importlib

    Parser = _parser_class()
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


def _fast(args: list[str]) -> Callable[[], int] | None:
    """The hot commands without argparse: ``hook claude`` and plain ``eval`` invocations.
    Anything unusual (``--help``, unknown flags) returns None and goes through argparse."""
    if args == ["hook", "claude"]:
        return _hook_claude
    if args and args[0] == "eval":
        ns = _eval_args(args[1:])
        if ns is not None:
            from warden.cli.eval import run_eval

            return lambda: run_eval(ns)
    return None


def _hook_claude() -> int:
    from warden import hooks

    code: int = hooks.run_claude().emit()
    return code


_EVAL_VALUES = {
    "--input": "input",
    "-i": "input",
    "--plan": "plan",
    "--policy": "policy",
    "-P": "policy",
    "--format": "format",
}


def _eval_args(args: list[str]) -> argparse.Namespace | None:
    from types import SimpleNamespace

    ns: dict[str, object] = {
        "input": None,
        "plan": None,
        "policy": None,
        "format": "json",
        "fail_on_warn": False,
        "user_policies": True,
    }
    policies: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, sep, inline = arg.partition("=")
        if key in _EVAL_VALUES and (sep or i + 1 < len(args)):
            value = inline if sep else args[i + 1]
            i += 1 if sep else 2
            if _EVAL_VALUES[key] == "policy":
                policies.append(value)
            elif _EVAL_VALUES[key] == "format" and value not in ("json", "text"):
                return None
            else:
                ns[_EVAL_VALUES[key]] = value
        elif arg == "--fail-on-warn":
            ns["fail_on_warn"] = True
            i += 1
        elif arg == "--no-user-policies":
            ns["user_policies"] = False
            i += 1
        else:
            return None
    ns["policy"] = policies or None
    return SimpleNamespace(**ns)  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        fast = _fast(args_list)
        if fast is not None:
            return fast()
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
