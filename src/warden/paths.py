"""Field paths and templates: the two small languages inside policy values.

Field paths are dotted (``tool_input.command``); ``\\.`` escapes a dot inside a key; a
numeric segment indexes a list; ``*`` means any element / any value. Templates are strings
with ``{path}`` holes; ``{{`` and ``}}`` are literal braces. Both are parsed once by the
compiler and stored pre-split in the plan; the runtime only walks them.
"""

from __future__ import annotations

from warden import _json as json  # not `json`: it imports `re` (hot path)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

STAR = "*"
MISSING: Any = object()

# A compiled template: literal strings and paths (lists of segments), in order.
TemplateParts = list[str | list[str]]


class TemplateSyntaxError(ValueError):
    pass


def split_path(path: str) -> list[str]:
    """``a.b\\.c.0`` -> ``["a", "b.c", "0"]``."""
    if path == "":
        raise TemplateSyntaxError("empty field path")
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path) and path[i + 1] == ".":
            current.append(".")
            i += 2
            continue
        if ch == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    segments.append("".join(current))
    if any(s == "" for s in segments):
        raise TemplateSyntaxError(f"empty segment in field path {path!r}")
    return segments


def join_path(segments: list[str]) -> str:
    return ".".join(s.replace(".", "\\.") for s in segments)


def _step(value: Any, seg: str) -> Any:
    if isinstance(value, dict):
        return value.get(seg, MISSING)
    if isinstance(value, list) and seg.isascii() and seg.isdigit():
        i = int(seg)
        return value[i] if i < len(value) else MISSING
    return MISSING


def get(value: Any, segments: list[str]) -> Any:
    """The single value at a path without ``*`` (MISSING if absent)."""
    for seg in segments:
        value = _step(value, seg)
        if value is MISSING:
            return MISSING
    return value


def resolve(value: Any, segments: list[str]) -> Iterator[Any]:
    """Every value at a path; ``*`` fans out over list elements and object values."""
    yield from resolve_with_path(value, segments, ())


def resolve_with_path(
    value: Any, segments: list[str], prefix: tuple[str | int, ...]
) -> Iterator[Any]:
    """Like resolve(); yields values only (paths are recovered by ``resolve_paths``)."""
    for _, v in resolve_paths(value, segments, prefix):
        yield v


def resolve_paths(
    value: Any, segments: list[str], prefix: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every (concrete path, value) at a path, in document order."""
    if not segments:
        yield prefix, value
        return
    seg, rest = segments[0], segments[1:]
    if seg == STAR:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from resolve_paths(v, rest, (*prefix, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from resolve_paths(v, rest, (*prefix, i))
        return
    if isinstance(value, dict):
        if seg in value:
            yield from resolve_paths(value[seg], rest, (*prefix, seg))
    elif isinstance(value, list) and seg.isascii() and seg.isdigit():
        i = int(seg)
        if i < len(value):
            yield from resolve_paths(value[i], rest, (*prefix, i))


# ------------------------------------------------------------------------ templates


def parse_template(text: str) -> TemplateParts:
    """Split ``"rm {tool_input.command}!"`` into ``["rm ", ["tool_input","command"], "!"]``."""
    parts: TemplateParts = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            if i + 1 < n and text[i + 1] == "{":
                buf.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            if end < 0:
                raise TemplateSyntaxError(f"unclosed '{{' at offset {i} (write '{{{{' for a brace)")
            inner = text[i + 1 : end].strip()
            if not inner or "{" in inner:
                raise TemplateSyntaxError(f"empty or nested placeholder at offset {i}")
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(split_path(inner))
            i = end + 1
            continue
        if ch == "}":
            if i + 1 < n and text[i + 1] == "}":
                buf.append("}")
                i += 2
                continue
            raise TemplateSyntaxError(f"unmatched '}}' at offset {i} (write '}}}}' for a brace)")
        buf.append(ch)
        i += 1
    if buf:
        parts.append("".join(buf))
    return parts


def is_literal(parts: TemplateParts) -> bool:
    return all(isinstance(p, str) for p in parts)


def template_paths(parts: TemplateParts) -> list[list[str]]:
    return [p for p in parts if isinstance(p, list)]


def to_text(value: Any) -> str:
    """Strings as they are; everything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render(parts: TemplateParts, data: Any, mode: str = "message") -> Any:
    """Fill a template. A template that is exactly one placeholder keeps the value's type.

    ``mode``: "message" renders a missing value as ""; "condition" returns MISSING when a
    value is missing (the condition is then false); "strict" also returns MISSING for an
    empty string or null, so ``rm -rf /{params.dir}`` can never become ``rm -rf /``.
    """
    strict = mode == "strict"
    if len(parts) == 1 and isinstance(parts[0], list):
        value = get(data, parts[0])
        if value is MISSING:
            return "" if mode == "message" else MISSING
        if strict and (value is None or value == ""):
            return MISSING
        return value
    out: list[str] = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
            continue
        value = get(data, p)
        if value is MISSING:
            if mode != "message":
                return MISSING
            continue
        if strict and (value is None or value == ""):
            return MISSING
        out.append(to_text(value))
    return "".join(out)


def render_text(parts: TemplateParts, data: Any) -> str:
    """Render for messages: always a string, missing fields as ""."""
    value = render(parts, data)
    return value if isinstance(value, str) else to_text(value)
