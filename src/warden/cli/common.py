"""Options and helpers shared by the commands."""

from __future__ import annotations

import sys

from warden.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def add_policy_options(p: argparse.ArgumentParser, *, user_default: bool = True) -> None:
    """``--policy PATH`` (repeatable) and the user-policy switch (DESIGN §2)."""
    p.add_argument(
        "-P",
        "--policy",
        action="append",
        default=None,
        metavar="PATH",
        help="policy file or directory (repeatable); replaces project discovery",
    )
    if user_default:
        p.add_argument(
            "--no-user-policies",
            dest="user_policies",
            action="store_false",
            default=True,
            help="ignore $XDG_CONFIG_HOME/warden/*.yaml",
        )
    else:
        p.add_argument(
            "--user-policies",
            dest="user_policies",
            action="store_true",
            default=False,
            help="also load $XDG_CONFIG_HOME/warden/*.yaml",
        )


def add_format(p: argparse.ArgumentParser, choices: tuple[str, ...], default: str) -> None:
    p.add_argument(
        "--format", choices=choices, default=default, help=f"output format (default: {default})"
    )


def print_json(doc: Any, *, pretty: bool = True) -> None:
    from warden import _json  # `json` imports `re`: not on the `warden eval` path

    text = _json.dumps(doc, indent=2 if pretty else None, ensure_ascii=False)
    sys.stdout.write(text + "\n")


def read_input(path: str | None) -> bytes:
    """The input document: ``--input FILE``, or stdin for ``-`` or no option.

    At most one byte more than the input limit is read, so an endless stream (``yes |``,
    ``/dev/zero``) is refused as too large instead of filling the memory."""
    from warden.engine import MAX_INPUT_BYTES

    if path in (None, "-"):
        data: bytes = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        return data
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
            return data
    except OSError as exc:
        raise UsageError(f"--input {path}: {exc.strerror}") from None
