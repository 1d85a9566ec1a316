"""Stage 5: evaluating inputs (DESIGN §3, §4, §8), through the public Python API."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import warden
from warden.decision import Decision
from warden.engine import Engine
from wardentest import Env, Project, bash, write


def engine_for(project: Project, text: str) -> Engine:
    project.policy(textwrap.dedent(text))
    return warden.load(project.root, user_policies=False, use_cache=False)  # type: ignore[no-any-return]


def rule(when: str, *, effect: str = "deny", extra: str = "") -> str:
    """A one-rule policy whose condition is ``when`` (a YAML flow mapping)."""
    return f"version: 1\npolicies:\n  - name: r\n    effect: {effect}\n    when: {when}\n{extra}"


def applies(project: Project, when: str, inp: dict[str, Any], **kw: Any) -> bool:
    d = engine_for(project, rule(when)).evaluate(inp, **kw)
    return d.decision == "deny"


# ------------------------------------------------------------------ field operators


@pytest.mark.parametrize(("when", "inp", "hit"), [
    ("{field: a, equals: x}", {"a": "x"}, True),
    ("{field: a, equals: x}", {"a": "X"}, False),
    ("{field: a, equals: x, ignore_case: true}", {"a": "X"}, True),
    ("{field: a, equals: 3}", {"a": 3}, True),
    ("{field: a, equals: 3}", {"a": 3.0}, True),        # JSON numbers
    ("{field: a, equals: 3}", {"a": "3"}, False),       # "3" is not 3
    ("{field: a, equals: '3'}", {"a": 3}, False),
    ("{field: a, equals: true}", {"a": 1}, False),      # true is not 1
    ("{field: a, equals: 1}", {"a": True}, False),
    ("{field: a, equals: 0}", {"a": False}, False),
    ("{field: a, equals: null}", {"a": None}, True),
    ("{field: a, equals: null}", {}, False),            # missing is not null
    ("{field: a, equals: [1, x]}", {"a": [1, "x"]}, True),
    ("{field: a, equals: [1, x]}", {"a": [True, "x"]}, False),
    ("{field: a, equals: {k: 1}}", {"a": {"k": 1}}, True),
    ("{field: a, equals: {k: 1}}", {"a": {"k": True}}, False),
    ("{field: a, in: [x, y]}", {"a": "y"}, True),
    ("{field: a, in: [x, y]}", {"a": "z"}, False),
    ("{field: a, in: [1, 2]}", {"a": True}, False),
    ("{field: a, in: [X, Y], ignore_case: true}", {"a": "y"}, True),
    ("{field: a, matches: 'rm\\s+-rf'}", {"a": "sudo rm  -rf /"}, True),   # unanchored
    ("{field: a, matches: '^rm'}", {"a": "sudo rm"}, False),
    ("{field: a, matches: 'RM', ignore_case: true}", {"a": "rm"}, True),
    ("{field: a, matches: '1'}", {"a": 1}, False),       # only strings match regexes
    ("{field: a, glob: '*.env'}", {"a": "/srv/app/.env"}, True),
    ("{field: a, glob: '*.ENV', ignore_case: true}", {"a": "x/prod.env"}, True),
    ("{field: a, glob: ['*.pem', '*.key']}", {"a": "id.key"}, True),
    ("{field: a, glob: '*.env'}", {"a": "x.env.example"}, False),
    ("{field: a, contains: ab}", {"a": "xaby"}, True),        # substring
    ("{field: a, contains: AB, ignore_case: true}", {"a": "xaby"}, True),
    ("{field: a, contains: 2}", {"a": [1, 2, 3]}, True),      # membership
    ("{field: a, contains: 2}", {"a": ["2"]}, False),
    ("{field: a, contains: true}", {"a": [1]}, False),
    ("{field: a, contains: b}", {"a": ["abc"]}, False),       # not substring of elements
    ("{field: a, contains: k}", {"a": {"k": 0}}, True),       # key presence
    ("{field: a, contains: v}", {"a": {"k": "v"}}, False),
    ("{field: a, contains: K, ignore_case: true}", {"a": {"k": 0}}, True),
    ("{field: a, contains: 1}", {"a": 12}, False),
    ("{field: a, starts_with: git }", {"a": "git push"}, True),
    ("{field: a, starts_with: Git, ignore_case: true}", {"a": "git push"}, True),
    ("{field: a, starts_with: git}", {"a": "sudo git"}, False),
    ("{field: a, ends_with: .md}", {"a": "README.md"}, True),
    ("{field: a, ends_with: .MD, ignore_case: true}", {"a": "README.md"}, True),
    ("{field: a, ends_with: '1'}", {"a": 11}, False),
    ("{field: a, exists: true}", {"a": None}, True),
    ("{field: a, exists: true}", {}, False),
    ("{field: a, exists: false}", {}, True),
    ("{field: a, exists: false}", {"a": 0}, False),
    ("{field: a, gt: 5}", {"a": 6}, True),
    ("{field: a, gt: 5}", {"a": 5}, False),
    ("{field: a, gte: 5}", {"a": 5}, True),
    ("{field: a, lt: 5}", {"a": 4.5}, True),
    ("{field: a, lte: 5}", {"a": 5}, True),
    ("{field: a, lte: 5}", {"a": 5.01}, False),
    ("{field: a, gt: 5}", {"a": "6"}, False),             # gt needs two numbers
    ("{field: a, gt: 0}", {"a": True}, False),            # a boolean is no number
    ("{field: a, lt: 5}", {"a": None}, False),
    ("{field: a, gt: 5}", {"a": [6]}, False),
])
def test_field_operators(project: Project, when: str, inp: dict[str, Any], hit: bool) -> None:
    assert applies(project, when, inp) is hit


def test_nested_paths_indexes_and_escaped_dots(project: Project) -> None:
    inp = {"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
           "items": [{"name": "a"}, {"name": "b"}]}
    assert applies(project, r"{field: 'metadata.labels.app\.kubernetes\.io/name', equals: web}",
                   inp)
    assert applies(project, "{field: items.1.name, equals: b}", inp)
    assert not applies(project, "{field: items.2.name, exists: true}", inp)


def test_star_paths_any_element(project: Project) -> None:
    inp = {"containers": [{"image": "nginx:1.25"}, {"image": "redis:latest"}],
           "env": {"A": "1", "B": "secret"}}
    assert applies(project, "{field: containers.*.image, ends_with: ':latest'}", inp)
    assert not applies(project, "{field: containers.*.image, starts_with: postgres}", inp)
    assert applies(project, "{field: env.*, equals: secret}", inp)
    assert applies(project, "{field: containers.*.image, matches: redis}", inp)
    assert applies(project, "{field: containers.*.image, glob: 'nginx:*'}", inp)
    # false on an empty or missing collection, whatever the operator
    for empty in ({"containers": []}, {"containers": {}}, {}):
        assert not applies(project, "{field: containers.*.image, exists: true}", empty)
        assert not applies(project, "{field: containers.*, equals: null}", empty)
    for empty in ({"containers": []}, {"containers": {}}, {}):
        assert not applies(project, "{field: containers.*.image, exists: false}", empty)
    # exists: false with `*` holds when at least one element lacks the key
    mixed = {"containers": [{"image": "nginx:1.25"}, {"name": "sidecar"}]}
    assert applies(project, "{field: containers.*.image, exists: false}", mixed)
    assert applies(project, "{field: containers.*.image, exists: true}", mixed)
    assert not applies(project, "{field: containers.*.image, exists: false}", inp)
    # not negates the whole condition: "no container uses :latest"
    assert not applies(project, "{not: {field: containers.*.image, ends_with: ':latest'}}", inp)


def test_missing_field_only_falsifies_its_own_condition(project: Project) -> None:
    inp = {"a": "x"}
    assert not applies(project, "{field: b, equals: y}", inp)
    assert applies(project, "{not: {field: b, equals: y}}", inp)
    assert applies(project, "{any: [{field: b, equals: y}, {field: a, equals: x}]}", inp)
    assert not applies(project, "{all: [{field: b, equals: y}, {field: a, equals: x}]}", inp)
    assert applies(project, "{not: {field: a.deeper.still, gt: 1}}", inp)


def test_boolean_logic(project: Project) -> None:
    inp = {"a": 1, "b": 2}
    t, f = "{field: a, equals: 1}", "{field: b, equals: 1}"
    assert applies(project, f"{{all: [{t}, {t}]}}", inp)
    assert not applies(project, f"{{all: [{t}, {f}]}}", inp)
    assert applies(project, f"{{any: [{f}, {t}]}}", inp)
    assert not applies(project, f"{{any: [{f}, {f}]}}", inp)
    assert applies(project, f"{{not: {f}}}", inp)
    assert applies(project, f"{{not: {{not: {t}}}}}", inp)
    assert applies(project, f"{{all: [{t}, {{any: [{f}, {{not: {f}}}]}}]}}", inp)


def test_conditions_short_circuit(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cmd = f'{{command: {{run: ["{sys.executable}", "-c", "open(r\'{marker}\', \'w\')"]}}}}'
    assert applies(project, f"{{any: [{{field: a, equals: 1}}, {cmd}]}}", {"a": 1})
    assert not marker.exists()
    assert not applies(project, f"{{all: [{{field: a, equals: 2}}, {cmd}]}}", {"a": 1})
    assert not marker.exists()


# ------------------------------------------------------------------------- templates


def test_templates_in_condition_values(project: Project) -> None:
    same = "{field: tool_input.new_path, equals: '{tool_input.old_path}'}"
    assert applies(project, same, {"tool_input": {"old_path": "a", "new_path": "a"}})
    assert not applies(project, same, {"tool_input": {"old_path": "a", "new_path": "b"}})
    # a single placeholder keeps its type: 3 equals 3, not "3"
    typed = "{field: a, equals: '{b}'}"
    assert applies(project, typed, {"a": 3, "b": 3})
    assert not applies(project, typed, {"a": "3", "b": 3})
    # the template's field missing: the condition is false, and its negation true
    assert not applies(project, typed, {"a": 3})
    assert applies(project, "{not: {field: a, equals: '{b}'}}", {"a": 3})
    # mixed text renders as a string
    assert applies(project, "{field: p, starts_with: '{cwd}/'}", {"cwd": "/w", "p": "/w/x"})
    assert applies(project, "{field: n, gt: '{limit}'}", {"n": 10, "limit": 5})
    assert applies(project, "{field: a, in: ['{b}', z]}", {"a": "y", "b": "y"})
    assert applies(project, "{field: a, in: ['{missing}', z]}", {"a": "z"})
    # literal braces
    assert applies(project, "{field: a, equals: '{{x}}'}", {"a": "{x}"})


def test_matches_and_glob_values_are_never_templated(project: Project) -> None:
    assert applies(project, "{field: a, matches: 'x{2}'}", {"a": "xx"})
    assert applies(project, "{field: a, glob: '{b}'}", {"a": "{b}", "b": "zzz"})


# -------------------------------------------------------------------- tool filters


def test_tool_regex_is_a_full_match(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        policies:
          - {name: edits, tool: {matches: "Write|Edit"}, effect: deny}
        """)
    for tool, hit in [("Write", True), ("Edit", True), ("NotebookEdit", False),
                      ("WriteFile", False), ("MultiEdit", False)]:
        d = eng.evaluate({"hook_event_name": "PreToolUse", "tool_name": tool})
        assert (d.decision == "deny") is hit, tool


