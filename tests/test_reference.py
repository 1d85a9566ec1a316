"""The optimised runtime never changes an answer (issue 6).

``Runtime`` indexes rules by event and tool and pre-screens string tests with one RE2 set per
field (``screens`` / ``Candidates.reachable``): a decision touches only candidate rules.
These tests compare it with a plain reference evaluator written here from DESIGN §4/§8: a
naive loop over every rule of every scope in order, checking ``events`` / ``tools`` /
``tool_re`` and ``runtime.build(spec["when"])``, then the same scope, combine and default
semantics. Random policies (two scopes, many rules on the same field so that the prefilter
groups them, ``all``/``any``/``not``, ``ignore_case``, templated values) meet random inputs
(strings built from the rules' own fragments, non-ASCII text, numbers, booleans, null,
lists, objects, missing fields), and the generated benchmark sets meet their requests.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.compile import compile_documents
from warden.load import Document, Source
from warden.runtime import (
    MIN_GROUP,
    STRICTNESS,
    Candidates,
    Env,
    Runtime,
    build,
    regex,
    screens,
)

REPO = Path(__file__).resolve().parent.parent
NOW = 1_717_405_200.0  # 2024-06-03T09:00:00Z, a Monday
CHECK = settings(max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ------------------------------------------------------------------- the reference


def _event_tool(inp: dict[str, Any]) -> tuple[Any, Any]:
    event = inp["hook_event_name"] if inp.get("hook_event_name") is not None else inp.get("event")
    tool = inp["tool_name"] if inp.get("tool_name") is not None else inp.get("tool")
    return (event if isinstance(event, str) else None, tool if isinstance(tool, str) else None)


def _applies(spec: dict[str, Any], env: Env, event: Any, tool: Any) -> bool:
    if spec.get("events") and event not in spec["events"]:
        return False
    if spec.get("tools") and tool not in spec["tools"]:
        return False
    if spec.get("tool_re") and not (
            isinstance(tool, str) and regex(spec["tool_re"], full=True)(tool) is not None):
        return False
    if not spec.get("when"):
        return True
    pred = _BUILT.get(id(spec["when"]))
    if pred is None or pred[0] is not spec["when"]:
        pred = _BUILT[id(spec["when"])] = (spec["when"], build(spec["when"]))
    return pred[1](env, env.input)


_BUILT: dict[int, tuple[Any, Any]] = {}  # condition -> its predicate (built once, as is)


def _message(spec: dict[str, Any], inp: dict[str, Any]) -> str:
    from warden import paths

    return paths.render_text(spec["message"], inp)


def reference(plan: dict[str, Any], env: Env) -> dict[str, Any]:
    """Every rule of every scope, in order, one by one; then DESIGN §4 and §8."""
    inp = env.input
    event, tool = _event_tool(inp)
    agent = event not in ("file", "action")
    decided: list[tuple[str, list[dict[str, Any]]]] = []
    warns: list[str] = []
    for scope in plan["scopes"]:
        hard: list[dict[str, Any]] = []
        first_match = scope.get("combine", "first-match") != "deny-overrides"
        for spec in scope["rules"]:
            if spec["effect"] == "warn":  # pass 1: every warn rule
                if _applies(spec, env, event, tool):
                    warns.append(spec["name"])
            elif first_match and hard:  # pass 2: the first hard rule decides
                continue
            elif _applies(spec, env, event, tool):
                hard.append(spec)
        if hard:
            decision = max((h["effect"] for h in hard), key=STRICTNESS.__getitem__)
            decided.append((decision, hard))
        elif scope.get("default") is not None and agent:
            decided.append((scope["default"], []))
    if not decided:
        default = plan["settings"].get("default", "allow") if agent else "allow"
        return {"decision": default, "reason": f"no rule matched: default {default}",
                "matched": [], "warns": warns}
    final = max((d for d, _ in decided), key=STRICTNESS.__getitem__)
    matched = [h for d, hs in decided if d == final for h in hs]
    deciding = next((m for m in matched if m["effect"] == final), None)
    reason = (f"no rule matched: default {final}" if deciding is None
              else _message(deciding, inp))
    return {"decision": final, "reason": reason, "matched": [m["name"] for m in matched],
            "warns": warns}


def optimised(runtime: Runtime, env: Env) -> dict[str, Any]:
    r = runtime.evaluate(env)
    return {"decision": r.decision, "reason": r.reason, "matched": [m.name for m in r.matched],
            "warns": [w.name for w in r.warns]}


def outcome(fn: Any, *args: Any) -> Any:
    """The answer, or the kind of exception (both sides must fail the same way)."""
    try:
        return fn(*args)
    except Exception as exc:  # compared, not hidden
        return ("raised", type(exc).__name__)


def env_for(inp: dict[str, Any]) -> Env:
    return Env(input=inp, now=NOW, environ={"CI": "1"}, root=".")


# ------------------------------------------------------------------- strategies

FIELDS = ["tool_input.command", "tool_input.file_path", "prompt"]
OTHER_FIELDS = ["tool_input.n", "tool_input.items.*", "tool_input.meta.k", "tool_input.items.0"]
FRAGMENTS = ["rm", "-rf", " ", "/", "git", "push", "--force", "Foo", "foo", "FOO", "é", "ß",
             "SS", ".env", "a.b", "secrets", "x/y", "*", "(", "\\", "tok", "1", "ǅ", "k"]
REGEXES = ["rm", r"rm\s+-rf", "^git", "push$", "(?i)foo", "foo|bar", ".*", r"\.env$",
           r"^/?secrets?/", "é", "[a-f]+1", r"\btok\b", "(?:x|y)/", "ǅ"]
GLOBS = ["*.env", "**/secrets/*", "foo*", "**/*.py", "[a-f]*", "x/*", "*", "?oo", "/abs/**"]
SCALARS = [None, True, False, 0, 1, 3, -2, 2.5, "1", "true", "", "rm", "git push --force",
           ".env", "FOO"]



def _surrogates_ok() -> bool:
    """Lone surrogates (JSON "\ud800" escapes) are in the mix once the field matchers take
    them; until then a rule that meets one raises, and a rule the prefilter skips does not."""
    node = {"op": "field", "path": ["a"], "cmp": "matches", "regex": "x+y?"}
    try:
        build(node)(env_for({}), {"a": "\ud800x"})
    except UnicodeError:
        return False
    return True


texts = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=4).map("".join),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
    *([st.sampled_from(["\ud800rm", "foo\udcff"])] if _surrogates_ok() else []),
)
scalars = st.one_of(st.sampled_from(SCALARS), st.integers(-5, 5),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))
values = st.one_of(
    texts, texts, texts, scalars,
    st.lists(st.one_of(texts, scalars), max_size=3),
    st.dictionaries(st.sampled_from(["k", "rm", "foo", "*"]), st.one_of(texts, scalars),
                    max_size=3),
)
pattern_values = st.one_of(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=3)
                           .map("".join), st.sampled_from(["", "FOO", "ss", "É"]))


@st.composite
def leaves(draw: Any) -> dict[str, Any]:
    """One field test; on the string fields, mostly the operators the prefilter screens."""
    field = draw(st.sampled_from(FIELDS + OTHER_FIELDS))
    op = draw(st.sampled_from(["matches", "contains", "starts_with", "ends_with", "equals",
                               "glob", "matches", "contains", "in", "exists", "gt", "lte"]))
    cond: dict[str, Any] = {"field": field}
    if op == "matches":
        cond[op] = draw(st.sampled_from(REGEXES))
    elif op == "glob":
        cond[op] = draw(st.one_of(st.sampled_from(GLOBS),
                                  st.lists(st.sampled_from(GLOBS), min_size=1, max_size=2)))
    elif op in ("contains", "equals"):
        cond[op] = draw(st.one_of(pattern_values, pattern_values, st.sampled_from(SCALARS),
                                  st.just("{tool_name}"), st.just("x{tool_input.n}")))
    elif op in ("starts_with", "ends_with"):
        cond[op] = draw(st.one_of(pattern_values, st.just("{tool_name}")))
    elif op == "in":
        cond[op] = draw(st.lists(st.one_of(pattern_values, st.sampled_from(SCALARS)),
                                 max_size=3))
    elif op == "exists":
        cond[op] = draw(st.booleans())
    else:
        cond[op] = draw(st.sampled_from([0, 1, 2.5, -1]))
    if op not in ("exists", "gt", "lte") and draw(st.integers(0, 3)) == 0:
        cond["ignore_case"] = True
    return cond


CONDITIONS = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner)),
    max_leaves=4)
REGEX_VALUES = st.sampled_from(REGEXES)
GLOB_VALUES = st.sampled_from(GLOBS)


@st.composite
def screened_conditions(draw: Any) -> dict[str, Any]:
    """Conditions the prefilter screens: a string test alone, first (or later) in an
    ``all``, or an ``any`` of string tests (on one field or several)."""
    field = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(["matches", "contains", "starts_with", "ends_with", "equals",
                               "glob"]))
    value = draw(REGEX_VALUES if op == "matches" else
                 GLOB_VALUES if op == "glob" else pattern_values)
    leaf: dict[str, Any] = {"field": field, op: value}
    if op in ("matches", "glob") and draw(st.integers(0, 3)) == 0:
        leaf["ignore_case"] = True
    shape = draw(st.sampled_from(["leaf", "leaf", "all", "all-later", "any", "any-mixed"]))
    if shape == "all":
        return {"all": [leaf, *draw(st.lists(CONDITIONS, min_size=1, max_size=2))]}
    if shape == "all-later":
        return {"all": [*draw(st.lists(CONDITIONS, min_size=1, max_size=2)), leaf]}
    if shape == "any":
        return {"any": [leaf, *draw(st.lists(SCREENED_LEAVES, min_size=1, max_size=2))]}
    if shape == "any-mixed":
        return {"any": [leaf, draw(CONDITIONS)]}
    return leaf


@st.composite
def screened_leaves(draw: Any) -> dict[str, Any]:
    field = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(["matches", "contains", "starts_with", "glob"]))
    value = draw(REGEX_VALUES if op == "matches" else
                 GLOB_VALUES if op == "glob" else pattern_values)
    return {"field": field, op: value}


SCREENED_LEAVES = screened_leaves()
SCREENED = screened_conditions()


@st.composite
def rules(draw: Any, screened: bool = False) -> dict[str, Any]:
    rule: dict[str, Any] = {"effect": draw(st.sampled_from(["deny", "allow", "ask", "warn"]))}
    event = draw(st.sampled_from([None, None, "PreToolUse", ["PreToolUse", "PostToolUse"],
                                  "file"]))
    if event is not None:
        rule["event"] = event
    tool = draw(st.sampled_from([None, None, "Bash", ["Bash", "Read"],
                                 {"matches": "Write|Edit"}, {"matches": "B.*"}]))
    if tool is not None:
        rule["tool"] = tool
    if screened:
        rule["when"] = draw(SCREENED)
    elif draw(st.integers(0, 5)):
        rule["when"] = draw(CONDITIONS)
    if draw(st.booleans()):
        rule["message"] = "{tool_name}: {tool_input.command}"
    return rule


def rule_lists(max_size: int) -> Any:
    """At least MIN_GROUP screened rules (so RE2 sets are built), shuffled among others."""
    return st.tuples(
        st.lists(rules(screened=True), min_size=MIN_GROUP, max_size=max_size),
        st.lists(rules(), max_size=max_size // 2),
    ).flatmap(lambda t: st.permutations(t[0] + t[1]))


@st.composite
def inputs(draw: Any) -> dict[str, Any]:
    inp: dict[str, Any] = {}
    key = draw(st.sampled_from(["hook_event_name", "hook_event_name", "event"]))
    inp[key] = draw(st.sampled_from(["PreToolUse", "PostToolUse", "Stop", "file", "action", 7]))
    tool = draw(st.sampled_from(["Bash", "Bash", "Read", "Edit", "NotebookEdit", None, 5]))
    if tool is not None:
        inp[draw(st.sampled_from(["tool_name", "tool"]))] = tool
    tool_input: dict[str, Any] = {}
    for name in ("command", "file_path", "n", "items", "meta"):
        if draw(st.integers(0, 3)):
            if name == "meta":
                tool_input[name] = {"k": draw(values)}
            elif name == "items":
                tool_input[name] = draw(st.lists(values, max_size=3))
            else:
                tool_input[name] = draw(values)
    if draw(st.integers(0, 5)):
        inp["tool_input"] = tool_input
    elif draw(st.booleans()):
        inp["tool_input"] = draw(values)  # not an object at all
    if draw(st.booleans()):
        inp["prompt"] = draw(values)
    return inp


def compile_scopes(project: list[dict[str, Any]], user: list[dict[str, Any]] | None,
                   settings_: dict[str, Any], user_settings: dict[str, Any] | None
                   ) -> dict[str, Any]:
    docs = []
    for scope, rule_list, sets in (("project", project, settings_),
                                   ("user", user, user_settings)):
        if rule_list is None:
            continue
        data: dict[str, Any] = {"version": 1,
                                "policies": [{"name": f"{scope[0]}{i}", **r}
                                             for i, r in enumerate(rule_list)]}
        if sets:
            data["settings"] = sets
        name = f"{scope}.yaml"
        docs.append((Source(name, scope, name), Document(name, data)))
    plan, problems = compile_documents(docs, version="test")
    assert not [p for p in problems if p.severity == "error"], [str(p) for p in problems]
    return plan


scope_settings = st.fixed_dictionaries({}, optional={
    "combine": st.sampled_from(["first-match", "deny-overrides"]),
    "default": st.sampled_from(["allow", "ask", "deny"]),
})

# ----------------------------------------------------------------------- properties


@CHECK
@given(rule_lists(16), st.one_of(st.none(), rule_lists(8)), scope_settings,
       st.one_of(st.none(), scope_settings), st.lists(inputs(), min_size=1, max_size=4))
def test_optimised_runtime_agrees_with_the_reference(
        project: list[dict[str, Any]], user: list[dict[str, Any]] | None,
        settings_: dict[str, Any], user_settings: dict[str, Any] | None,
        batch: list[dict[str, Any]]) -> None:
    plan = compile_scopes(project, user, settings_, user_settings)
    runtime = Runtime(copy.deepcopy(plan))
    for inp in batch:  # one runtime for the batch: its candidate caches are reused
        want = outcome(reference, plan, env_for(copy.deepcopy(inp)))
        assert outcome(optimised, runtime, env_for(copy.deepcopy(inp))) == want, inp
        assert outcome(optimised, runtime, env_for(copy.deepcopy(inp))) == want, inp


@CHECK
@given(st.lists(st.tuples(st.sampled_from(["matches", "contains", "starts_with", "ends_with",
                                           "equals", "glob"]),
                          st.integers(0, 10**6), st.booleans()),
                min_size=MIN_GROUP, max_size=24),
       st.sampled_from(["first-match", "deny-overrides"]),
       st.one_of(values, st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join)))
def test_one_big_group_agrees_with_the_reference(
        tests_: list[tuple[str, int, bool]], combine: str, command: Any) -> None:
    """Every rule on the same field, every screened operator: one RE2 set decides which
    rules are even looked at; the field value may be any JSON value."""
    rule_list = []
    for i, (op, seed, warn) in enumerate(tests_):
        frag = FRAGMENTS[seed % len(FRAGMENTS)] + FRAGMENTS[(seed // 7) % len(FRAGMENTS)]
        value = {"matches": REGEXES[seed % len(REGEXES)],
                 "glob": GLOBS[seed % len(GLOBS)]}.get(op, frag)
        when: dict[str, Any] = {"field": "tool_input.command", op: value}
        if seed % 5 == 0:
            when = {"any": [when, {"field": "tool_input.command", "contains": frag[::-1]}]}
        elif seed % 5 == 1:
            when = {"all": [when, {"not": {"field": "tool_input.command", "contains": "x"}}]}
        rule_list.append({"tool": "Bash", "when": when,
                          "effect": "warn" if warn else ("deny", "ask", "allow")[i % 3]})
    plan = compile_scopes(rule_list, None, {"combine": combine}, None)
    runtime = Runtime(plan)
    inp = {"hook_event_name": "PreToolUse", "tool_name": "Bash",
           "tool_input": {"command": command}}
    want = outcome(reference, plan, env_for(inp))
    # first use: plain-text screens by string methods; then the group's whole RE2 set
    assert outcome(optimised, runtime, env_for(inp)) == want
    assert outcome(optimised, runtime, env_for(inp)) == want


# --------------------------------------------------------------------- unit checks


def test_screens_cover_the_shapes_the_prefilter_groups() -> None:
    leaf = {"op": "field", "path": ["a"], "cmp": "contains", "value": "x"}
    other = {"op": "field", "path": ["b"], "cmp": "matches", "regex": "y"}
    unscreenable = {"op": "field", "path": ["a"], "cmp": "gt", "value": 1}
    assert screens(leaf) == [(["a"], "x", True)]
    assert screens({"op": "all", "args": [unscreenable, leaf]}) == [(["a"], "x", False)]
    assert screens({"op": "any", "args": [leaf, other]}) == [(["a"], "x", True),
                                                               (["b"], "y", True)]
    assert screens({"op": "any", "args": [leaf, unscreenable]}) is None
    assert screens({"op": "not", "arg": leaf}) is None
    assert screens({**leaf, "ic": True}) is None  # casefold semantics: not an RE2 set's
    assert screens({**leaf, "value": 3}) is None


def test_a_set_that_does_not_run_keeps_every_rule() -> None:
    """RE2 answers a set that ran out of memory with no match at all (not even the
    sentinel): then every rule of the group is checked, never silently skipped."""
    rule_list = [{"tool": "Bash", "effect": "deny",
                  "when": {"field": "tool_input.command", "contains": f"t{i}"}}
                 for i in range(MIN_GROUP + 2)]
    plan = compile_scopes(rule_list, None, {}, None)
    runtime = Runtime(plan)
    inp = {"hook_event_name": "PreToolUse", "tool_name": "Bash",
           "tool_input": {"command": "run t3"}}
    cands: Candidates = runtime.scopes[0].candidates("PreToolUse", "Bash")
    assert cands.groups, "the rules should be grouped"

    class Broken:
        def Match(self, text: str) -> None:  # RE2 Set API
            return None

    for g in cands.groups:
        g.matcher = Broken()
    assert optimised(runtime, env_for(inp)) == reference(plan, env_for(inp))
    assert optimised(runtime, env_for(inp))["matched"] == ["p3"]


# --------------------------------------------------------- the benchmark's policy sets


def _gen() -> Any:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import gen
    finally:
        sys.path.remove(str(REPO / "bench"))
    return gen


def _plan_of(doc: dict[str, Any]) -> dict[str, Any]:
    source = Source("warden.yaml", "project", "warden.yaml")
    plan, problems = compile_documents([(source, Document("warden.yaml", doc))],
                                       version="test")
    assert not [p for p in problems if p.severity == "error"]
    return plan


@pytest.mark.parametrize("n", [300, 3000])
def test_generated_realistic_sets_agree_with_the_reference(n: int) -> None:
    gen = _gen()
    ps = gen.realistic(n)
    plan = _plan_of(ps.doc)
    runtime = Runtime(plan)
    reqs = gen.requests(ps, 400)
    decisions = set()
    for inp in reqs:
        want = reference(plan, env_for(inp))
        assert optimised(runtime, env_for(inp)) == want, inp
        decisions.add(want["decision"])
    assert decisions == {"allow", "deny", "ask"}


def test_a_set_larger_than_re2s_default_budget_agrees() -> None:
    """4,000 glob rules on one tool and one field: one RE2 set that RE2's default 8 MiB
    budget refuses (the runtime raises it), so no rule falls back to one-by-one checks."""
    gen = _gen()
    n = 4000
    rules_ = [{"name": f"g{i}", "event": "PreToolUse", "tool": "Read",
               "when": {"field": "tool_input.file_path", "glob": f"**/{gen.token(i)}/*.env"},
               "effect": "deny"} for i in range(n)]
    plan = _plan_of({"version": 1, "policies": rules_})
    runtime = Runtime(plan)
    cands = runtime.scopes[0].candidates("PreToolUse", "Read")
    assert len(cands.groups) == 1 and not cands.plain
    for k in range(120):
        i = (k * 7919) % (2 * n)
        path = f"/srv/{gen.token(i)}/{'prod.env' if k % 3 else 'x/prod.env'}"
        inp = {"hook_event_name": "PreToolUse", "tool_name": "Read",
               "tool_input": {"file_path": path}}
        assert optimised(runtime, env_for(inp)) == reference(plan, env_for(inp))
