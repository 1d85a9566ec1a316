"""Stage 5: build matchers from a plan once per process and evaluate inputs.

Pure: no state is written, no side effect runs here (``then:`` items are returned for the
caller to run). Conditions become closures the first time a rule is a candidate, so a cold
hook process with 10,000 rules only builds the few rules its event and tool can reach.
"""

from __future__ import annotations

import os
import time

from warden import paths
from warden._record import SlotRecord, dataclass
from warden.paths import MISSING

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from collections.abc import Set as AbstractSet
    from typing import Any, TypeAlias

STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}
NON_AGENT_EVENTS = frozenset({"file", "action"})


_UNSET: Any = object()


class Env(SlotRecord):
    """What one evaluation can see besides the input itself.

    A record (constructor, ``==`` and ``repr`` as a dataclass) with slots: one is made for
    every decision. ``events`` (recorded session events, for ``state:``) is called at most
    once, on first use; an engine can instead leave it None and set ``source``, the engine
    that reads the input's session from its state store when a ``state:`` condition asks.
    """

    __slots__ = (  # noqa: RUF023 - in field order (the constructor, repr)
        "input",
        "now",
        "environ",
        "root",
        "events",
        "notes",
        "_events_cache",
        "source",
    )

    input: dict[str, Any]
    now: float
    environ: Mapping[str, str]
    root: str
    events: Callable[[], list[Any]] | None
    notes: list[str]
    _events_cache: list[Any] | None
    source: Any

    def __init__(
        self,
        input: dict[str, Any],
        now: float,
        environ: Mapping[str, str] = _UNSET,
        root: str = ".",
        events: Callable[[], list[Any]] | None = None,
        notes: list[str] = _UNSET,
        _events_cache: list[Any] | None = None,
    ) -> None:
        self.input = input
        self.now = now
        self.environ = os.environ if environ is _UNSET else environ
        self.root = root
        self.events = events
        self.notes = [] if notes is _UNSET else notes
        self._events_cache = _events_cache
        self.source = None

    def session_events(self) -> list[Any]:
        if self._events_cache is None:
            if self.events is not None:
                self._events_cache = self.events()
            elif self.source is not None:
                self._events_cache = self.source.session_events_of(self.input)
            else:
                self._events_cache = []
        return self._events_cache


def new_env(
    inp: dict[str, Any], now: float, root: str, source: Any, _new: Any = object.__new__
) -> Env:
    """``Env(inp, now, os.environ, root)`` reading session events through ``source``,
    for the evaluation hot path."""
    env: Env = _new(Env)
    env.input = inp
    env.now = now
    env.environ = os.environ
    env.root = root
    env.events = None
    env.notes = []
    env._events_cache = None
    env.source = source
    return env


Pred: TypeAlias = "Callable[[Env, Any], bool]"


# ----------------------------------------------------------------------- regexes

_RE_CACHE: dict[tuple[str, bool, bool], Any] = {}


def regex(pattern: str, *, ignore_case: bool = False, full: bool = False) -> Any:
    """An RE2 matcher (linear time): ``.search`` semantics, or full match with ``full``.

    The matcher returns None for no match and something else for a match (callers test
    ``is not None``). A pattern that is a plain literal is a substring (or equality) test,
    an alternation of plain literals (``Write|Edit``) a membership test; any other runs as
    a one-pattern RE2 set, which answers yes/no without building a match object
    (google-re2's ``search`` converts byte offsets to characters on every hit)."""
    key = (pattern, ignore_case, full)
    rx = _RE_CACHE.get(key)
    if rx is None:
        if not ignore_case and _LITERAL.issuperset(pattern):
            rx = _equals_text(pattern) if full else _contains_text(pattern)
        elif not ignore_case and _LITERAL_OR_BAR.issuperset(pattern):  # Write|Edit
            words = pattern.split("|")
            rx = _one_of_texts(frozenset(words)) if full else _any_text(tuple(words))
        else:
            rx = _re2_matcher(pattern, ignore_case, full)
        _RE_CACHE[key] = rx
    return rx


# Characters that are themselves in RE2 syntax (outside a class, without the x flag).
_LITERAL = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _-/:=@,%~!#&;<>'\"`"
)


_LITERAL_OR_BAR = _LITERAL | {"|"}


def _one_of_texts(words: frozenset[str]) -> Callable[[str], Any]:
    return lambda text: True if text in words else None


def _any_text(words: tuple[str, ...]) -> Callable[[str], Any]:
    return lambda text: True if any(w in text for w in words) else None


def _contains_text(literal: str) -> Callable[[str], Any]:
    return lambda text: True if literal in text else None


def _equals_text(literal: str) -> Callable[[str], Any]:
    return lambda text: True if text == literal else None


def _re2_matcher(pattern: str, ignore_case: bool, full: bool) -> Callable[[str], Any]:
    """Compiled on first use: a rule built but never asked (an ``all`` decided by an
    earlier condition) costs a one-shot hook process no RE2 import or compile."""
    built: list[Callable[[str], Any]] = []

    def first(text: str) -> Any:
        if not built:
            built.append(_re2_compile(pattern, ignore_case, full))
        return built[0](text)

    return first


def _re2_compile(pattern: str, ignore_case: bool, full: bool) -> Callable[[str], Any]:
    import re2

    options = re2.Options()
    options.log_errors = False
    if ignore_case:
        options.case_sensitive = False
    src = f"(?:{pattern})\\z" if full else pattern
    fallback: list[Any] = []

    def compiled(text: str) -> Any:
        if not fallback:
            c = re2.compile(src, options)
            fallback.append(c.match if full else c.search)
        return fallback[0](text)

    try:
        one = re2.Set.MatchSet(options) if full else re2.Set.SearchSet(options)
        one.Add(src)
        one.Add("(?s:.*)")  # a sentinel that always matches: no answer means no run
        one.Compile()
    except Exception:  # a pattern RE2 refuses: the plain compile raises its own error
        compiled("")
        return compiled
    match = one.Match

    def test(text: str) -> Any:
        hits = match(text)
        if hits is None:  # the set could not run (out of memory): ask RE2 itself
            return compiled(text)
        return hits if 0 in hits else None

    return test


