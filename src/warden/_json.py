"""JSON for the hot path, straight from CPython's C accelerator (``_json``).

``import json`` costs a few milliseconds on every hook call because ``json.decoder`` and
``json.encoder`` import ``re`` (and ``re`` imports ``enum``) to compile regexes that the C
scanner and encoder never use. This module drives ``_json`` directly and gives the same
results as ``json.loads`` / ``json.dumps`` for the calls warden makes; anything unusual (a
parse error, an object the encoder does not know, an interpreter without ``_json``) is
handed to the ``json`` module itself, so error messages and edge cases stay the standard
ones. ``tests/test_json_fast.py`` checks the equivalence on random documents.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_c: Any
try:
    import _json as _c
except ImportError:  # pragma: no cover - other interpreters
    _c = None

_WS = " \t\n\r"


class _Context:
    """The attributes ``_json.make_scanner`` reads from a ``JSONDecoder``."""

    __slots__ = (
        "memo",
        "object_hook",
        "object_pairs_hook",
        "parse_constant",
        "parse_float",
        "parse_int",
        "strict",
    )

    def __init__(self, parse_constant: Callable[[str], Any] | None) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = parse_constant or _CONSTANTS.__getitem__
        self.memo: dict[str, str] = {}


_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_scanners: dict[Any, Any] = {}


def loads(text: str | bytes, *, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads(text, parse_constant=...)``."""
    if isinstance(text, str):  # bytes: json detects UTF-16/32 and BOMs, leave them to it
        scanner = _scanners.get(parse_constant)
        if scanner is None and _c is not None:
            scanner = _scanners[parse_constant] = _c.make_scanner(_Context(parse_constant))
        if scanner is not None:
            start = len(text) - len(text.lstrip(_WS))
            try:
                value, end = scanner(text, start)
            except (StopIteration, SystemError):
                # SystemError: the C scanner raises json.decoder.JSONDecodeError only when
                # json.decoder is already imported; json.loads below gives the real error
                value, end = None, -1
            if end >= 0 and not text[end:].strip(_WS):
                return value
    import json  # the error (or an interpreter without _json): the standard answer

    return json.loads(text, parse_constant=parse_constant)


def _encoder(ensure_ascii: bool, separators: tuple[str, str]) -> Any:
    if _c is None:
        return None
    quote = _c.encode_basestring_ascii if ensure_ascii else _c.encode_basestring
    try:
        return _c.make_encoder({}, _unknown, quote, None, separators[1], separators[0],
                               False, False, True)  # fmt: skip
    except TypeError:  # pragma: no cover - a future _json with another signature
        return None


def _unknown(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


_encoders: dict[tuple[bool, tuple[str, str]], Any] = {}


def dumps(
    obj: Any,
    *,
    ensure_ascii: bool = True,
    separators: tuple[str, str] = (", ", ": "),
    indent: int | None = None,
) -> str:
    """``json.dumps(obj, ensure_ascii=..., separators=..., indent=...)`` for plain JSON
    data (dicts with string keys, lists, str, int, float, bool, None)."""
    if indent is not None and _c is not None:
        if separators == (", ", ": "):
            separators = (",", ": ")
        parts: list[str] = []
        try:
            _pretty(obj, parts, "\n", " " * indent, ensure_ascii, separators)
            return "".join(parts)
        except (_Fallback, RecursionError):
            pass
    else:
        key = (ensure_ascii, separators)
        enc = _encoders.get(key)
        if enc is None:
            enc = _encoders[key] = _encoder(ensure_ascii, separators)
        if enc is not None:
            try:
                return "".join(enc(obj, 0))
            except (TypeError, ValueError, RecursionError):
                del _encoders[key]  # its circular-reference markers may be left set
    import json

    return json.dumps(obj, ensure_ascii=ensure_ascii, separators=separators, indent=indent)


class _Fallback(Exception):
    """Something the small pretty printer leaves to ``json``."""


def _pretty(
    obj: Any,
    out: list[str],
    nl: str,
    step: str,
    ensure_ascii: bool,
    seps: tuple[str, str],
) -> None:
    quote = _c.encode_basestring_ascii if ensure_ascii else _c.encode_basestring
    _pretty_into(obj, out, nl, step, quote, seps[0], seps[1])


def _pretty_into(
    obj: Any,
    out: list[str],
    nl: str,
    step: str,
    quote: Callable[[str], str],
    item_sep: str,
    key_sep: str,
) -> None:
    t = type(obj)
    if t is str:
        out.append(quote(obj))
    elif t is dict:
        if not obj:
            out.append("{}")
            return
        inner = nl + step
        between = item_sep + inner
        out.append("{")
        lead = inner
        for k, v in obj.items():
            if type(k) is not str:
                raise _Fallback
            out.append(lead)
            lead = between
            out.append(quote(k))
            out.append(key_sep)
            tv = type(v)
            if tv is str:
                out.append(quote(v))
            elif tv is int:
                out.append(int.__repr__(v))
            else:
                _pretty_into(v, out, inner, step, quote, item_sep, key_sep)
        out.append(nl + "}")
    elif t is list or t is tuple:
        if not obj:
            out.append("[]")
            return
        inner = nl + step
        between = item_sep + inner
        out.append("[")
        lead = inner
        for v in obj:
            out.append(lead)
            lead = between
            _pretty_into(v, out, inner, step, quote, item_sep, key_sep)
        out.append(nl + "]")
    elif obj is None:
        out.append("null")
    elif t is bool:
        out.append("true" if obj else "false")
    elif t is int:
        out.append(int.__repr__(obj))
    elif t is float:
        out.append(_float(obj))
    else:
        raise _Fallback


def _float(f: float) -> str:
    if f != f:
        return "NaN"
    if f == float("inf"):
        return "Infinity"
    if f == -float("inf"):
        return "-Infinity"
    return float.__repr__(f)
