"""Property tests of the runtime (hypothesis).

Random rule lists are compiled with the real compiler and evaluated with the real runtime,
and compared with a deliberately naive reference: every rule checked one by one, with no
index and no prefilter.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from warden.compile import compile_documents
from warden.load import Document, Source
from warden.runtime import STRICTNESS, Env, Runtime, build_rule, event_and_tool

NOW = 1_717_405_200.0  # 2024-06-03T09:00:00Z, a Monday
# HYPOTHESIS_MAX_EXAMPLES=5000 for a longer hunt; the default keeps the suite fast.
FAST = settings(max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# ------------------------------------------------------------------------ strategies

STRINGS = ["", "rm", "rm -rf /", "git push", "git push --force", "ls", "LS -la", "x.env",
           "a/b.env", "/abs/secrets/k.pem", "Bash", "é", "3", "true", "a.b", "*"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                    st.sampled_from([0.5, 2.0, -1.5]), st.sampled_from(STRINGS))
json_values = st.recursive(
    st.one_of(scalars, st.text(max_size=8), st.floats(allow_nan=False, allow_infinity=False),
              st.integers()),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(["a", "b", "c", "d", "*", "0"]),
                                  st.text(max_size=4)), children, max_size=4)),
    max_leaves=20)

FIELDS = ["cmd", "cmd", "cmd", "a", "c.d", "items.*", "items.0", "obj.*"]
REGEXES = ["rm", "^git", "push$", "(?i)ls", "a|b", ".*", r"\.env$", "rm\\s+-rf", "é"]
GLOBS = ["*.env", "**/b.env", "a/*", "**/secrets/**", "*"]


@st.composite
def field_conditions(draw: Any) -> dict[str, Any]:
    field = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(["equals", "in", "matches", "glob", "contains", "starts_with",
                               "ends_with", "exists", "gt", "gte", "lt", "lte"]))
    cond: dict[str, Any] = {"field": field}
    if op == "equals":
        cond[op] = draw(scalars)
    elif op == "in":
        cond[op] = draw(st.lists(scalars, max_size=3))
    elif op == "matches":
        cond[op] = draw(st.sampled_from(REGEXES))
    elif op == "glob":
        cond[op] = draw(st.one_of(st.sampled_from(GLOBS),
                                  st.lists(st.sampled_from(GLOBS), min_size=1, max_size=2)))
    elif op == "contains":
        cond[op] = draw(st.one_of(st.sampled_from(STRINGS), st.integers(-1, 3)))
    elif op in ("starts_with", "ends_with"):
        cond[op] = draw(st.sampled_from(STRINGS))
    elif op == "exists":
        cond[op] = draw(st.booleans())
    else:
        cond[op] = draw(st.one_of(st.integers(-2, 3), st.sampled_from([0.5, 2.5])))
    if op not in ("exists", "gt", "gte", "lt", "lte") and draw(st.booleans()):
        cond["ignore_case"] = True
    return cond


conditions = st.recursive(
    field_conditions(),
    lambda inner: st.one_of(
        st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner)),
    max_leaves=4)


@st.composite
def rules(draw: Any, effects: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"effect": draw(st.sampled_from(effects or
                                                           ["allow", "deny", "ask", "warn"]))}
    event = draw(st.sampled_from([None, None, "PreToolUse", ["PreToolUse", "PostToolUse"]]))
    if event is not None:
        rule["event"] = event
    tool = draw(st.sampled_from([None, None, "Bash", ["Bash", "Read"], {"matches": "Bash|Edit"}]))
    if tool is not None:
        rule["tool"] = tool
    if draw(st.integers(0, 5)):
        rule["when"] = draw(conditions)
    return rule


@st.composite
def cmd_rules(draw: Any) -> dict[str, Any]:
    """A rule whose condition starts with a string test of ``cmd`` (what the runtime's RE2-set
    prefilter screens): alone, in an ``all`` or in an ``any`` with more conditions."""
    rule = draw(rules())
    if draw(st.integers(0, 2)):
        rule.pop("event", None)
        rule.pop("tool", None)
    op = draw(st.sampled_from(["equals", "matches", "glob", "contains", "starts_with",
                               "ends_with"]))
    value = draw(st.sampled_from({"matches": REGEXES, "glob": GLOBS}.get(op, STRINGS)))
    first: dict[str, Any] = {"field": "cmd", op: value}
    if draw(st.booleans()):
        first["ignore_case"] = True
    shape = draw(st.sampled_from(["alone", "all", "any"]))
    if shape == "alone":
        rule["when"] = first
    elif shape == "all":
        rule["when"] = {"all": [first, *draw(st.lists(conditions, min_size=1, max_size=2))]}
    else:  # several screens for one rule, possibly on other fields
        rule["when"] = {"any": [first, *draw(st.lists(conditions, min_size=1, max_size=2))]}
    return rule


def rule_lists(min_size: int = 0, max_size: int = 10) -> Any:
    return st.lists(rules(), min_size=min_size, max_size=max_size)


@st.composite
def inputs(draw: Any) -> dict[str, Any]:
    inp: dict[str, Any] = {}
    if draw(st.booleans()):
        inp["hook_event_name"] = draw(st.sampled_from(["PreToolUse", "PostToolUse", "Stop"]))
    else:
        inp["event"] = draw(st.sampled_from(["file", "action", "PreToolUse", 7]))
    inp["tool_name"] = draw(st.sampled_from(["Bash", "Read", "Edit", "NotebookEdit", None]))
    for key in ("cmd", "a", "c", "items", "obj"):
        if draw(st.integers(0, 3)):
            if key == "c":
                inp[key] = {"d": draw(scalars)}
            elif key in ("items", "obj"):
                inp[key] = draw(st.one_of(st.lists(scalars, max_size=3),
                                          st.dictionaries(st.sampled_from("xyz"), scalars,
                                                          max_size=3), json_values))
            elif key == "cmd":
                inp[key] = draw(st.one_of(st.sampled_from(STRINGS), st.text(max_size=6),
                                          scalars))
            else:
                inp[key] = draw(scalars)
    return inp


# ----------------------------------------------------------------------- helpers


def compile_rules(rule_list: list[dict[str, Any]], combine: str = "first-match",
                  default: str | None = None) -> dict[str, Any]:
    settings_: dict[str, Any] = {"combine": combine}
    if default:
        settings_["default"] = default
    data = {"version": 1, "settings": settings_,
            "policies": [{"name": f"r{i}", **r} for i, r in enumerate(rule_list)]}
    doc = Document("gen.yaml", data)
    plan, problems = compile_documents([(Source("gen.yaml", "project", "gen.yaml"), doc)],
                                       version="test")
    assert not [p for p in problems if p.severity == "error"], [str(p) for p in problems]
    return plan


def env_for(inp: dict[str, Any]) -> Env:
    return Env(input=inp, now=NOW, environ={}, root=".")


def decide(plan: dict[str, Any], inp: dict[str, Any]) -> dict[str, Any]:
    result = Runtime(plan).evaluate(env_for(inp))
    return {"decision": result.decision, "reason": result.reason,
            "matched": [r.name for r in result.matched], "warns": [r.name for r in result.warns]}


def reference(plan: dict[str, Any], inp: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(applicable hard rules, applicable warn rules) of the one scope, rule by rule."""
    event, tool = event_and_tool(inp)
    env = env_for(inp)
    hard, warns = [], []
    for i, spec in enumerate(plan["scopes"][0]["rules"]):
        if spec.get("events") and event not in spec["events"]:
            continue
        if spec.get("tools") and tool not in spec["tools"]:
            continue
        if build_rule(i, spec).applies(env, tool):
            (warns if spec["effect"] == "warn" else hard).append(spec["name"])
    return hard, warns


