"""``warden schema [NAME]`` and ``warden help exit-codes``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

NAMES = {"policy": "warden", "test": "warden-test", "decision": "decision", "plan": "plan"}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "schema",
        help="print a JSON Schema",
        description="Print one of the JSON Schemas warden ships.",
    )
    p.add_argument("name", nargs="?", default="policy", choices=sorted(NAMES))
    p.set_defaults(func=run_schema)
    h = sub.add_parser("help", help="reference pages (exit-codes)")
    h.add_argument("topic", choices=["exit-codes"])
    h.set_defaults(func=run_help)


def run_schema(args: argparse.Namespace) -> int:
    from importlib import resources

    text = resources.files("warden").joinpath("schema", f"{NAMES[args.name]}.schema.json")
    sys.stdout.write(text.read_text("utf-8"))
    return 0


def run_help(args: argparse.Namespace) -> int:
    from warden.decision import exit_code_table

    print(exit_code_table())
    return 0