def test_tool_names_and_event_lists(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        policies:
          - {name: a, event: [PreToolUse, PostToolUse], tool: [Read, Grep], effect: deny}
        """)
    assert eng.evaluate({"hook_event_name": "PostToolUse", "tool_name": "Grep"}).decision == "deny"
    assert eng.evaluate({"hook_event_name": "Stop", "tool_name": "Grep"}).decision == "allow"
    assert eng.evaluate({"hook_event_name": "PreToolUse", "tool_name": "read"}).decision == "allow"
    assert eng.evaluate({"hook_event_name": "PreToolUse"}).decision == "allow"
    # `event` and `tool` are read when hook_event_name / tool_name are absent
    d = eng.evaluate({"event": "PreToolUse", "tool": "Read"})
    assert d.decision == "deny" and (d.event, d.tool) == ("PreToolUse", "Read")


# ---------------------------------------------------------- file / env / time / command


def test_file_conditions(project: Project) -> None:
    write(project.root / "big.bin", "x" * 2000)
    write(project.root / "small.txt", "x")
    os.utime(project.root / "small.txt", (1_000_000, 1_000_000))
    inp = {"name": "big.bin", "other": "small.txt"}
    assert applies(project, "{file: {path: big.bin}}", inp)
    assert applies(project, "{file: {path: '{name}', exists: true}}", inp)
    assert applies(project, "{file: {path: nope.txt, exists: false}}", inp)
    assert not applies(project, "{file: {path: nope.txt}}", inp)
    assert applies(project, "{file: {path: '{name}', larger_than: 1KB}}", inp)
    assert not applies(project, "{file: {path: '{other}', larger_than: 1KB}}", inp)
    assert applies(project, "{file: {path: '{name}', modified_within: 1h}}", inp)
    assert not applies(project, "{file: {path: '{other}', modified_within: 1h}}", inp)
    # relative paths are relative to the project root, absolute ones are absolute
    assert applies(project, f"{{file: {{path: '{project.root / 'big.bin'}'}}}}", inp)
    # a missing template field never turns into the project root itself
    assert not applies(project, "{file: {path: '{missing}'}}", inp)
    assert not applies(project, "{file: {path: '{missing}', exists: false}}", inp)


def test_env_conditions(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARDEN_TEST_CI", "true")
    monkeypatch.delenv("WARDEN_TEST_UNSET", raising=False)
    assert applies(project, "{env: {name: WARDEN_TEST_CI, equals: 'true'}}", {})
    assert applies(project, "{env: {name: WARDEN_TEST_CI, exists: true}}", {})
    assert applies(project, "{env: {name: WARDEN_TEST_CI, matches: '^t'}}", {})
    assert not applies(project, "{env: {name: WARDEN_TEST_UNSET, exists: true}}", {})
    assert applies(project, "{env: {name: WARDEN_TEST_UNSET, exists: false}}", {})
    assert not applies(project, "{env: {name: WARDEN_TEST_UNSET, matches: '.*'}}", {})
    # an explicit environment replaces the process's
    eng = engine_for(project, rule("{env: {name: DEPLOY, equals: prod}}"))
    assert eng.evaluate({}, environ={"DEPLOY": "prod"}).decision == "deny"
    assert eng.evaluate({}, environ={}).decision == "allow"


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def test_time_conditions(project: Project) -> None:
    eng = engine_for(project, rule("{time: {days: [mon, tue, wed, thu, fri], after: '09:00', "
                                   "before: '17:00'}}"))

    def t(iso: str) -> str:
        return eng.evaluate({}, now=at(iso)).decision

    assert t("2024-06-03T09:00:00") == "deny"   # Monday 09:00: after is inclusive
    assert t("2024-06-03T08:59:59") == "allow"
    assert t("2024-06-03T16:59:59") == "deny"
    assert t("2024-06-03T17:00:00") == "allow"  # before is exclusive
    assert t("2024-06-08T12:00:00") == "allow"  # Saturday


def test_time_zone(project: Project) -> None:
    eng = engine_for(project, rule("{time: {after: '09:00', before: '10:00', "
                                   "tz: Europe/Berlin}}"))
    # 07:30 UTC in June is 09:30 in Berlin (CEST)
    assert eng.evaluate({}, now=at("2024-06-03T07:30:00")).decision == "deny"
    assert eng.evaluate({}, now=at("2024-06-03T09:30:00")).decision == "allow"
    # days are the local days: Sunday 23:30 UTC is Monday in Tokyo
    eng = engine_for(project, rule("{time: {days: [mon], tz: Asia/Tokyo}}"))
    assert eng.evaluate({}, now=at("2024-06-02T23:30:00")).decision == "deny"


def test_overnight_window(project: Project) -> None:
    eng = engine_for(project, rule("{time: {after: '22:00', before: '06:00'}}"))
    assert eng.evaluate({}, now=at("2024-06-03T23:00:00")).decision == "deny"
    assert eng.evaluate({}, now=at("2024-06-03T05:59:00")).decision == "deny"
    assert eng.evaluate({}, now=at("2024-06-03T12:00:00")).decision == "allow"


def test_warden_now_fixes_the_clock(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    eng = engine_for(project, rule("{time: {days: [sat]}}"))
    monkeypatch.setenv("WARDEN_NOW", "2024-06-08T12:00:00Z")
    assert eng.evaluate({}).decision == "deny"
    monkeypatch.setenv("WARDEN_NOW", "2024-06-07T12:00:00+00:00")
    assert eng.evaluate({}).decision == "allow"


def test_command_conditions(project: Project) -> None:
    py = sys.executable
    ok = f'{{command: {{run: ["{py}", "-c", "import sys; sys.exit(0)"]}}}}'
    three = f'{{command: {{run: ["{py}", "-c", "import sys; sys.exit(3)"], exit_code: 3}}}}'
    fail = f'{{command: {{run: ["{py}", "-c", "import sys; sys.exit(1)"]}}}}'
    assert applies(project, ok, {})
    assert applies(project, three, {})
    assert not applies(project, fail, {})
    # argv is templated element by element, never through a shell
    arg = f'{{command: {{run: ["{py}", "-c", "import sys; sys.exit(sys.argv[1] != \'a b;c\')", ' \
          '"{x}"]}}'
    assert applies(project, arg, {"x": "a b;c"})
    assert not applies(project, arg, {})  # missing field: false, command not run


def test_command_timeout_and_missing_program(project: Project) -> None:
    py = sys.executable
    slow = f'{{command: {{run: ["{py}", "-c", "import time; time.sleep(10)"], timeout: 200ms}}}}'
    eng = engine_for(project, rule(slow))
    d = eng.evaluate({})
    assert d.decision == "allow" and d.duration_ms < 5000
    assert any("timed out" in w for w in d.warnings)
    eng = engine_for(project, rule('{command: {run: ["/no/such/program"]}}'))
    d = eng.evaluate({})
    assert d.decision == "allow" and any("could not start" in w for w in d.warnings)


def test_command_timeout_kills_what_the_command_started(project: Project,
                                                        tmp_path: Path) -> None:
    """A timed-out ``command:`` condition takes its whole process group down: a child it
    spawned does not live on (and cannot write anything later)."""
    import time

    py = sys.executable
    marker = tmp_path / "late.txt"
    child = (f"import time, pathlib; time.sleep(1.5); "
             f"pathlib.Path({str(marker)!r}).write_text('still alive')")
    parent = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
              f"{child!r}]); time.sleep(10)")
    cond = f'{{command: {{run: ["{py}", "-c", {json.dumps(parent)}], timeout: 300ms}}}}'
    d = engine_for(project, rule(cond)).evaluate({})
    assert any("timed out" in w for w in d.warnings)
    time.sleep(2.5)
    assert not marker.exists(), "the command's child outlived the timeout"


# ------------------------------------------------------------------------- decisions


ORDERED = """\
version: 1
settings: {combine: COMBINE}
policies:
  - {name: w1, effect: warn, message: "first warning {tool_input.command}"}
  - {name: allow-ls, tool: Bash, when: {field: tool_input.command, starts_with: ls}, effect: allow}
  - {name: ask-bash, tool: Bash, effect: ask}
  - {name: deny-rm, tool: Bash, when: {field: tool_input.command, matches: rm}, effect: deny}
  - {name: w2, tool: Bash, effect: warn}
"""


def test_first_match_takes_the_first_applicable_hard_rule(project: Project) -> None:
    eng = engine_for(project, ORDERED.replace("COMBINE", "first-match"))
    d = eng.evaluate(bash("ls; rm -rf x"))
    assert d.decision == "allow" and [m["policy"] for m in d.matched] == ["allow-ls"]
    assert d.matched[0]["source"] == "warden.yaml:5:5"
    d = eng.evaluate(bash("rm -rf x"))
    assert d.decision == "ask" and [m["policy"] for m in d.matched] == ["ask-bash"]
    assert d.exit_code == 3
    # warn rules are always collected, wherever they sit, with rendered messages
    assert d.feedback == [{"policy": "w1", "message": "first warning rm -rf x"},
                          {"policy": "w2", "message": "warn by w2"}]


def test_deny_overrides(project: Project) -> None:
    eng = engine_for(project, ORDERED.replace("COMBINE", "deny-overrides"))
    d = eng.evaluate(bash("ls; rm -rf x"))
    assert d.decision == "deny" and d.exit_code == 2
    assert [m["policy"] for m in d.matched] == ["allow-ls", "ask-bash", "deny-rm"]
    assert d.reason == "deny by deny-rm"
    d = eng.evaluate(bash("ls"))
    assert d.decision == "ask"
    assert [f["policy"] for f in d.feedback] == ["w1", "w2"]
    d = eng.evaluate({"hook_event_name": "PreToolUse", "tool_name": "Read"})
    assert d.decision == "allow" and d.matched == [] and len(d.feedback) == 1


def test_reason_is_the_rendered_message(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        policies:
          - name: no-rm
            tool: Bash
            when: {field: tool_input.command, matches: 'rm'}
            effect: deny
            message: "Refusing {tool_input.command} ({{literal}}) in {cwd}"
        """)
    d = eng.evaluate(bash("rm -rf /"))
    assert d.reason == "Refusing rm -rf / ({literal}) in "