def with_combine(plan: dict[str, Any], combine: str) -> dict[str, Any]:
    other = copy.deepcopy(plan)
    for scope in other["scopes"]:
        scope["combine"] = combine
    return other


# ---------------------------------------------------------------------- properties


@FAST
@given(rule_lists(), inputs())
def test_evaluation_is_deterministic(rule_list: list[dict[str, Any]],
                                     inp: dict[str, Any]) -> None:
    plan = compile_rules(rule_list)
    runtime = Runtime(plan)
    first = runtime.evaluate(env_for(copy.deepcopy(inp)))
    again = runtime.evaluate(env_for(copy.deepcopy(inp)))  # warm caches
    fresh = decide(compile_rules(rule_list), inp)              # a new runtime and plan
    for r in (again,):
        assert (r.decision, r.reason, [m.name for m in r.matched], [w.name for w in r.warns]) \
            == (first.decision, first.reason, [m.name for m in first.matched],
                [w.name for w in first.warns])
    assert fresh["decision"] == first.decision and fresh["matched"] == [
        m.name for m in first.matched]
    assert compile_rules(rule_list)["hash"] == plan["hash"]


@FAST
@given(rule_lists(), inputs())
def test_combining_algorithms_agree_when_at_most_one_hard_rule_applies(
        rule_list: list[dict[str, Any]], inp: dict[str, Any]) -> None:
    plan = compile_rules(rule_list)
    hard, _ = reference(plan, inp)
    assume(len(hard) <= 1)
    first = decide(with_combine(plan, "first-match"), inp)
    overrides = decide(with_combine(plan, "deny-overrides"), inp)
    assert first == overrides


