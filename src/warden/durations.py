"""Durations (``5s``, ``1h30m``), clock times (``09:00``), sizes (``10MB``) and the clock."""

from __future__ import annotations

import os
import time

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# Patterns as strings: compiled (and cached by re) on first use, not at import.
_DURATION = r"^(?:[0-9]+(?:ms|s|m|h|d|w))+$"
_PART = r"([0-9]+)(ms|s|m|h|d|w)"
_CLOCK = r"^([01][0-9]|2[0-3]):([0-5][0-9])$"
_SIZE = r"(?i)^\s*([0-9]+(?:\.[0-9]+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$"
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration: ``"90s"``, ``"1h30m"``, ``"7d"``; a bare number is seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"negative duration: {text!r}")
        return float(text)
    import re  # not at import time: `re` is not on the hook hot path

    s = text.strip()
    if not re.match(_DURATION, s):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 1h30m, 7d)")
    try:
        return sum(int(n) * _UNITS[u] for n, u in re.findall(_PART, s))
    except OverflowError:
        raise ValueError(f"duration too large: {text[:40]!r}") from None


def parse_clock(text: str) -> int:
    """Minutes after midnight in ``"HH:MM"`` (24-hour)."""
    import re

    m = re.match(_CLOCK, text)
    if not m:
        raise ValueError(f"not a time of day: {text!r} (use HH:MM, 24-hour)")
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_size(value: str | int) -> int:
    """Bytes in ``1024``, ``"10MB"``, ``"1.5 GiB"``."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    import re

    m = re.match(_SIZE, value)
    if not m:
        raise ValueError(f"not a size: {value!r} (use e.g. 1024, 10KB, 5MiB)")
    try:
        return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    except OverflowError:
        raise ValueError(f"size too large: {value[:40]!r}") from None


def check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


def parse_instant(text: str) -> float:
    """Unix seconds of an ISO 8601 time; without an offset it is UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    from datetime import UTC, datetime

    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# ``os.environ.get("WARDEN_NOW")`` on every decision, without its cost when the variable is
# unset (the usual case: ``os.environ.get`` raises and catches a KeyError). On POSIX
# ``os.environ`` keeps its bytes in ``_data``; elsewhere, or once ``os.environ`` has been
# replaced, the plain ``get``.
_ENVIRON = os.environ
_ENVIRON_DATA = getattr(_ENVIRON, "_data", None)
_NOW_KEY: object = None
if isinstance(_ENVIRON_DATA, dict) and callable(getattr(_ENVIRON, "encodekey", None)):
    _NOW_KEY = _ENVIRON.encodekey("WARDEN_NOW")
else:
    _ENVIRON_DATA = None


def now() -> float:
    """The current time in unix seconds; ``$WARDEN_NOW`` (ISO 8601) fixes it for tests."""
    if _ENVIRON_DATA is not None and os.environ is _ENVIRON and _NOW_KEY not in _ENVIRON_DATA:
        return time.time()
    fixed = os.environ.get("WARDEN_NOW")
    if fixed:
        try:
            return parse_instant(fixed)
        except ValueError:
            from warden.errors import UsageError

            raise UsageError(f"WARDEN_NOW={fixed!r} is not an ISO 8601 time") from None
    return time.time()
