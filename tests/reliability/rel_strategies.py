"""Hypothesis strategies for random VALID policy documents and random inputs.

The shapes follow schema/warden.schema.json (definitions ``rule``, ``condition``,
``fileCondition``, ``envCondition``, ``timeCondition``, ``stateCondition``, ``count``,
``settings``, ``toolSelector``, ``eventSelector``): every generated document passes the
schema. Semantics are not always right on purpose (random regexes, globs and templates may
be rejected by the compiler): that is what "compile raises nothing but PolicyError" checks.

Field paths and string values come from small alphabets so that generated rules and
inputs actually meet (rules apply, RE2-set prefilter groups form, ``*`` paths fan out).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

EVENTS = ["PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "SessionStart", "file",
          "action"]
TOOLS = ["Bash", "Write", "Edit", "Read", "NotebookEdit", "mcp__x__y"]
FIELDS = ["tool_input.command", "tool_input.file_path", "s", "n", "items.*", "items.0",
          "obj.*.name", "tags.*", "a\\.b", "deep.x.y", "tool_name", "missing.field"]
TEMPLATE_PATHS = ["s", "n", "tool_input.command", "tool_input.file_path", "items.0",
                  "missing", "obj"]
ENV_NAMES = ["WARDEN_FUZZ_A", "WARDEN_FUZZ_B", "CI"]
TZS = ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SPECIAL = ["\x00", "\ud800", "\udcff", "\u202e", "é", "🦀", "\n", "\t", "²", "١", "{", "}",
           "\\", "/", "..", "*", "$(x)", ";", "'", '"']

# ------------------------------------------------------------------ scalars and JSON

small_text = st.text(alphabet="ab/.-_ rmxf*", max_size=8)
odd_text = st.one_of(
    small_text,
    st.text(max_size=12),
    st.lists(st.sampled_from([*SPECIAL, "a", "b", " "]), max_size=6).map("".join),
)
numbers = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_scalar = st.one_of(st.none(), st.booleans(), numbers, odd_text)
json_value = st.recursive(
    json_scalar,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(st.sampled_from(["name", "x", "y", "a", "b"]) | small_text, kids,
                        max_size=4)),
    max_leaves=12,
)


def _template() -> st.SearchStrategy[str]:
    piece = st.one_of(
        small_text,
        st.sampled_from(TEMPLATE_PATHS).map(lambda p: "{" + p + "}"),
        st.sampled_from(["{{", "}}", " "]),
    )
    return st.lists(piece, min_size=1, max_size=4).map("".join)


templated_text = st.one_of(small_text, _template())

# --------------------------------------------------------------------- regexes, globs

_RX_ATOMS = ["a", "b", ".", "r", "m", "-", "/", "\\s", "\\w", "\\d", "\\b", "[ab]", "[^/]",
             "(a|b)", "(?i)a", "x"]
_RX_SUFFIX = ["", "", "*", "+", "?", "{1,3}"]


@st.composite
def regexes(draw: st.DrawFn) -> str:
    """Mostly valid RE2 (anchors, classes, groups, repetition); sometimes random text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=6))
    parts = draw(st.lists(st.tuples(st.sampled_from(_RX_ATOMS), st.sampled_from(_RX_SUFFIX)),
                          min_size=1, max_size=4))
    body = "".join(a + s for a, s in parts)
    if draw(st.booleans()):
        body = "^" + body
    if draw(st.booleans()):
        body += "$"
    return body


_GLOB_PIECES = ["*", "**/", "?", "a", "b", ".", "/", "[ab]", "[!a]", "rm", "x", ".env",
                "/**", "[a-c]"]
globs = st.lists(st.sampled_from(_GLOB_PIECES), min_size=1, max_size=4).map("".join)

# ------------------------------------------------------------------------ conditions

FIELD_OPS = ["equals", "in", "matches", "glob", "contains", "starts_with", "ends_with",
             "exists", "gt", "gte", "lt", "lte"]


@st.composite
def field_condition(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(FIELD_OPS))
    value: Any
    if op in ("equals", "contains"):
        value = draw(st.one_of(json_value, templated_text))
    elif op == "in":
        value = draw(st.lists(st.one_of(json_scalar, templated_text), max_size=4))
    elif op == "matches":
        value = draw(regexes())
    elif op == "glob":
        value = draw(st.one_of(globs, st.lists(globs, min_size=1, max_size=3)))
    elif op in ("starts_with", "ends_with"):
        value = draw(templated_text)
    elif op == "exists":
        value = draw(st.booleans())
    else:
        value = draw(st.one_of(numbers, st.sampled_from(["{n}", "{s}", "{items.0}"])))
    cond: dict[str, Any] = {"field": draw(st.sampled_from(FIELDS)), op: value}
    if draw(st.integers(0, 3)) == 0:
        cond["ignore_case"] = draw(st.booleans())
    return cond


@st.composite
def env_condition(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": draw(st.sampled_from(ENV_NAMES))}
    kind = draw(st.sampled_from(["equals", "matches", "exists", None]))
    if kind == "equals":
        spec["equals"] = draw(small_text)
    elif kind == "matches":
        spec["matches"] = draw(regexes())
    elif kind == "exists":
        spec["exists"] = draw(st.booleans())
    return {"env": spec}


clock = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]:02d}:{t[1]:02d}")
durations = st.one_of(
    st.tuples(st.integers(0, 500), st.sampled_from(["ms", "s", "m", "h", "d", "w"])).map(
        lambda t: f"{t[0]}{t[1]}"),
    st.just("1h30m"),
)