@FAST
@given(st.lists(st.one_of(rules(), cmd_rules(), cmd_rules()), min_size=4, max_size=14),
       inputs(),
       st.sampled_from(["first-match", "deny-overrides"]),
       st.sampled_from([None, "allow", "ask", "deny"]))
def test_runtime_agrees_with_the_naive_reference(
        rule_list: list[dict[str, Any]], inp: dict[str, Any], combine: str,
        default: str | None) -> None:
    """The event/tool index and the RE2-set prefilter never change a decision."""
    plan = compile_rules(rule_list, combine, default)
    hard, warns = reference(plan, inp)
    got = decide(plan, inp)
    assert got["warns"] == warns
    effects = {r["name"]: r["effect"] for r in plan["scopes"][0]["rules"]}
    event, _ = event_and_tool(inp)
    if hard:
        if combine == "first-match":
            want, matched = effects[hard[0]], [hard[0]]
        else:
            want = max((effects[h] for h in hard), key=STRICTNESS.__getitem__)
            matched = hard
        assert (got["decision"], got["matched"]) == (want, matched)
    else:
        agent = event not in ("file", "action")
        assert got["decision"] == ((default or "allow") if agent else "allow")
        assert got["matched"] == []


@FAST
@given(st.lists(rules(), min_size=4, max_size=12).map(
    lambda rs: [{**r, "when": {"field": "cmd", "matches": rx}}
                for r, rx in zip(rs, REGEXES * 2, strict=False)]),
    st.sampled_from([*STRINGS, "sudo rm -rf /tmp", "git push", "LS"]))
def test_prefiltered_regex_groups_agree_with_the_reference(
        rule_list: list[dict[str, Any]], cmd: str) -> None:
    """Many rules on one string field: the prefilter path is taken."""
    plan = compile_rules(rule_list)
    inp = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "cmd": cmd}
    hard, warns = reference(plan, inp)
    got = decide(plan, inp)
    assert got["warns"] == warns
    assert got["matched"] == hard[:1]


@FAST
@given(rule_lists(max_size=8), json_values)
def test_evaluation_never_raises_on_random_json(rule_list: list[dict[str, Any]],
                                                 value: Any) -> None:
    plan = compile_rules(rule_list)
    runtime = Runtime(plan)
    for inp in ({"hook_event_name": "PreToolUse", "tool_name": "Bash", "cmd": value,
                 "items": value, "obj": value, "a": value, "c": value},
                value if isinstance(value, dict) else {"payload": value}):
        result = runtime.evaluate(env_for(inp))
        assert result.decision in ("allow", "deny", "ask")
        json.dumps({"reason": result.reason})  # always printable


@FAST
@given(json_values)
def test_engine_evaluate_never_raises_on_random_json(value: Any) -> None:
    from warden.engine import Engine

    plan = compile_rules([
        {"effect": "warn", "when": {"field": "obj.*", "contains": "a"}},
        {"effect": "deny", "when": {"any": [{"field": "cmd", "matches": "rm"},
                                            {"field": "items.*", "gt": 2}]},
         "message": "no {cmd} {items} {obj}"},
        {"effect": "ask", "when": {"not": {"field": "cmd", "glob": "*.env"}}},
    ])
    engine = Engine(plan)
    inp = {"cmd": value, "items": value, "obj": value}
    d = engine.evaluate(inp, side_effects=False, now=NOW)
    doc = d.to_dict()
    json.dumps(doc)
    assert doc["decision"] in ("allow", "deny", "ask")