def test_no_rule_gives_the_default_for_agent_events(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        settings: {default: ask}
        policies:
          - {name: a, event: PreToolUse, tool: Read, effect: allow}
          - {name: w, effect: warn}
        """)
    d = eng.evaluate(bash("ls"))
    assert d.decision == "ask" and d.matched == [] and "default" in d.reason
    assert [f["policy"] for f in d.feedback] == ["w"]
    assert eng.evaluate({"hook_event_name": "PreToolUse", "tool_name": "Read"}).decision == "allow"
    # settings.default is for agent events only
    assert eng.evaluate({"event": "file", "path": "x.yaml", "document": {}}).decision == "allow"
    d = eng.evaluate({"event": "action", "action": "deploy", "params": {}})
    assert d.decision == "allow" and d.exit_code == 0


def test_file_and_action_events_still_obey_their_rules(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        settings: {default: deny}
        policies:
          - {name: no-latest, event: file, when: {field: document.image, ends_with: latest},
             effect: deny}
          - {name: prod-ask, event: action, when: {field: params.env, equals: prod}, effect: ask}
        """)
    assert eng.evaluate({"event": "file", "document": {"image": "x:latest"}}).decision == "deny"
    assert eng.evaluate({"event": "file", "document": {"image": "x:1"}}).decision == "allow"
    assert eng.evaluate({"event": "action", "params": {"env": "prod"}}).decision == "ask"
    assert eng.evaluate({"event": "action", "params": {"env": "dev"}}).decision == "allow"
    assert eng.evaluate({"hook_event_name": "Stop"}).decision == "deny"