@st.composite
def time_condition(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    keys = draw(st.lists(st.sampled_from(["days", "after", "before"]), min_size=1, max_size=3,
                         unique=True))
    if "days" in keys:
        spec["days"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    if "after" in keys:
        spec["after"] = draw(clock)
    if "before" in keys:
        spec["before"] = draw(clock)
    if draw(st.booleans()):
        spec["tz"] = draw(st.sampled_from(TZS))
    return {"time": spec}


@st.composite
def file_condition(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"path": draw(st.sampled_from(
        ["a.txt", "dir/b.env", "nope", "{tool_input.file_path}", "{s}", "../outside",
         "/etc/hostname", "dir"]))}
    kind = draw(st.sampled_from(["exists", "modified_within", "larger_than", None]))
    if kind == "exists":
        spec["exists"] = draw(st.booleans())
    elif kind == "modified_within":
        spec["modified_within"] = draw(durations)
    elif kind == "larger_than":
        spec["larger_than"] = draw(st.one_of(st.integers(0, 100), st.sampled_from(
            ["1B", "1KB", "2 KiB", "0.5MB"])))
    return {"file": spec}


def tool_selector() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(TOOLS),
        st.lists(st.sampled_from(TOOLS), min_size=1, max_size=3, unique=True),
        st.sampled_from(["Write|Edit", "mcp__.*", "B.*", "Note.*"]).map(lambda r: {"matches": r}),
    )


def event_selector() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(EVENTS),
                     st.lists(st.sampled_from(EVENTS), min_size=1, max_size=3, unique=True))


def state_condition(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if draw(st.booleans()):
            spec["event"] = draw(st.sampled_from(["PostToolUse", "UserPromptSubmit", "record"]))
        if draw(st.booleans()):
            spec["tool"] = draw(tool_selector())
        if draw(st.booleans()):
            spec["where"] = draw(inner)
        if draw(st.booleans()):
            spec["since"] = draw(inner)
        if draw(st.booleans()):
            spec["within"] = draw(durations)
        if draw(st.booleans()):
            ops = draw(st.lists(st.sampled_from(["equals", "gt", "gte", "lt", "lte"]),
                                min_size=1, max_size=2, unique=True))
            spec["count"] = {o: draw(st.integers(0, 4)) for o in ops}
        return {"state": spec}

    return build()


leaf_condition = st.one_of(
    field_condition(), field_condition(), field_condition(),
    env_condition(), time_condition(), file_condition(),
)

conditions = st.recursive(
    leaf_condition,
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(kids, min_size=1, max_size=3).map(lambda c: {"any": c}),
        kids.map(lambda c: {"not": c}),
        state_condition(kids),
    ),
    max_leaves=6,
)

# ----------------------------------------------------------------------- documents


@st.composite
def rule(draw: st.DrawFn, name: str) -> dict[str, Any]:
    r: dict[str, Any] = {"name": name,
                         "effect": draw(st.sampled_from(["allow", "deny", "ask", "warn"]))}
    if draw(st.booleans()):
        r["event"] = draw(event_selector())
    if draw(st.booleans()):
        r["tool"] = draw(tool_selector())
    if draw(st.integers(0, 4)) > 0:
        r["when"] = draw(conditions)
    if draw(st.booleans()):
        r["message"] = draw(templated_text)
    if draw(st.integers(0, 5)) == 0:
        r["description"] = draw(odd_text)
    return r


@st.composite
def settings(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, choices in (("mode", ["enforce", "observe"]), ("default", ["allow", "deny", "ask"]),
                         ("combine", ["first-match", "deny-overrides"]),
                         ("on_error", ["deny", "allow"])):
        if draw(st.booleans()):
            out[key] = draw(st.sampled_from(choices))
    return out


@st.composite
def policy_document(draw: st.DrawFn, prefix: str = "r", max_rules: int = 10) -> dict[str, Any]:
    n = draw(st.integers(0, max_rules))
    doc: dict[str, Any] = {"version": 1}
    if draw(st.booleans()):
        doc["settings"] = draw(settings())
    doc["policies"] = [draw(rule(f"{prefix}{i}")) for i in range(n)]
    return doc


@st.composite
def inputs(draw: st.DrawFn) -> dict[str, Any]:
    """A random hook-ish input: known keys (so rules can apply) plus random extras."""
    inp: dict[str, Any] = {}
    if draw(st.integers(0, 5)) > 0:
        inp["hook_event_name"] = draw(st.one_of(st.sampled_from(EVENTS), json_scalar))
    elif draw(st.booleans()):
        inp["event"] = draw(st.sampled_from(EVENTS))
    if draw(st.integers(0, 4)) > 0:
        inp["tool_name"] = draw(st.one_of(st.sampled_from(TOOLS), json_scalar))
    if draw(st.booleans()):
        inp["tool_input"] = draw(st.fixed_dictionaries(
            {}, optional={"command": st.one_of(odd_text, json_value),
                          "file_path": st.one_of(st.sampled_from(
                              ["a.txt", "dir/b.env", "/etc/passwd", "x/.env", ""]), odd_text)}))
    for key, strat in (("s", st.one_of(odd_text, json_value)), ("n", numbers | json_scalar),
                       ("items", st.lists(json_value, max_size=4) | json_value),
                       ("obj", st.dictionaries(small_text, st.fixed_dictionaries(
                           {}, optional={"name": json_scalar}), max_size=3)),
                       ("tags", st.lists(odd_text, max_size=4)),
                       ("a.b", json_scalar), ("deep", json_value),
                       ("session_id", st.just("s1"))):
        if draw(st.booleans()):
            inp[key] = draw(strat)
    extra = draw(st.dictionaries(odd_text, json_value, max_size=2))
    for k, v in extra.items():
        inp.setdefault(k, v)
    return inp
