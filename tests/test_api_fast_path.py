"""The in-process API's fast path (issue 6): ``Engine.evaluate`` without ``now`` / ``environ``
/ ``events`` takes shortcuts (a cheap input screen, per-(event, tool) lanes, quick field
tests, slotted records). Every shortcut must give exactly what the general path gives."""

from __future__ import annotations

import copy
import json
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_properties import FAST, NOW, compile_rules, inputs, json_values, rule_lists
from warden import durations
from warden.decision import Decision, new_decision
from warden.engine import MAX_INPUT_DEPTH, Engine, _bad_text, _clean, check_input
from warden.errors import InputError, UsageError
from warden.runtime import Env, Result, Runtime, build_rule, quick_test

ROOT = Path(tempfile.mkdtemp(prefix="warden-fast-path-"))  # no state store: mode from settings


def doc(decision: Decision) -> dict[str, Any]:
    out = decision.to_dict()
    out.pop("duration_ms")
    return out


def fast_and_general(plan: dict[str, Any], inp: dict[str, Any]) -> tuple[Decision, Decision]:
    fast = Engine(plan, ROOT).evaluate(copy.deepcopy(inp), side_effects=False)
    general = Engine(plan, ROOT).evaluate(
        copy.deepcopy(inp),
        side_effects=False,
        now=time.time(),
        environ=dict(os.environ),
        events=lambda: [],
    )
    return fast, general


# ----------------------------------------------------------- fast path == general path


@FAST
@given(rule_lists(max_size=8), inputs(), st.sampled_from(["first-match", "deny-overrides"]))
def test_fast_path_gives_the_general_paths_decision(
    rule_list: list[dict[str, Any]], inp: dict[str, Any], combine: str
) -> None:
    plan = compile_rules(rule_list, combine)
    fast, general = fast_and_general(plan, inp)
    assert doc(fast) == doc(general)
    fast.duration_ms = general.duration_ms
    assert fast == general
    assert fast.exit_code == general.exit_code


@FAST
@given(rule_lists(min_size=1, max_size=6), st.lists(inputs(), min_size=2, max_size=6))
def test_one_engine_many_inputs_matches_fresh_engines(
    rule_list: list[dict[str, Any]], inps: list[dict[str, Any]]
) -> None:
    """Lanes are cached per (event, tool): a long-lived engine answers every input as a
    fresh one does."""
    plan = compile_rules(rule_list)
    engine = Engine(plan, ROOT)
    for inp in inps:
        warm = engine.evaluate(copy.deepcopy(inp), side_effects=False)
        cold = Engine(plan, ROOT).evaluate(copy.deepcopy(inp), side_effects=False)
        assert doc(warm) == doc(cold)


def test_lanes_stay_bounded_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    from warden import runtime

    monkeypatch.setattr(runtime, "MAX_LANES", 3)
    plan = compile_rules([
        {"effect": "deny", "tool": "Bash", "when": {"field": "cmd", "contains": "rm"}},
        {"effect": "warn", "when": {"field": "cmd", "starts_with": "git"}},
    ])
    engine = Engine(plan, ROOT)
    for i in range(20):
        tool = "Bash" if i % 2 else f"T{i}"
        d = engine.evaluate({"hook_event_name": "PreToolUse", "tool_name": tool,
                             "cmd": "git rm x"}, side_effects=False)
        assert d.decision == ("deny" if tool == "Bash" else "allow")
        assert [f["policy"] for f in d.feedback] == ["r1"]
    lanes = engine.runtime._lanes
    assert lanes is not None and len(lanes) <= 3


def test_runtime_evaluate_still_returns_a_result() -> None:
    plan = compile_rules([{"effect": "deny", "when": {"field": "cmd", "equals": "x"},
                           "message": "no {cmd}"}])
    env = Env(input={"cmd": "x"}, now=NOW, environ={})
    result = Runtime(plan).evaluate(env)
    assert isinstance(result, Result)
    assert (result.decision, result.reason, result.default_used) == ("deny", "no x", False)
    assert [r.name for r in result.matched] == ["r0"]
    assert result.input is env.input and result.notes is env.notes
    assert result == Result("deny", "no x", None, None, result.matched, [], False, [],
                            {"cmd": "x"})


# --------------------------------------------------------------------- quick field tests