def utf8_text(v: str) -> str:
    """``v`` as RE2 can take it: undecodable bytes (surrogate escapes, as in
    ``os.environ``) become U+FFFD."""
    if v.isascii():
        return v
    return v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


# ------------------------------------------------------------------- comparisons


def json_equal(a: Any, b: Any) -> bool:
    """Equality with JSON types: ``true`` is not ``1``, ``"3"`` is not ``3``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _fold(v: Any) -> Any:
    return v.casefold() if isinstance(v, str) else v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _contains(v: Any, t: Any, ic: bool) -> bool:
    if isinstance(v, str):
        return isinstance(t, str) and (_fold(t) in _fold(v) if ic else t in v)
    if isinstance(v, list):
        if ic:
            return any(json_equal(_fold(e), _fold(t)) for e in v)
        return any(json_equal(e, t) for e in v)
    if isinstance(v, dict):
        if not isinstance(t, str):
            return False
        return any(_fold(k) == _fold(t) for k in v) if ic else t in v
    return False


def _compare(cmp: str, ic: bool) -> Callable[[Any, Any], bool]:
    if cmp == "equals":
        if ic:
            return lambda v, t: json_equal(_fold(v), _fold(t))
        return json_equal
    if cmp == "in":
        if ic:
            return lambda v, items: any(json_equal(_fold(v), _fold(x)) for x in items)
        return lambda v, items: any(json_equal(v, x) for x in items)
    if cmp == "contains":
        return lambda v, t: _contains(v, t, ic)
    if cmp == "starts_with":
        if ic:
            return lambda v, t: (
                isinstance(v, str) and isinstance(t, str) and _fold(v).startswith(_fold(t))
            )
        return lambda v, t: isinstance(v, str) and isinstance(t, str) and v.startswith(t)
    if cmp == "ends_with":
        if ic:
            return lambda v, t: (
                isinstance(v, str) and isinstance(t, str) and _fold(v).endswith(_fold(t))
            )
        return lambda v, t: isinstance(v, str) and isinstance(t, str) and v.endswith(t)
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    op = ops[cmp]
    return lambda v, t: _is_number(v) and _is_number(t) and op(v, t)


# -------------------------------------------------------------------- conditions


def build(node: dict[str, Any]) -> Pred:
    """A predicate ``(env, subject) -> bool`` for one plan condition.

    ``subject`` is the object field paths read (the input, or a recorded event inside a
    ``state: where``); templates always read ``env.input``.
    """
    op = node["op"]
    if op == "all":
        preds = [build(a) for a in node["args"]]
        return lambda env, subj: all(p(env, subj) for p in preds)
    if op == "any":
        preds = [build(a) for a in node["args"]]
        return lambda env, subj: any(p(env, subj) for p in preds)
    if op == "not":
        inner = build(node["arg"])
        return lambda env, subj: not inner(env, subj)
    if op == "field":
        return _build_field(node)
    builder = _LEAF_BUILDERS.get(op)
    if builder is None:
        return lambda env, subj: False
    return builder(node)


def _target(node: dict[str, Any]) -> Callable[[Env], Any]:
    """The comparison value: a literal, or a template filled from the input."""
    if "tpl" in node:
        parts = node["tpl"]
        return lambda env: paths.render(parts, env.input, "condition")
    value = node.get("value")
    return lambda env: value


def _lookup(value: Any, segments: list[str]) -> Any:
    """``paths.get`` with the common case, nested dicts, inline (it runs on every decision:
    per screened field and per field test)."""
    for i, seg in enumerate(segments):
        if type(value) is not dict:
            return paths.get(value, segments[i:])
        value = value.get(seg, MISSING)
        if value is MISSING:
            return MISSING
    return value


def _values(segments: list[str]) -> Callable[[Any], Iterable[Any]]:
    if paths.STAR in segments:
        return lambda subj: paths.resolve(subj, segments)

    def single(subj: Any) -> Iterable[Any]:
        v = paths.get(subj, segments)
        return () if v is MISSING else (v,)

    return single


def _build_field(node: dict[str, Any]) -> Pred:
    cmp = node["cmp"]
    ic = bool(node.get("ic"))
    segments: list[str] = node["path"]
    values = _values(segments)
    if cmp == "exists":
        return _build_exists(segments, bool(node.get("value")))
    if cmp in ("matches", "glob"):
        rx = regex(node["regex"], ignore_case=ic, full=cmp == "glob")
        if paths.STAR not in segments:

            def single(env: Env, subj: Any) -> bool:
                v = _lookup(subj, segments)
                return isinstance(v, str) and rx(v) is not None

            return single
        return lambda env, subj: any(isinstance(v, str) and rx(v) is not None for v in values(subj))
    compare = _compare(cmp, ic)
    if cmp == "in":
        getters = [_target(item) for item in node["items"]]

        def pred_in(env: Env, subj: Any) -> bool:
            items = [g(env) for g in getters]
            items = [x for x in items if x is not MISSING]
            return any(compare(v, items) for v in values(subj))

        return pred_in
    target = _target(node)
    if "tpl" not in node and paths.STAR not in segments:
        const = node.get("value")

        def fast(env: Env, subj: Any) -> bool:
            v = _lookup(subj, segments)
            return v is not MISSING and compare(v, const)

        return fast

    def pred(env: Env, subj: Any) -> bool:
        t = target(env)
        if t is MISSING:
            return False
        return any(compare(v, t) for v in values(subj))

    return pred


def _build_exists(segments: list[str], want: bool) -> Pred:
    """``exists``. With ``*`` (DESIGN §8) it holds if it holds for at least one element:
    ``jobs.*.timeout-minutes`` + ``exists: false`` is true when some job lacks the key, and
    false on an empty or missing collection."""
    if paths.STAR not in segments:
        return lambda env, subj: (paths.get(subj, segments) is not MISSING) == want
    last = len(segments) - 1 - segments[::-1].index(paths.STAR)
    prefix, tail = segments[: last + 1], segments[last + 1 :]

    def pred(env: Env, subj: Any) -> bool:
        return any((paths.get(e, tail) is not MISSING) == want for e in paths.resolve(subj, prefix))

    return pred


def _build_file(node: dict[str, Any]) -> Pred:
    parts = node["path"]

    def pred(env: Env, subj: Any) -> bool:
        p = paths.render(parts, env.input, "strict")
        if p is MISSING or not isinstance(p, str):
            return False
        full = os.path.join(env.root, os.path.expanduser(p))
        try:
            st = os.stat(full)
        except (OSError, ValueError):
            return node.get("exists") is False
        if "modified_within" in node:
            return bool(st.st_mtime >= env.now - node["modified_within"])
        if "larger_than" in node:
            return bool(st.st_size > node["larger_than"])
        return node.get("exists", True) is True

    return pred


def _build_env(node: dict[str, Any]) -> Pred:
    name = node["name"]
    if "equals_tpl" in node:
        parts = node["equals_tpl"]

        def templated(env: Env, subj: Any) -> bool:
            want = paths.render(parts, env.input, "condition")
            return want is not MISSING and env.environ.get(name) == paths.to_text(want)

        return templated
    if "equals" in node:
        want = node["equals"]
        return lambda env, subj: env.environ.get(name) == want
    if "matches" in node:
        rx = regex(node["matches"])
        return lambda env, subj: (
            (v := env.environ.get(name)) is not None and rx(utf8_text(v)) is not None
        )
    want_exists = node.get("exists", True)
    return lambda env, subj: (name in env.environ) == want_exists


def _build_time(node: dict[str, Any]) -> Pred:
    def pred(env: Env, subj: Any) -> bool:
        return clock_matches(node, env.now)

    return pred


def clock_matches(node: Mapping[str, Any], now: float) -> bool:
    """``days`` / ``after`` (inclusive) / ``before`` (exclusive) in ``tz``."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(now, ZoneInfo(node.get("tz") or "UTC"))
    if "days" in node and local.weekday() not in node["days"]:
        return False
    minute = local.hour * 60 + local.minute
    after: int | None = node.get("after")
    before: int | None = node.get("before")
    if after is not None and before is not None and after > before:  # overnight window
        return minute >= after or minute < before
    if after is not None and minute < after:
        return False
    return not (before is not None and minute >= before)