def test_observe_mode_reports_but_does_not_enforce(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        settings: {mode: observe}
        policies:
          - {name: no, tool: Bash, effect: deny}
        """)
    d = eng.evaluate(bash("ls"))
    assert d.decision == "deny" and d.enforced is False and d.exit_code == 0
    doc = d.to_dict()
    assert doc["enforced"] is False and doc["decision"] == "deny" and doc["mode"] == "observe"
    # the mode can also be forced per call
    d = eng.evaluate(bash("ls"), mode="enforce")
    assert d.enforced and d.exit_code == 2


def test_decision_document_shape(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        policies:
          - {name: prefer-trash, tool: Bash, effect: warn, message: consider trash-put}
          - name: no-rm-rf-root
            tool: Bash
            when: {field: tool_input.command, matches: 'rm -rf /'}
            effect: deny
            message: "Refusing to delete /: {tool_input.command}"
        """)
    d = eng.evaluate(bash("rm -rf /"))
    assert isinstance(d, Decision)
    doc = d.to_dict()
    assert doc["decision"] == "deny" and doc["enforced"] is True
    assert doc["reason"] == "Refusing to delete /: rm -rf /"
    assert doc["feedback"] == [{"policy": "prefer-trash", "message": "consider trash-put"}]
    assert doc["matched"] == [{"policy": "no-rm-rf-root", "effect": "deny",
                               "source": "warden.yaml:4:5"}]
    assert doc["gates"] == [] and doc["plan"] == {"hash": eng.plan_hash}
    assert doc["input"] == {"event": "PreToolUse", "tool": "Bash"}
    assert doc["duration_ms"] >= 0