PATHS = ["cmd", "c.d", "x.y.z"]
STRS = ["", "rm", "rm -rf /", "git push", "RM", "é", "a.env", "x/a.env", "\ufffd"]


class Text(str):
    """A str subclass: the quick tests hand it to the general predicate."""


def _place(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for seg in reversed(path.split(".")):
        out = {seg: out}
    return dict(out)


values = st.one_of(
    st.sampled_from(STRS),
    st.sampled_from(STRS).map(Text),
    json_values,
    st.lists(st.sampled_from(STRS), max_size=3),
)


def _quick_case(path: str, cmp: str, literal: str, ic: bool) -> tuple[Any, Any]:
    if cmp == "matches":
        literal = {"": "^$", "é": "é+"}.get(literal, literal.replace(".", "\\."))
    elif cmp == "glob":
        literal = literal.replace("\ufffd", "x") or "*"
    cond: dict[str, Any] = {"field": path, cmp: literal}
    if ic:
        cond["ignore_case"] = True
    plan = compile_rules([{"effect": "deny", "when": cond}])
    rule = build_rule(0, plan["scopes"][0]["rules"][0])
    test = quick_test(rule)
    assert test is not None and rule.when is not None
    return test, rule.when


def _subjects(path: str, value: Any) -> list[Any]:
    return [
        _place(path, value),
        {"cmd": value, "c": value, "x": value},
        {"c": [value], "x": {"y": value}, "cmd": value},  # a list or scalar on the way
        {"c": {"d": [value]}, "x": {"y": {"z": {"w": value}}}},
        {},
    ]


CMPS = ["equals", "contains", "starts_with", "ends_with", "matches", "glob"]


@pytest.mark.parametrize("cmp", CMPS)
def test_quick_test_agrees_with_the_rule_condition_on_strings(cmp: str) -> None:
    strings = [*STRS, *map(Text, STRS), None, 3, True, ["rm"], {"rm": 1}]
    for path in PATHS:
        for literal in STRS:
            for ic in (False, True):
                test, when = _quick_case(path, cmp, literal, ic)
                for value in strings:
                    for subj in _subjects(path, value):
                        env = Env(input=subj, now=NOW, environ={})
                        assert test(env, subj) == when(env, subj), (path, literal, ic, subj)


@FAST
@given(
    st.sampled_from(PATHS),
    st.sampled_from(CMPS),
    st.sampled_from(STRS),
    st.booleans(),
    values,
)
def test_quick_test_agrees_with_the_rule_condition(
    path: str, cmp: str, literal: str, ic: bool, value: Any
) -> None:
    test, when = _quick_case(path, cmp, literal, ic)
    for subj in _subjects(path, value):
        env = Env(input=subj, now=NOW, environ={})
        assert test(env, subj) == when(env, subj)


def test_quick_test_leaves_other_conditions_alone() -> None:
    plan = compile_rules([
        {"effect": "deny"},
        {"effect": "deny", "when": {"field": "items.*", "equals": "a"}},
        {"effect": "deny", "when": {"field": "cmd", "equals": "{a}"}},
        {"effect": "deny", "when": {"field": "cmd", "equals": 3}},
        {"effect": "deny", "when": {"field": "cmd", "equals": "a", "ignore_case": True}},
        {"effect": "deny", "when": {"field": "cmd", "in": ["a"]}},
        {"effect": "deny", "when": {"all": [{"field": "cmd", "equals": "a"}]}},
    ])
    for i, spec in enumerate(plan["scopes"][0]["rules"]):
        rule = build_rule(i, spec)
        assert quick_test(rule) is rule.when


# ----------------------------------------------------------------------- input checks


def reference_check(data: Any) -> Any:
    """``check_input`` as it was before the fast screen: one full walk."""
    if not isinstance(data, dict):
        raise InputError("input must be a JSON object")
    unencodable = False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_INPUT_DEPTH:
            raise InputError("too deep")
        if isinstance(value, dict):
            if any(_bad_text(k) for k in value):
                unencodable = True
            children = list(value.values())
        else:
            children = list(value)
        for v in children:
            if isinstance(v, str) and _bad_text(v):
                unencodable = True
            elif isinstance(v, (dict, list)):
                stack.append((v, depth + 1))
    return _clean(data) if unencodable else data


odd_text = st.sampled_from(["a", "é", "\ud800", "x\udfffy", "\U0001f600", "", "k"])
odd_json = st.recursive(
    st.one_of(st.none(), st.integers(), odd_text, odd_text.map(Text)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(odd_text, children, max_size=3),
    ),
    max_leaves=12,
)


@FAST
@given(st.dictionaries(odd_text, odd_json, max_size=4))
def test_check_input_agrees_with_the_full_walk(data: dict[str, Any]) -> None:
    want = reference_check(data)
    got = check_input(data)
    assert got == want
    assert (got is data) == (want is data)
    json.dumps(got, ensure_ascii=False).encode("utf-8")  # printable as UTF-8


def _nested(depth: int, container: str) -> dict[str, Any]:
    """An input ``depth`` containers deep (the input object itself is level 1)."""
    inner: Any = "leaf"
    for _ in range(depth - 1):
        inner = {"k": inner} if container == "dict" else [inner]
    return {"hook_event_name": "PreToolUse", "tool_name": "Bash", "deep": inner}


@pytest.mark.parametrize("container", ["dict", "list"])
def test_depth_limit_through_the_api(container: str) -> None:
    engine = Engine(compile_rules([{"effect": "deny", "when": {"field": "cmd", "equals": "x"}}]),
                    ROOT)
    for depth in (2, 15, 16, 17, 18, MAX_INPUT_DEPTH):
        assert engine.evaluate(_nested(depth, container), side_effects=False).decision == "allow"
    with pytest.raises(InputError, match="deeper than 256"):
        engine.evaluate(_nested(MAX_INPUT_DEPTH + 1, container), side_effects=False)
    with pytest.raises(InputError, match="deeper than 256"):
        engine.evaluate(_nested(MAX_INPUT_DEPTH + 1, container), side_effects=False, now=NOW)


def test_input_must_be_an_object() -> None:
    engine = Engine(compile_rules([]), ROOT)
    for bad in ([], "x", None, 3):
        with pytest.raises(InputError, match="JSON object"):
            engine.evaluate(bad, side_effects=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("inp", [
    {"cmd": "rm \ud800"},
    {"cmd": "rm \ud800", "other": {"deep": ["\udfff"]}},
    {"cmd": "rm \ud800", "\udc80key": 1},
    {"tool_input": {"x": "é"}, "cmd": "rm \ud800"},
])
def test_lone_surrogates_are_evaluated_as_replacement_characters(inp: dict[str, Any]) -> None:
    plan = compile_rules([
        {"effect": "warn", "when": {"field": "cmd", "matches": "\ufffd$"}, "message": "w {cmd}"},
        {"effect": "deny", "when": {"field": "cmd", "contains": "\ufffd"}, "message": "no {cmd}"},
    ])
    fast, general = fast_and_general(plan, inp)
    cleaned = _clean("rm \ud800")  # each byte of the surrogate's UTF-8 form becomes U+FFFD
    assert cleaned == "rm \ufffd\ufffd\ufffd"
    assert fast.decision == "deny"
    assert fast.reason == "no " + cleaned
    assert fast.feedback == [{"policy": "r0", "message": "w " + cleaned}]
    assert doc(fast) == doc(general)
    json.dumps(fast.to_dict(), ensure_ascii=False).encode("utf-8")


def test_valid_non_ascii_input_is_not_copied() -> None:
    inp = {"cmd": "café", "nested": {"ключ": ["ü"]}}
    assert check_input(inp) is inp


# ---------------------------------------------------------------------------- records


def test_decision_defaults_and_document() -> None:
    d = Decision("allow", True, "fine")
    assert (d.feedback, d.matched, d.gates, d.side_effects, d.warnings, d.extra) == (
        [], [], [], [], [], {})
    assert d.to_dict() == {
        "decision": "allow", "enforced": True, "reason": "fine", "feedback": [], "matched": [],
        "gates": [], "plan": {"hash": ""}, "input": {"event": None, "tool": None},
        "duration_ms": 0.0, "mode": "enforce",
    }
    assert list(d.to_dict()) == ["decision", "enforced", "reason", "feedback", "matched",
                                 "gates", "plan", "input", "duration_ms", "mode"]
    assert Decision("allow", True, "fine").gates is not Decision("allow", True, "fine").gates
    d.side_effects.append({"kind": "run"})
    d.warnings.append("note")
    d.extra["run_id"] = "r1"
    out = d.to_dict()
    assert out["side_effects"] == [{"kind": "run"}] and out["warnings"] == ["note"]
    assert list(out)[-3:] == ["side_effects", "warnings", "run_id"]
    assert not hasattr(d, "nope")
    with pytest.raises(AttributeError):
        d.nope = 1  # type: ignore[attr-defined]
    assert repr(d) == "Decision('allow', reason='fine')"


def test_decision_equality_copy_and_pickle() -> None:
    plan = compile_rules([{"effect": "deny", "when": {"field": "cmd", "equals": "x"}}])
    d = Engine(plan, ROOT).evaluate({"cmd": "x", "hook_event_name": "PreToolUse"},
                                    side_effects=False)
    same = Decision(
        decision="deny", enforced=True, reason="deny by r0", feedback=[],
        matched=[{"policy": "r0", "effect": "deny", "source": "gen.yaml:1:1"}],
        plan_hash=plan["hash"], event="PreToolUse", tool=None, duration_ms=d.duration_ms,
        mode="enforce", default_used=False,
    )
    same.matched[0]["source"] = d.matched[0]["source"]
    assert d == same
    assert copy.deepcopy(d) == d and copy.copy(d) == d
    assert pickle.loads(pickle.dumps(d)) == d
    same.gates.append({"gate": "x"})
    assert d != same
    assert d.__hash__ is None


def test_new_decision_builds_matched_from_rules() -> None:
    plan = compile_rules([{"effect": "deny"}, {"effect": "ask"}])
    rules = [build_rule(i, s) for i, s in enumerate(plan["scopes"][0]["rules"])]
    d = new_decision("deny", True, "r", None, rules, "h", "e", "t", "enforce", False)
    assert d.matched == [{"policy": r.name, "effect": r.effect, "source": r.spec["source"]}
                         for r in rules]
    assert d.matched is d.matched  # made once
    assert d.feedback == [] and d.duration_ms == 0.0
    d.matched = []
    assert d.to_dict()["matched"] == []


def test_env_record() -> None:
    a, b = Env(input={}, now=1.0), Env(input={}, now=1.0)
    assert a.environ is os.environ and a.root == "." and a.events is None
    assert a.notes == [] and a.notes is not b.notes
    assert a == b
    assert a.session_events() == []

    class Source:
        calls = 0

        def session_events_of(self, inp: dict[str, Any]) -> list[Any]:
            Source.calls += 1
            return [inp["session_id"]]

    c = Env(input={"session_id": "s"}, now=1.0)
    c.source = Source()
    assert c.session_events() == ["s"] and c.session_events() == ["s"]
    assert Source.calls == 1
    d = Env(input={}, now=1.0, events=lambda: ["e"])
    assert d.session_events() == ["e"]


# ------------------------------------------------------------------------------ clock


def test_warden_now_is_read_on_every_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = compile_rules([{"effect": "deny", "when": {"time": {"after": "09:00",
                                                               "before": "10:00"}}}])
    engine = Engine(plan, ROOT)
    inp = {"hook_event_name": "PreToolUse"}
    monkeypatch.setenv("WARDEN_NOW", "2024-06-03T09:30:00Z")
    assert durations.now() == durations.parse_instant("2024-06-03T09:30:00Z")
    assert engine.evaluate(inp, side_effects=False).decision == "deny"
    monkeypatch.setenv("WARDEN_NOW", "2024-06-03T11:30:00Z")
    assert engine.evaluate(inp, side_effects=False).decision == "allow"
    monkeypatch.setenv("WARDEN_NOW", "not-a-time")
    with pytest.raises(UsageError, match="WARDEN_NOW"):
        engine.evaluate(inp, side_effects=False)
    monkeypatch.delenv("WARDEN_NOW")
    assert abs(durations.now() - time.time()) < 5


def test_stored_mode_applies_on_the_fast_path() -> None:
    plan = compile_rules([{"effect": "deny"}])
    engine = Engine(plan, ROOT)
    assert engine.evaluate({}, side_effects=False).enforced is True
    engine._mode_cache = ("observe", time.monotonic() + 60)
    d = engine.evaluate({}, side_effects=False)
    assert (d.enforced, d.mode, d.exit_code) == (False, "observe", 0)
    assert engine.evaluate({}, side_effects=False, mode="enforce").enforced is True
    engine._mode_cache = ("observe", time.monotonic() - 1)  # expired: read again
    assert engine.evaluate({}, side_effects=False).mode == "enforce"