def _build_command(node: dict[str, Any]) -> Pred:
    argv_parts = node["run"]

    def pred(env: Env, subj: Any) -> bool:
        import subprocess

        argv = [paths.render(p, env.input, "strict") for p in argv_parts]
        if any(a is MISSING for a in argv):
            return False
        try:
            proc = subprocess.Popen(
                [paths.to_text(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=env.root,
                start_new_session=True,  # a timeout kills what it started, too
            )
            try:
                code = proc.wait(timeout=node["timeout"])
            except subprocess.TimeoutExpired:
                kill_group(proc)
                env.notes.append(f"command {argv[0]!r} timed out after {node['timeout']}s")
                return False
        except OSError as exc:
            env.notes.append(f"command {argv[0]!r} could not start: {exc.strerror}")
            return False
        except ValueError as exc:  # a NUL byte in an argument
            env.notes.append(f"command {argv[0]!r} could not start: {exc}")
            return False
        return bool(code == node["exit_code"])

    return pred


def kill_group(proc: Any) -> None:
    """SIGKILL a child started with ``start_new_session`` and everything it started."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()


def _count_ok(count: Mapping[str, int], n: int) -> bool:
    checks = {
        "equals": n.__eq__,
        "gt": n.__gt__,
        "gte": n.__ge__,
        "lt": n.__lt__,
        "lte": n.__le__,
    }
    return all(checks[k](v) for k, v in count.items() if k in checks)


def _build_state(node: dict[str, Any]) -> Pred:
    events = set(node["events"]) if node.get("events") else None
    tools = set(node["tools"]) if node.get("tools") else None
    tool_rx = regex(node["tool_re"], full=True) if node.get("tool_re") else None
    where = build(node["where"]) if node.get("where") else None
    since = build(node["since"]) if node.get("since") else None
    within = node.get("within")
    count = node.get("count") or {"gte": 1}

    def selected(env: Env, ev: Any) -> bool:
        if events is not None and ev.event not in events:
            return False
        if tools is not None and ev.tool not in tools:
            return False
        if tool_rx is not None and (not isinstance(ev.tool, str) or tool_rx(ev.tool) is None):
            return False
        return where is None or where(env, ev.data)

    def pred(env: Env, subj: Any) -> bool:
        recorded = env.session_events()
        start = 0
        if since is not None:
            for i in range(len(recorded) - 1, -1, -1):
                if since(env, recorded[i].data):
                    start = i + 1
                    break
        horizon = env.now - within if within is not None else None
        n = 0
        for ev in recorded[start:]:
            if horizon is not None and ev.ts < horizon:
                continue
            if selected(env, ev):
                n += 1
        return _count_ok(count, n)

    return pred


_LEAF_BUILDERS: dict[str, Callable[[dict[str, Any]], Pred]] = {
    "file": _build_file,
    "env": _build_env,
    "time": _build_time,
    "command": _build_command,
    "state": _build_state,
    "false": lambda node: lambda env, subj: False,
}


# ------------------------------------------------------------------------- rules


@dataclass
class Rule:
    """A plan rule with its matchers built."""

    index: int
    spec: dict[str, Any]
    name: str
    effect: str
    tool_rx: Callable[[str], Any] | None
    when: Pred | None

    def applies(self, env: Env, tool: Any) -> bool:
        if self.tool_rx is not None and (not isinstance(tool, str) or self.tool_rx(tool) is None):
            return False
        return self.when is None or self.when(env, env.input)


def build_rule(index: int, spec: dict[str, Any]) -> Rule:
    tool_rx = regex(spec["tool_re"], full=True) if spec.get("tool_re") else None
    when = build(spec["when"]) if spec.get("when") else None
    return Rule(index, spec, spec["name"], spec["effect"], tool_rx, when)


def _leaf_pattern(leaf: dict[str, Any]) -> str | None:
    """An RE2 pattern that matches a string exactly when this field test holds on it."""
    if leaf["op"] != "field" or paths.STAR in leaf["path"] or "tpl" in leaf:
        return None
    cmp, ic, value = leaf["cmp"], bool(leaf.get("ic")), leaf.get("value")
    if cmp == "matches":
        return ("(?i)" if ic else "") + str(leaf["regex"])
    if cmp == "glob":
        return ("(?i)" if ic else "") + "^(?:" + str(leaf["regex"]) + ")\\z"
    if ic or not isinstance(value, str):
        return None
    if cmp == "contains":
        return _re2_escape(value)
    if cmp == "starts_with":
        return "^" + _re2_escape(value)
    if cmp == "ends_with":
        return _re2_escape(value) + "\\z"
    if cmp == "equals":
        return "^" + _re2_escape(value) + "\\z"
    return None


Screen = tuple[list[str], str, bool]


def screens(node: dict[str, Any] | None) -> list[Screen] | None:
    """String tests an RE2 set can pre-screen a condition with: when ``node`` holds, one of
    these (field path, RE2 pattern, exact) matches the string at its path, or that path holds
    a value that is not a string. ``exact``: that match alone proves ``node`` true. A field
    test screens itself, ``all`` by one of its arguments, ``any`` by all of its arguments'
    screens together; None when there is no such screen."""
    if not node:
        return None
    op = node["op"]
    if op == "field":
        pattern = _leaf_pattern(node)
        return None if pattern is None else [(node["path"], pattern, True)]
    if op == "all":
        args = node["args"]
        for arg in args:
            found = screens(arg)
            if found is not None:
                return found if len(args) == 1 else [(p, pat, False) for p, pat, _ in found]
        return None
    if op == "any":
        out: list[Screen] = []
        for arg in node["args"]:
            found = screens(arg)
            if found is None:
                return None
            out.extend(found)
        return out or None
    return None


def prefilter_pattern(spec: dict[str, Any]) -> Screen | None:
    """The single (field path, RE2 pattern, exact) screen of a rule, if it has exactly one."""
    found = screens(spec.get("when"))
    return found[0] if found is not None and len(found) == 1 else None


def _re2_escape(text: str) -> str:
    """Backslash before every ASCII character that is not a letter, digit or underscore."""
    return text.translate(_RE2_ESCAPES)


_RE2_ESCAPES = {c: "\\" + chr(c) for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")}


class Group:
    """Screens reading one string field, matched together by one RE2 set: pattern ``k``
    screens rule ``numbers[k]``. The set is compiled on the group's second use: the first
    (all a one-shot hook process makes) tests the plain-literal screens (``literals``: kind
    and text, see ``literal_screen``) with string methods, skips the regexes whose required
    text (``needs``, see ``required_text``) is absent, and compiles only the rest."""

    __slots__ = (
        "exact",
        "literals",
        "matcher",
        "needs",
        "numbers",
        "patterns",
        "segments",
        "used",
    )

    def __init__(
        self,
        segments: list[str],
        patterns: list[str],
        numbers: list[int],
        exact: list[bool],
        literals: list[tuple[int, str] | None],
        needs: list[str | None],
    ) -> None:
        self.segments = segments
        self.patterns = patterns
        self.numbers = numbers  # pattern k screens rule numbers[k] (built when first picked)
        self.exact = exact
        self.literals = literals
        self.needs = needs  # text that every match of a (non-literal) pattern k contains
        self.matcher: Any = None
        self.used = False

    def match(self, text: str) -> list[int] | None:
        """Indexes of the patterns matching ``text``; None when RE2 could not answer (then
        every rule of the group must be checked)."""
        m = self.matcher
        if m is None:
            if not self.used:
                self.used = True
                return self._first(text)
            m = self.matcher = _build_set(self.patterns) or _NO_SET
        if m is _NO_SET:
            return None
        try:
            hits: list[int] | None = m.Match(text)
        except UnicodeEncodeError:  # lone surrogates: the rules decide for themselves
            return None
        if not hits:  # not even the sentinel: the set did not run
            return None
        sentinel = len(self.patterns)
        return [k for k in hits if k != sentinel]

    def _first(self, text: str) -> list[int] | None:
        hits = []
        rest = []
        for k, (lit, need) in enumerate(zip(self.literals, self.needs, strict=True)):
            if lit is not None:
                if _LIT_TESTS[lit[0]](text, lit[1]):
                    hits.append(k)
            elif need is None or need in text:
                rest.append(k)  # a regex that may match: RE2 decides
        if rest:
            matcher = _build_set([self.patterns[k] for k in rest])
            try:
                found = None if matcher is None else matcher.Match(text)
            except UnicodeEncodeError:
                found = None
            if not found:
                return None
            hits.extend(rest[j] for j in found if j != len(rest))
        return hits


_NO_SET = object()  # a set RE2 would not build: check the group's rules one by one
_LIT_TESTS: tuple[Callable[[str, str], bool], ...] = (
    str.__contains__,
    str.startswith,
    str.endswith,
    str.__eq__,
)


def literal_screen(pattern: str) -> tuple[int, str] | None:
    """A screen pattern that is plain text: (0 contains, 1 starts with, 2 ends with,
    3 equals; the text), else None. Reads what ``_leaf_pattern`` writes: an optional ``^``,
    text with ASCII punctuation backslash-escaped, an optional ``\\z``."""
    tokens = []
    i, n = 0, len(pattern)
    while i < n:
        step = 2 if pattern[i] == "\\" else 1
        tokens.append(pattern[i : i + step])
        i += step
    start = bool(tokens) and tokens[0] == "^"
    end = len(tokens) > start and tokens[-1] == "\\z"
    text = []
    for t in tokens[int(start) : len(tokens) - int(end)]:
        if len(t) == 1 and t in _LITERAL:
            text.append(t)
        elif len(t) == 2 and t[1].isascii() and not (t[1].isalnum() or t[1] == "_"):
            text.append(t[1])
        else:
            return None
    kind = 3 if start and end else 1 if start else 2 if end else 0
    return kind, "".join(text)


@dataclass
class Candidates:
    """The rules an (event, tool) pair can reach: always-check rules and screened groups."""

    plain: list[Rule]
    groups: list[Group]
    shared: bool = False  # some rule has several screens: de-duplicate what they pick
    rule: Callable[[int], Rule] | None = None  # the scope's (lazy) rule builder

    def reachable(self, inp: Any) -> tuple[list[Rule], AbstractSet[int]]:
        """Rules worth checking for this input, in order, and those already known true
        (read-only: without groups, the shared ``plain`` list and an empty set)."""
        if not self.groups:
            return self.plain, _NO_NUMBERS
        picked: list[Rule] = list(self.plain)
        known: set[int] = set()
        rule = self.rule
        assert rule is not None
        for g in self.groups:
            v = _lookup(inp, g.segments)
            if isinstance(v, str):
                hits = g.match(v)
                if hits is None:
                    picked.extend(rule(i) for i in g.numbers)
                    continue
                numbers, exact = g.numbers, g.exact
                for k in hits:
                    picked.append(rule(numbers[k]))
                    if exact[k]:
                        known.add(numbers[k])
            elif v is not MISSING:  # non-string: the rules decide for themselves
                picked.extend(rule(i) for i in g.numbers)
        if self.shared and len(picked) > 1:
            picked = list({r.index: r for r in picked}.values())
        if len(picked) > 1:
            picked.sort(key=_rule_index)
        return picked, known


def _rule_index(rule: Rule) -> int:
    return rule.index


MIN_GROUP = 4
SET_MAX_MEM = 64 << 20  # RE2's default (8 MiB) refuses sets of ~5,000 patterns


class Scope:
    """One scope's rules (project or user), built lazily, with the candidate index."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.combine: str = spec.get("combine", "first-match")
        self.default: str | None = spec.get("default")
        self.specs: Sequence[dict[str, Any]] = spec["rules"]  # a plan.LazyList from the cache
        self.screen_specs: Sequence[Any] | None = spec.get("screens")  # precomputed screens
        self.index: dict[str, Any] = spec["index"]
        self._rules: dict[int, Rule] = {}
        self._candidates: dict[tuple[Any, Any], Candidates] = {}

    def rule(self, i: int) -> Rule:
        r = self._rules.get(i)
        if r is None:
            r = self._rules[i] = build_rule(i, self.specs[i])
        return r

    def candidate_numbers(self, event: Any, tool: Any) -> list[int]:
        lists: list[list[int]] = []
        buckets = [self.index["any"]]
        if isinstance(event, str) and event in self.index["events"]:
            buckets.append(self.index["events"][event])
        for b in buckets:
            lists.append(b["any"])
            if isinstance(tool, str) and tool in b["tools"]:
                lists.append(b["tools"][tool])
        if len(lists) == 1:
            return lists[0]
        return sorted([i for numbers in lists for i in numbers])  # disjoint sorted runs

    def candidates(self, event: Any, tool: Any) -> Candidates:
        key = (event, tool)
        found = self._candidates.get(key)
        if found is None:
            found = self._build_candidates(self.candidate_numbers(event, tool))
            if len(self._candidates) < 4096:
                self._candidates[key] = found
        return found

    def _build_candidates(self, numbers: list[int]) -> Candidates:
        entries: dict[int, list[ScreenEntry]] = {}
        per_field: dict[tuple[str, ...], int] = {}
        pre = self.screen_specs
        many = getattr(pre, "many", None)  # a plan.LazyList: decode them in one go
        if many is not None:
            found_all = many(numbers)
        elif pre is not None:
            found_all = [pre[i] for i in numbers]
        else:
            found_all = [screen_entries(self.specs[i].get("when")) for i in numbers]
        for i, found in zip(numbers, found_all, strict=True):
            if found:
                entries[i] = found
                for e in found:
                    per_field[e[0]] = per_field.get(e[0], 0) + 1
        usable = {segs for segs, n in per_field.items() if n >= MIN_GROUP}
        # a rule is screened only when every one of its screens has a group
        screened = [
            i
            for i, found in entries.items()
            if (found[0][0] in usable if len(found) == 1 else all(e[0] in usable for e in found))
        ]
        by_field: dict[tuple[str, ...], list[tuple[int, ScreenEntry]]] = {}
        for i in screened:
            for e in entries[i]:
                by_field.setdefault(e[0], []).append((i, e))
        groups = [
            Group(
                list(segs),
                [e[1] for _, e in members],
                [i for i, _ in members],
                [e[2] for _, e in members],
                [e[3] for _, e in members],
                [e[4] for _, e in members],
            )
            for segs, members in by_field.items()
        ]
        done = set(screened)
        plain = [self.rule(i) for i in numbers if i not in done]
        return Candidates(plain, groups, any(len(entries[i]) > 1 for i in screened), self.rule)


def required_text(pattern: str) -> str | None:
    """Text that every match of the RE2 ``pattern`` contains (the longest such run found),
    or None when this small reader cannot be sure: a string without it cannot match, so a
    one-shot process need not compile the pattern. Conservative: only literal characters at
    the top level or in unquantified groups without ``|`` count; flags, ``\\Q``, Unicode
    classes, POSIX classes and anything unusual give None."""
    tokens = _regex_tokens(pattern)
    if tokens is None:
        return None
    runs, i = _required_runs(tokens, 0)
    if runs is None or i != len(tokens):
        return None
    return max(reversed(runs), key=len) if runs else None  # the longest; the last of ties


_PLAIN_ESCAPES = frozenset("bBdDsSwWAz")  # escapes that are not text (and not a literal)


def _regex_tokens(pattern: str) -> list[tuple[str, str]] | None:
    """(kind, text) tokens: lit, other, open, close, alt, quant; None: give up."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                return None
            e = pattern[i + 1]
            if e.isascii() and not (e.isalnum() or e == "_"):
                out.append(("lit", e))
            elif e in _PLAIN_ESCAPES:
                out.append(("other", e))
            else:
                return None  # \Q, \p, \x, \C, octal, \n...: not worth reading
            i += 2
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\":
                    j += 1
                elif pattern.startswith("[:", j):
                    return None
                j += 1
            if j >= n:
                return None
            out.append(("other", "["))
            i = j + 1
        elif c == "(":
            if pattern.startswith("(?:", i):
                i += 3
            elif pattern.startswith("(?", i):
                return None  # flags, named groups
            else:
                i += 1
            out.append(("open", "("))
        elif c == ")":
            out.append(("close", ")"))
            i += 1
        elif c == "|":
            out.append(("alt", "|"))
            i += 1
        elif c in "*+?":
            out.append(("quant", c))
            i += 1
        elif c == "{":
            j = i + 1
            while j < n and (pattern[j].isdigit() or pattern[j] == ","):
                j += 1
            if j >= n or pattern[j] != "}" or j == i + 1 or not pattern[i + 1].isdigit():
                return None  # a literal brace in RE2; rare enough to give up on
            out.append(("quant", "{"))
            i = j + 1
        elif c in _LITERAL:
            out.append(("lit", c))
            i += 1
        else:
            out.append(("other", c))  # . ^ $ and anything non-ASCII: not counted
            i += 1
    return out


def _required_runs(tokens: list[tuple[str, str]], i: int) -> tuple[list[str] | None, int]:
    """Runs of text every match contains, for the sequence starting at ``i`` (up to its
    closing parenthesis); None as runs when the sequence has a top-level ``|``."""
    runs: list[str] = []
    cur: list[str] = []
    alternation = False
    n = len(tokens)
    while i < n and tokens[i][0] != "close":
        kind, text = tokens[i]
        i += 1
        inner: list[str] | None = []
        if kind == "alt":
            alternation = True
            inner = None
        elif kind == "open":
            inner, i = _required_runs(tokens, i)
            if i >= n:
                return None, i  # unbalanced
            i += 1  # the ")"
        elif kind == "quant":
            return None, n  # a quantifier with nothing before it
        quantified = i < n and tokens[i][0] == "quant"
        while i < n and tokens[i][0] == "quant":
            i += 1  # x*, x+?, x{2,3}: x is not required as text
        if kind == "lit" and not quantified:
            cur.append(text)
            continue
        if cur:
            runs.append("".join(cur))
            cur = []
        if kind == "open" and inner and not quantified:
            runs.extend(inner)
    if cur:
        runs.append("".join(cur))
    return (None if alternation else runs), i


ScreenEntry = tuple[tuple[str, ...], str, bool, "tuple[int, str] | None", "str | None"]


def screen_entries(node: dict[str, Any] | None) -> list[ScreenEntry] | None:
    """``screens`` in the form groups use (precomputed in the plan cache by plan.py):
    (field path, RE2 pattern, exact, plain-text form of the pattern or None, text every
    match contains or None)."""
    found = screens(node)
    if not found:
        return None
    out: list[ScreenEntry] = []
    for p, pat, exact in found:
        lit = literal_screen(pat)
        out.append((tuple(p), pat, exact, lit, None if lit is not None else required_text(pat)))
    return out


def _build_set(patterns: list[str]) -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = SET_MAX_MEM
    try:
        matcher = re2.Set.SearchSet(options)
        for p in patterns:
            matcher.Add(p)
        matcher.Add("\\z")  # the sentinel: matches every string (see Group)
        matcher.Compile()
    except Exception:  # fall back to checking the rules one by one
        return None
    return matcher


_NO_NUMBERS: frozenset[int] = frozenset()


class Result(SlotRecord):
    """The pure outcome of evaluating one input (before side effects and formatting).

    A record (constructor, ``==`` and ``repr`` as a dataclass) with slots."""

    __slots__ = (  # noqa: RUF023 - in field order (the constructor, repr)
        "decision",
        "reason",
        "event",
        "tool",
        "matched",
        "warns",
        "default_used",
        "notes",
        "input",
    )

    decision: str
    reason: str
    event: Any
    tool: Any
    matched: list[Rule]
    warns: list[Rule]
    default_used: bool
    notes: list[str]
    input: dict[str, Any]

    def __init__(
        self,
        decision: str,
        reason: str,
        event: Any,
        tool: Any,
        matched: list[Rule],
        warns: list[Rule],
        default_used: bool,
        notes: list[str],
        input: dict[str, Any] = _UNSET,
    ) -> None:
        self.decision = decision
        self.reason = reason
        self.event = event
        self.tool = tool
        self.matched = matched
        self.warns = warns
        self.default_used = default_used
        self.notes = notes
        self.input = {} if input is _UNSET else input


def event_and_tool(inp: Mapping[str, Any]) -> tuple[Any, Any]:
    event = inp.get("hook_event_name")
    if event is None:
        event = inp.get("event")
    tool = inp.get("tool_name")
    if tool is None:
        tool = inp.get("tool")
    return (event if isinstance(event, str) else None, tool if isinstance(tool, str) else None)


# The reason of a decision no rule made, by default decision.
_DEFAULT_REASONS = {d: f"no rule matched: default {d}" for d in ("allow", "ask", "deny")}

# One rule as a lane checks it: (rule, is it a warn rule?, its tool regex, its condition
# as ``quick_test`` gives it).
Check = tuple[Rule, bool, "Callable[[str], Any] | None", "Pred | None"]
# What one evaluation needs per (event, tool), worked out once: whether the event is an
# agent event, and per scope (scope, first-match?, its candidates when some rules are
# screened by RE2 sets, else None and the checks of the rules to look at).
Lane = tuple[bool, tuple[tuple["Scope", bool, "Candidates | None", tuple[Check, ...]], ...]]
MAX_LANES = 4096  # event and tool names come from the input: keep the memory bounded

# (decision, reason, event, tool, matched, warns, default used): a Result without the
# notes and input.
Outcome = tuple[str, str, "str | None", "str | None", list[Rule], list[Rule], bool]


def quick_test(rule: Rule) -> Pred | None:
    """``rule.when``, or, for the commonest condition (one test of a string at a field path
    without ``*``: ``equals``, ``contains``, ``starts_with``, ``ends_with`` on a string
    literal, case-sensitive; ``matches``, ``glob``), a predicate that gives the same answer
    faster: it reads the path through plain dicts and tests a plain ``str`` itself, and hands
    every other case (lists on the way, a non-string value, subclasses) to ``rule.when``."""
    when = rule.when
    node = rule.spec.get("when")
    if when is None or not isinstance(node, dict) or node.get("op") != "field":
        return when
    cmp = node.get("cmp")
    segments = node.get("path")
    ic = bool(node.get("ic"))
    if (
        "tpl" in node
        or not isinstance(segments, list)
        or not segments
        or paths.STAR in segments
        or not all(type(s) is str for s in segments)
    ):
        return when
    check: Callable[[str], Any]
    if cmp in ("matches", "glob"):
        rx = regex(node["regex"], ignore_case=ic, full=cmp == "glob")

        def check(v: str) -> bool:
            return rx(v) is not None

    else:
        value = node.get("value")
        if ic or type(value) is not str:
            return when
        if cmp == "equals":
            check = value.__eq__
        elif cmp == "contains":

            def check(v: str) -> bool:
                return value in v

        elif cmp == "starts_with":

            def check(v: str) -> bool:
                return v.startswith(value)

        elif cmp == "ends_with":

            def check(v: str) -> bool:
                return v.endswith(value)

        else:
            return when
    return _quick_field(tuple(segments), check, when)


def _quick_field(segments: tuple[str, ...], check: Callable[[str], Any], when: Pred) -> Pred:
    if len(segments) == 2:
        first, second = segments

        def two(env: Env, subj: Any) -> bool:
            if type(subj) is dict:
                v = subj.get(first, MISSING)
                if type(v) is dict:
                    v = v.get(second, MISSING)
                    if type(v) is str:
                        return bool(check(v))
                if v is MISSING:
                    return False
            return when(env, subj)

        return two
    if len(segments) == 1:
        (only,) = segments

        def one(env: Env, subj: Any) -> bool:
            if type(subj) is dict:
                v = subj.get(only, MISSING)
                if type(v) is str:
                    return bool(check(v))
                if v is MISSING:
                    return False
            return when(env, subj)

        return one

    def many(env: Env, subj: Any) -> bool:
        v = subj
        for seg in segments:
            if type(v) is not dict:
                return when(env, subj)
            v = v.get(seg, MISSING)
            if v is MISSING:
                return False
        if type(v) is str:
            return bool(check(v))
        return when(env, subj)

    return many


def message(rule: Rule, inp: dict[str, Any]) -> str:
    """A rule's message rendered for this input (most messages have no placeholder)."""
    parts = rule.spec["message"]
    if len(parts) == 1 and type(parts[0]) is str:
        return str(parts[0])
    return paths.render_text(parts, inp)


def _strictness(effect: str) -> int:
    return STRICTNESS[effect]


def _first_strictness(decided: tuple[str, list[Rule]]) -> int:
    return STRICTNESS[decided[0]]


class Runtime:
    """Evaluates inputs against one plan. Build once per process, reuse for every input."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.hash: str = plan["hash"]
        self.settings: dict[str, Any] = plan["settings"]
        self.scopes = [Scope(s) for s in plan["scopes"]]

    def evaluate(self, env: Env) -> Result:
        inp = env.input
        o = self.outcome(env)
        return Result(o[0], o[1], o[2], o[3], o[4], o[5], o[6], env.notes, inp)

    def _lane(self, event: Any, tool: Any) -> Lane:
        per_scope = []
        for scope in self.scopes:
            candidates = scope.candidates(event, tool)
            grouped = candidates if candidates.groups else None
            checks: tuple[Check, ...] = ()
            if grouped is None:
                checks = tuple(
                    (r, r.effect == "warn", r.tool_rx, quick_test(r)) for r in candidates.plain
                )
            per_scope.append((scope, scope.combine != "deny-overrides", grouped, checks))
        lane: Lane = (event not in NON_AGENT_EVENTS, tuple(per_scope))
        lanes = self._lanes
        if lanes is None:
            lanes = self._lanes = {}
        if len(lanes) < MAX_LANES:
            lanes[(event, tool)] = lane
        return lane

    def outcome(self, env: Env) -> Outcome:
        """The decision for ``env.input`` (``evaluate`` without the ``Result``).

        DESIGN §4: per scope, pass 1 collects every applicable ``warn`` rule and pass 2 the
        hard decision (first-match: the first applicable hard rule; deny-overrides: the
        strictest of them; none: the scope's default). Across scopes the strictest decision
        wins; its rules are the ``matched`` list and the first of them whose effect is the
        decision gives the reason. Non-agent events (``file``, ``action``) take a scope's
        default only when one of its rules applied."""
        inp = env.input
        event = inp.get("hook_event_name")
        if event is None:
            event = inp.get("event")
        if type(event) is not str and not isinstance(event, str):
            event = None
        tool = inp.get("tool_name")
        if tool is None:
            tool = inp.get("tool")
        if type(tool) is not str and not isinstance(tool, str):
            tool = None
        lanes = self._lanes
        lane = None if lanes is None else lanes.get((event, tool))
        if lane is None:
            lane = self._lane(event, tool)
        agent_event, scopes = lane
        warns: list[Rule] = []
        decided: list[tuple[str, list[Rule]]] = []  # (decision, hard rules) per deciding scope
        for scope, first_match, grouped, checks in scopes:
            hard: list[Rule] = []
            if grouped is None:  # every rule of the bucket, in order
                for rule, warn, rx, when in checks:
                    if hard and first_match and not warn:
                        continue
                    if rx is not None and (tool is None or rx(tool) is None):
                        continue
                    if when is None or when(env, inp):
                        if warn:
                            warns.append(rule)
                        else:
                            hard.append(rule)
            else:  # the rules the RE2 sets picked, and those a set match proves true
                rules, known = grouped.reachable(inp)
                for rule in rules:
                    warn = rule.effect == "warn"
                    if hard and first_match and not warn:
                        continue
                    rx = rule.tool_rx
                    if rx is not None and (tool is None or rx(tool) is None):
                        continue
                    when = rule.when
                    if when is None or rule.index in known or when(env, inp):
                        if warn:
                            warns.append(rule)
                        else:
                            hard.append(rule)
            if hard:
                if first_match or len(hard) == 1:
                    decided.append((hard[0].effect, hard))
                else:
                    decided.append((max((r.effect for r in hard), key=_strictness), hard))
            elif agent_event and scope.default is not None:
                decided.append((scope.default, hard))
        if not decided:
            default = self.settings.get("default", "allow") if agent_event else "allow"
            reason = _DEFAULT_REASONS.get(default) or f"no rule matched: default {default}"
            return default, reason, event, tool, [], warns, True
        if len(decided) == 1:
            final, matched = decided[0]
        else:
            final = max(decided, key=_first_strictness)[0]
            matched = [rule for d, hard in decided if d == final for rule in hard]
        for m in matched:
            if m.effect == final:
                return final, message(m, inp), event, tool, matched, warns, False
        reason = _DEFAULT_REASONS.get(final) or f"no rule matched: default {final}"
        return final, reason, event, tool, matched, warns, True

    _lanes: dict[tuple[Any, Any], Lane] | None = None  # built by _lane

    # -------------------------------------------------------------- explain

    def explain(self, env: Env) -> list[dict[str, Any]]:
        """Every rule of every scope: whether it applied, and what decided that."""
        event, tool = event_and_tool(env.input)
        out = []
        for scope in self.scopes:
            for i in range(len(scope.specs)):
                rule = scope.rule(i)
                applied, detail = self._explain_rule(rule, env, event, tool)
                out.append(
                    {
                        "policy": rule.name,
                        "effect": rule.effect,
                        "scope": scope.name,
                        "source": rule.spec["source"],
                        "applied": applied,
                        "detail": detail,
                    }
                )
        return out

    def _explain_rule(self, rule: Rule, env: Env, event: Any, tool: Any) -> tuple[bool, str]:
        spec = rule.spec
        if spec.get("events") and event not in spec["events"]:
            return False, f"event {event!r} is not {_names_text(spec['events'])}"
        if spec.get("tools") and tool not in spec["tools"]:
            return False, f"tool {tool!r} is not {_names_text(spec['tools'])}"
        if rule.tool_rx is not None and (not isinstance(tool, str) or rule.tool_rx(tool) is None):
            return False, f"tool {tool!r} does not fully match {spec['tool_re']!r}"
        if spec.get("when") is None:
            return True, "no condition: applies to every matching event"
        ok, why = explain_condition(spec["when"], env, env.input)
        return ok, why


def _names_text(names: list[str]) -> str:
    return repr(names[0]) if len(names) == 1 else "one of " + ", ".join(map(repr, names))


def explain_condition(node: dict[str, Any], env: Env, subj: Any) -> tuple[bool, str]:
    """(result, the reason in words) for one condition tree."""
    op = node["op"]
    if op == "all":
        for child in node["args"]:
            ok, why = explain_condition(child, env, subj)
            if not ok:
                return False, why
        return True, f"all {len(node['args'])} conditions held ({node['at']})"
    if op == "any":
        reasons = []
        for child in node["args"]:
            ok, why = explain_condition(child, env, subj)
            if ok:
                return True, why
            reasons.append(why)
        return False, "none held: " + "; ".join(reasons)
    if op == "not":
        ok, why = explain_condition(node["arg"], env, subj)
        return (not ok), ("not: " + why)
    ok = build(node)(env, subj)
    return ok, f"{describe(node, subj, env)} -> {'true' if ok else 'false'} ({node['at']})"


def describe(node: dict[str, Any], subj: Any, env: Env | None = None) -> str:
    op = node["op"]
    if op == "field":
        values = list(paths.resolve(subj, node["path"]))
        shown = paths.to_text(values[0]) if len(values) == 1 else paths.to_text(values)
        if not values:
            shown = "<missing>"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        target = _target_text(node)
        if "tpl" in node and env is not None:
            value = paths.render(node["tpl"], env.input, "condition")
            target += " (<missing>)" if value is paths.MISSING else f" ({paths.to_text(value)})"
        return f"field {node['field']} ({shown}) {node['cmp']} {target}"
    return f"{op} condition"


def _target_text(node: dict[str, Any]) -> str:
    """The comparison value as the policy wrote it: a regex, globs, a literal or a template."""
    cmp = node["cmp"]
    if cmp == "matches":
        return str(node.get("regex"))
    if cmp == "glob":
        return paths.to_text(node["glob"][0] if len(node["glob"]) == 1 else node["glob"])
    if cmp == "in":
        return "[" + ", ".join(_value_text(item) for item in node.get("items", [])) + "]"
    return _value_text(node)


def _value_text(node: dict[str, Any]) -> str:
    if "tpl" not in node:
        return paths.to_text(node.get("value"))
    return "".join(
        p.replace("{", "{{").replace("}", "}}")
        if isinstance(p, str)
        else "{" + paths.join_path(p) + "}"
        for p in node["tpl"]
    )


def witness(node: dict[str, Any] | None, env: Env, subj: Any) -> tuple[str | int, ...] | None:
    """The concrete path of the first field value that made ``node`` true (for locations)."""
    if node is None:
        return None
    op = node["op"]
    if op == "all":
        for child in node["args"]:
            w = witness(child, env, subj)
            if w is not None:
                return w
        return None
    if op == "any":
        for child in node["args"]:
            if build(child)(env, subj):
                return witness(child, env, subj)
        return None
    if op != "field" or (node["cmp"] == "exists" and not node.get("value")):
        return None
    single = dict(node)
    for concrete, value in paths.resolve_paths(subj, node["path"]):
        probe = {**single, "path": [str(p) for p in concrete]}
        if build(probe)(env, {**_wrap(concrete, value)}):
            return concrete
    return None


def _wrap(concrete: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    # Build a minimal object holding ``value`` at ``concrete`` so the single-value
    # predicate can be re-run on it.
    obj: Any = value
    for seg in reversed(concrete):
        obj = {str(seg): obj}
    return obj if isinstance(obj, dict) else {"": obj}


def now_env(inp: dict[str, Any], **kw: Any) -> Env:
    from warden.durations import now

    return Env(input=inp, now=kw.pop("now", None) or now(), **kw)


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