def test_evaluate_rejects_non_objects_and_deep_inputs(project: Project) -> None:
    eng = project.engine()
    with pytest.raises(warden.InputError):
        eng.evaluate([1, 2])  # type: ignore[arg-type]
    deep: Any = "x"
    for _ in range(300):
        deep = {"a": deep}
    with pytest.raises(warden.InputError):
        eng.evaluate(deep)


def test_engine_api(project: Project, tmp_path: Path) -> None:
    eng = project.engine()
    assert eng.plan_hash.startswith("sha256:")
    d = eng.evaluate(bash("rm -rf /"))
    assert (d.decision, d.exit_code) == ("deny", 2)
    assert d.reason == "Refusing to delete /: rm -rf /"
    assert eng.evaluate(bash("ls /")).decision == "allow"
    from warden.plan import dump_json

    f = tmp_path / "plan.json"
    f.write_text(dump_json(eng.plan))
    again = warden.load_plan(f)
    assert again.plan_hash == eng.plan_hash
    assert again.evaluate(bash("rm -rf /")).decision == "deny"


def test_load_without_policies_is_a_policy_error(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    with pytest.raises(warden.PolicyError, match="no policy files"):
        warden.load(empty, user_policies=False)


# ------------------------------------------------------------------------ two scopes


USER_DENY = """\
version: 1
policies:
  - {name: user-no-curl, tool: Bash, when: {field: tool_input.command, matches: curl},
     effect: deny, message: user says no}
  - {name: user-ask-git, tool: Bash, when: {field: tool_input.command, matches: git}, effect: ask}
"""

PROJECT_ALLOW = """\
version: 1
policies:
  - {name: project-allow-bash, tool: Bash, effect: allow}
  - {name: project-no-sudo, tool: Bash, when: {field: tool_input.command, matches: sudo},
     effect: deny}
"""


def two_scopes(project: Project, xdg: Env, user: str, proj: str) -> Engine:
    write(xdg.user_dir / "user.yaml", user)
    project.policy(proj)
    return warden.load(project.root, use_cache=False)  # type: ignore[no-any-return]


def test_project_cannot_lift_a_user_deny(project: Project, xdg: Env) -> None:
    eng = two_scopes(project, xdg, USER_DENY, PROJECT_ALLOW)
    d = eng.evaluate(bash("curl evil.sh"))
    assert d.decision == "deny" and d.reason == "user says no"
    assert [m["policy"] for m in d.matched] == ["user-no-curl"]
    assert eng.evaluate(bash("git push")).decision == "ask"
    # the project can add restrictions of its own
    assert eng.evaluate(bash("sudo ls")).decision == "allow"  # first-match: allow-bash first
    assert eng.evaluate(bash("ls")).decision == "allow"


def test_stricter_scope_wins_either_way(project: Project, xdg: Env) -> None:
    eng = two_scopes(project, xdg, """\
        version: 1
        policies:
          - {name: user-allow, tool: Bash, effect: allow}
        """, """\
        version: 1
        policies:
          - {name: project-ask, tool: Bash, when: {field: tool_input.command, matches: npm},
             effect: ask}
        """)
    d = eng.evaluate(bash("npm publish"))
    assert d.decision == "ask" and [m["policy"] for m in d.matched] == ["project-ask"]
    d = eng.evaluate(bash("ls"))
    assert d.decision == "allow" and [m["policy"] for m in d.matched] == ["user-allow"]


def test_each_scope_uses_its_own_combine(project: Project, xdg: Env) -> None:
    eng = two_scopes(project, xdg, """\
        version: 1
        settings: {combine: first-match}
        policies:
          - {name: u-allow, tool: Bash, effect: allow}
          - {name: u-deny, tool: Bash, effect: deny}
        """, """\
        version: 1
        settings: {combine: deny-overrides}
        policies:
          - {name: p-allow, tool: Read, effect: allow}
          - {name: p-ask, tool: Read, effect: ask}
        """)
    # user scope: first-match -> allow (its deny is never reached)
    assert eng.evaluate(bash("x")).decision == "allow"
    # project scope: deny-overrides -> ask beats allow
    assert eng.evaluate({"hook_event_name": "PreToolUse", "tool_name": "Read"}).decision == "ask"


def test_user_default_deny_is_not_lifted_by_a_project_allow(project: Project, xdg: Env) -> None:
    eng = two_scopes(project, xdg, "version: 1\nsettings: {default: deny}\n", PROJECT_ALLOW)
    d = eng.evaluate(bash("ls"))
    assert d.decision == "deny"
    # ...but file checks ignore settings.default
    assert eng.evaluate({"event": "file", "document": {}}).decision == "allow"


def test_user_observe_does_not_weaken_a_project_enforce(project: Project, xdg: Env) -> None:
    eng = two_scopes(project, xdg, "version: 1\nsettings: {mode: observe}\n",
                     "version: 1\nsettings: {mode: enforce}\n" + PROJECT_ALLOW.split("\n", 1)[1])
    d = eng.evaluate(bash("sudo x"))
    assert d.enforced and eng.settings["mode"] == "enforce"


def test_warns_from_both_scopes_are_collected(project: Project, xdg: Env) -> None:
    eng = two_scopes(project, xdg, """\
        version: 1
        policies:
          - {name: u-warn, effect: warn, message: from user}
        """, """\
        version: 1
        policies:
          - {name: p-warn, effect: warn, message: from project}
          - {name: p-deny, effect: deny}
        """)
    d = eng.evaluate(bash("x"))
    assert d.decision == "deny"
    assert d.feedback == [{"policy": "p-warn", "message": "from project"},
                          {"policy": "u-warn", "message": "from user"}]


# ----------------------------------------------------------------------- explain


def test_explain_lists_every_rule_and_the_failing_condition(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        policies:
          - name: a
            tool: Bash
            when:
              all:
                - {field: tool_input.command, starts_with: git}
                - {field: tool_input.command, matches: '--force'}
            effect: deny
          - {name: b, tool: Read, effect: deny}
          - {name: c, event: Stop, effect: deny}
          - {name: d, effect: warn}
        """)
    rows = {r["policy"]: r for r in eng.explain(bash("git push"))}
    assert list(rows) == ["a", "b", "c", "d"]
    assert rows["a"]["applied"] is False
    assert "--force" in rows["a"]["detail"] and "warden.yaml:8:" in rows["a"]["detail"]
    assert rows["b"]["applied"] is False and "'Bash'" in rows["b"]["detail"]
    assert rows["c"]["applied"] is False and "Stop" in rows["c"]["detail"]
    assert rows["d"]["applied"] is True
    assert eng.explain(bash("git push --force"))[0]["applied"] is True


def test_explain_shows_values_as_written(project: Project) -> None:
    eng = engine_for(project, """\
        version: 1
        policies:
          - {name: same, when: {field: new, equals: "{old}"}, effect: deny}
          - {name: member, when: {field: new, in: ["{old}", x]}, effect: deny}
          - {name: secrets, when: {field: path, glob: "**/secrets/**"}, effect: deny}
        """)
    rows = {r["policy"]: r["detail"] for r in eng.explain({"new": "a", "old": "b", "path": "x"})}
    assert "field new (a) equals {old} (b) -> false" in rows["same"]
    assert "in [{old}, x]" in rows["member"]
    assert "glob **/secrets/** -> false" in rows["secrets"]  # the glob, not its regex
    rows = {r["policy"]: r["detail"] for r in eng.explain({"new": "a"})}
    assert "equals {old} (<missing>) -> false" in rows["same"]
