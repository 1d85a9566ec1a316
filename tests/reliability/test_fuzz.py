"""Property tests (issue 7, item 2): random valid policy sets and random inputs.

Properties:
- loading + validating + compiling never raises anything but ``PolicyError`` (problems are
  reported, never thrown), and a produced plan validates against schema/plan.schema.json;
- evaluation never raises, and the decision validates against schema/decision.schema.json;
- determinism: the same sources give the same plan hash, the same input gives the same
  decision (twice in one engine, in a fresh engine, and from the plan's JSON and cache form);
- the runtime (event/tool index + RE2-set prefilter) agrees with a naive reference evaluator
  that checks every rule in order;
- ``parse_input`` and ``parse_yaml`` take arbitrary bytes and raise only their own errors.

``make test`` runs ~100 examples per property; ``make stress`` (``-m stress``) thousands.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rel_strategies as S

from warden import __version__
from warden.engine import Engine, build_plan, check_sources, parse_input
from warden.errors import InputError, PolicyError
from warden.load import Source, parse_yaml
from warden.runtime import STRICTNESS, Env, build_rule, event_and_tool
from warden.state import Event

SMALL = 100
LARGE = int(os.environ.get("WARDEN_FUZZ_EXAMPLES", "3000"))
NOW = 1_750_000_000.0  # a fixed clock: 2025-06-15
ENVIRON = {"WARDEN_FUZZ_A": "ab", "CI": "true", "WARDEN_FUZZ_B": "x\udcffy"}
COMMON = dict(deadline=None, derandomize=False, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much,
                                     HealthCheck.function_scoped_fixture])


def _validator(name: str) -> Any:
    from jsonschema import Draft7Validator

    from warden.validate import schema

    return Draft7Validator(schema(name))


DECISION = _validator("decision")
PLAN = _validator("plan")


def _dump(doc: dict[str, Any], as_yaml: bool) -> str:
    if as_yaml:
        import yaml

        try:
            return str(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        except yaml.YAMLError:
            pass
    return json.dumps(doc)


def _workspace() -> Path:
    root = Path(tempfile.mkdtemp(prefix="warden-fuzz-"))
    (root / "dir").mkdir()
    (root / "a.txt").write_text("hello\n")
    (root / "dir" / "b.env").write_text("SECRET=1\n" * 100)
    return root


def _sources(root: Path, project: dict[str, Any], user: dict[str, Any] | None,
             as_yaml: bool) -> list[Source]:
    (root / "warden.yaml").write_text(_dump(project, as_yaml), encoding="utf-8",
                                      errors="surrogatepass")
    sources = [Source(str(root / "warden.yaml"), "project", "warden.yaml")]
    if user is not None:
        (root / "user.yaml").write_text(_dump(user, as_yaml), encoding="utf-8",
                                        errors="surrogatepass")
        sources.append(Source(str(root / "user.yaml"), "user", "user.yaml"))
    return sources


def _compile(sources: list[Source]) -> dict[str, Any] | None:
    """check_sources must report, never raise."""
    try:
        plan, problems = check_sources(sources)
    except PolicyError:  # pragma: no cover - check_sources reports instead of raising
        pytest.fail("check_sources raised PolicyError instead of reporting it")
    assert all(p.file in ("warden.yaml", "user.yaml") or p.file is None for p in problems)
    if plan is None:
        assert any(p.severity == "error" for p in problems)
    return plan


def _events(data: list[dict[str, Any]]) -> list[Event]:
    """Recorded session events, as the hook records them: inputs that went through
    ``parse_input`` (so lone surrogates are already replaced)."""
    out = []
    for i, raw in enumerate(data):
        d = _clean(raw)
        ev, tool = event_and_tool(d)
        out.append(Event(i + 1, "s1", NOW - 60 * (len(data) - i), ev or "PostToolUse",
                         tool, d))
    return out


def _decide(engine: Engine, inp: dict[str, Any], events: list[Event]) -> dict[str, Any]:
    d = engine.evaluate(inp, now=NOW, environ=ENVIRON, events=lambda: events,
                        side_effects=False)
    doc = d.to_dict()
    errors = sorted(DECISION.iter_errors(doc), key=str)
    assert not errors, f"decision fails its schema: {errors[0].message}\n{doc}"
    json.dumps(doc, ensure_ascii=False).encode("utf-8")  # printable as UTF-8
    assert d.exit_code in (0, 2, 3)
    doc.pop("duration_ms")
    return doc


def _reference(plan: dict[str, Any], inp: dict[str, Any], root: Path,
               events: list[Event]) -> tuple[str, list[str], list[str]]:
    """A naive evaluator: every rule of every scope, in order, no index, no prefilter."""
    env = Env(input=inp, now=NOW, environ=ENVIRON, root=str(root), events=lambda: events)
    event, tool = event_and_tool(inp)
    agent = event not in ("file", "action")
    results = []
    warns: list[str] = []
    for sc in plan["scopes"]:
        hard = []
        for i, spec in enumerate(sc["rules"]):
            if spec.get("events") and event not in spec["events"]:
                continue
            if spec.get("tools") and tool not in spec["tools"]:
                continue
            rule = build_rule(i, spec)
            if not rule.applies(env, tool):
                continue
            if rule.effect == "warn":
                warns.append(rule.name)
            else:
                hard.append(rule)
        first = sc.get("combine", "first-match") != "deny-overrides"
        if hard:
            hard = hard[:1] if first else hard
            decision = hard[0].effect if first else max(
                (r.effect for r in hard), key=STRICTNESS.__getitem__)
        else:
            decision = sc.get("default")
        results.append((decision, hard))
    decided = [(d, h) for d, h in results if d is not None and (h or agent)]
    if not decided:
        default = plan["settings"].get("default", "allow") if agent else "allow"
        return default, [], warns
    final = max((d for d, _ in decided), key=STRICTNESS.__getitem__)
    matched = [r.name for d, h in decided if d == final for r in h]
    return final, matched, warns


def check_policy_set(project: dict[str, Any], user: dict[str, Any] | None,
                     cases: list[dict[str, Any]], history: list[dict[str, Any]],
                     as_yaml: bool) -> None:
    root = _workspace()
    cache = Path(tempfile.mkdtemp(prefix="warden-fuzz-cache-"))
    old_cache = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        sources = _sources(root, project, user, as_yaml)
        plan = _compile(sources)
        if plan is None:
            with pytest.raises(PolicyError):
                build_plan(sources, root, use_cache=True)
            return
        assert not list(PLAN.iter_errors(json.loads(json.dumps(plan)))), "plan fails schema"
        again = _compile(sources)
        assert again is not None and again["hash"] == plan["hash"], "compile not deterministic"
        # The cached and the JSON form of the plan decide the same.
        first = build_plan(sources, root, use_cache=True)
        cached = build_plan(sources, root, use_cache=True)
        assert cached.cached and cached.plan["hash"] == plan["hash"]
        from warden.plan import dump_json

        (root / "plan.json").write_text(dump_json(plan), encoding="utf-8")
        from warden.engine import load_plan

        engines = [Engine(plan, root), Engine(first.plan, root), Engine(cached.plan, root),
                   load_plan(str(root / "plan.json"), root)]
        events = _events(history)
        for inp in cases:
            docs = [_decide(e, inp, events) for e in engines]
            docs.append(_decide(engines[0], inp, events))  # same engine, second time
            assert all(d == docs[0] for d in docs), "evaluation not deterministic"
            want, matched, warns = _reference(plan, _clean(inp), root, events)
            got = docs[0]
            assert got["decision"] == want, (got, want)
            assert [m["policy"] for m in got["matched"]] == matched
            assert [f["policy"] for f in got["feedback"]] == warns
            engines[0].explain(inp, now=NOW, environ=ENVIRON, events=lambda: events)
    finally:
        if old_cache is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old_cache
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def _clean(inp: dict[str, Any]) -> dict[str, Any]:
    from warden.engine import check_input

    return check_input(inp)


policy_sets = st.tuples(
    S.policy_document("p"),
    st.one_of(st.none(), S.policy_document("u", max_rules=4)),
    st.lists(S.inputs(), min_size=1, max_size=5),
    st.lists(S.inputs(), max_size=4),
    st.booleans(),
)


@settings(max_examples=SMALL, **COMMON)  # type: ignore[arg-type]
@given(policy_sets)
def test_random_policy_sets(case: tuple[Any, ...]) -> None:
    check_policy_set(*case)


@pytest.mark.stress
@settings(max_examples=LARGE, **COMMON)  # type: ignore[arg-type]
@given(policy_sets)
def test_random_policy_sets_stress(case: tuple[Any, ...]) -> None:
    check_policy_set(*case)


# ------------------------------------------------------------- many rules, one field


@st.composite
def prefilter_heavy(draw: st.DrawFn) -> dict[str, Any]:
    """Many rules testing the same string field: RE2-set prefilter groups always form."""
    n = draw(st.integers(4, 30))
    rules = []
    for i in range(n):
        op = draw(st.sampled_from(["matches", "glob", "contains", "starts_with", "ends_with",
                                   "equals"]))
        value: Any = draw(S.regexes() if op == "matches" else S.globs if op == "glob"
                          else S.small_text)
        when: dict[str, Any] = {"field": "tool_input.command", op: value}
        if draw(st.integers(0, 3)) == 0:
            when["ignore_case"] = True
        if draw(st.booleans()):
            when = {"all": [when, draw(S.conditions)]}
        rules.append({"name": f"r{i}", "effect": draw(st.sampled_from(
            ["allow", "deny", "ask", "warn"])), "tool": "Bash", "when": when})
    return {"version": 1, "settings": draw(S.settings()), "policies": rules}


commands = st.lists(st.sampled_from(["rm", " -rf", " /", "a", "b", "x", ".", "*", "RM", "/tmp",
                                     "\n", "é"]), max_size=6).map("".join)
prefilter_sets = st.tuples(
    prefilter_heavy(),
    st.lists(commands.map(lambda c: {"hook_event_name": "PreToolUse", "tool_name": "Bash",
                                     "tool_input": {"command": c}}), min_size=1, max_size=6),
)


@settings(max_examples=SMALL, **COMMON)  # type: ignore[arg-type]
@given(prefilter_sets)
def test_prefilter_agrees_with_reference(case: tuple[Any, ...]) -> None:
    doc, cases = case
    check_policy_set(doc, None, cases, [], False)


@pytest.mark.stress
@settings(max_examples=LARGE, **COMMON)  # type: ignore[arg-type]
@given(prefilter_sets)
def test_prefilter_agrees_with_reference_stress(case: tuple[Any, ...]) -> None:
    doc, cases = case
    check_policy_set(doc, None, cases, [], False)


# ------------------------------------------------------------------ raw bytes in


def _json_mutations() -> st.SearchStrategy[bytes]:
    base = st.sampled_from([b'{"a": 1}', b'{"tool_name": "Bash", "tool_input": {"command": '
                                         b'"rm -rf /"}}', b"[]", b'{"a": [[[{"b": null}]]]}'])
    return st.one_of(
        st.binary(max_size=200),
        st.tuples(base, st.integers(0, 40), st.binary(max_size=8)).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:]),
        st.recursive(S.json_scalar, lambda k: st.lists(k, max_size=3) | st.dictionaries(
            S.odd_text, k, max_size=3), max_leaves=10).map(
            lambda v: json.dumps(v).encode()),
    )


def check_raw_input(raw: bytes) -> None:
    try:
        inp = parse_input(raw)
    except InputError as exc:
        assert exc.exit_code == 65
        assert "\n" not in str(exc)
        return
    assert isinstance(inp, dict)
    engine = _raw_engine()
    _decide(engine, inp, [])


_ENGINE: list[Engine] = []


def _raw_engine() -> Engine:
    if not _ENGINE:
        root = _workspace()
        doc = {"version": 1, "policies": [
            {"name": "rm", "tool": "Bash", "effect": "deny",
             "when": {"field": "tool_input.command", "matches": r"\brm\s+-\w*r"},
             "message": "no: {tool_input.command}"},
            {"name": "any", "effect": "warn", "when": {"field": "*", "exists": True},
             "message": "{a}"},
        ]}
        sources = _sources(root, doc, None, False)
        plan = _compile(sources)
        assert plan is not None
        _ENGINE.append(Engine(plan, root))
    return _ENGINE[0]


@settings(max_examples=SMALL * 3, **COMMON)  # type: ignore[arg-type]
@given(_json_mutations())
def test_parse_input_takes_any_bytes(raw: bytes) -> None:
    check_raw_input(raw)


@pytest.mark.stress
@settings(max_examples=LARGE * 3, **COMMON)  # type: ignore[arg-type]
@given(_json_mutations())
def test_parse_input_takes_any_bytes_stress(raw: bytes) -> None:
    check_raw_input(raw)


_YAML_BITS = [b"version: 1\n", b"policies:\n", b"  - name: a\n", b"    effect: deny\n",
              b"&a ", b"*a", b"[", b"]", b"{", b"}", b": ", b"- ", b"\t", b"!!str ", b"? ",
              b"---\n", b"...\n", b"'", b'"', b"\\u0000", b"\\ud800", b"#", b"|\n", b">-\n",
              b"<<: *a\n", b"!!python/object:os.system ", b"99999999999999999999", b"\xff",
              b"\x00", b" ", b"\n", b"x"]


def check_raw_yaml(raw: bytes) -> None:
    try:
        docs = parse_yaml(raw, "f.yaml", multi=True)
    except PolicyError as exc:
        assert exc.problems and all(p.file == "f.yaml" for p in exc.problems)
        return
    for d in docs:
        json.dumps(d.data, default=str)


yaml_bytes = st.one_of(st.binary(max_size=200),
                       st.lists(st.sampled_from(_YAML_BITS), max_size=30).map(b"".join))


@settings(max_examples=SMALL * 3, **COMMON)  # type: ignore[arg-type]
@given(yaml_bytes)
def test_parse_yaml_takes_any_bytes(raw: bytes) -> None:
    check_raw_yaml(raw)


@pytest.mark.stress
@settings(max_examples=LARGE * 3, **COMMON)  # type: ignore[arg-type]
@given(yaml_bytes)
def test_parse_yaml_takes_any_bytes_stress(raw: bytes) -> None:
    check_raw_yaml(raw)


def test_version_is_stamped_in_plans() -> None:
    root = _workspace()
    plan = _compile(_sources(root, {"version": 1}, None, False))
    assert plan is not None and plan["warden_version"] == __version__
