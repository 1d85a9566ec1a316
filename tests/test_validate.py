"""Stage 2: schema and semantic validation, every problem at once, at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.engine import check_sources
from warden.errors import PolicyError, Problem
from warden.load import discover
from wardentest import Env, Project, write


def check(root: Path, *, strict: bool = False, user: bool = False) -> list[Problem]:
    sources, _ = discover(cwd=str(root), user=user)
    return check_sources(sources, strict=strict)[1]


def lines(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def find(problems: list[Problem], text: str) -> Problem:
    hits = [p for p in problems if text in p.message]
    assert hits, f"no problem mentions {text!r}: {lines(problems)}"
    return hits[0]


def test_valid_file_has_no_problems(project: Project) -> None:
    assert check(project.root) == []


def test_every_error_in_a_file_is_reported_at_once(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: no-rm
            event: PreToolUse
            tool: Bash
            when: {field: tool_input.command, matches: 'rm -rf /'}
            effect: deny
          - name: typo
            efect: deny
          - name: bad-regex
            effect: deny
            when: {field: x, matches: '(?<=a)b'}
          - name: bad-time
            effect: deny
            when: {time: {after: 9am, tz: Mars/Olympus}}
          - name: bad-duration
            effect: deny
            when: {state: {within: 5 minutes}}
          - name: Bad_Name
            effect: deny
          - name: bad-effect
            effect: block
        """)
    probs = check(project.root)
    assert all(p.severity == "error" for p in probs)
    got = {(p.line, p.column): p.message for p in probs}
    assert "unknown key 'efect' (did you mean 'effect'?)" in got[(9, 5)]
    # one mistake, one error: no separate "missing required key 'effect'" at (8, 5)
    assert (8, 5) not in got
    assert "invalid RE2 regex" in got[(12, 31)]
    assert "9am" in got[(15, 26)] and "HH:MM" in got[(15, 26)]
    assert "Mars/Olympus" in got[(15, 35)] and "time zone" in got[(15, 35)]
    assert "5 minutes" in got[(18, 28)] and "duration" in got[(18, 28)]
    assert "Bad_Name" in got[(19, 11)]
    assert "block" in got[(22, 13)] and "deny" in got[(22, 13)]
    assert len(probs) == 7
    assert str(find(probs, "efect")).startswith("warden.yaml:9:5: ")


def test_semantic_errors_without_schema_errors(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: bad-template
            effect: deny
            when: {field: x, equals: "{unclosed"}
            message: "oops }"
          - name: bad-glob-list
            effect: deny
            when: {field: x, matches: "a(b"}
        """)
    probs = check(project.root)
    assert {(p.line, p.column) for p in probs} == {(5, 30), (6, 14), (9, 31)}
    assert "bad template" in find(probs, "unclosed").message


def test_unknown_gate_reference_has_a_hint(project: Project) -> None:
    project.policy("""\
        version: 1
        gates:
          kill-switch: {kind: kill_switch}
        actions:
          deploy:
            gates: [kil-switch]
            steps:
              - {name: go, run: ["true"]}
        """)
    [p] = check(project.root)
    assert (p.line, p.column) == (6, 13)
    assert "unknown gate 'kil-switch' (did you mean 'kill-switch'?)" in p.message


def test_unknown_key_in_nested_condition(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: x
            effect: deny
            when:
              all:
                - field: a
                  equals: 1
                - field: b
                  equls: 2
        """)
    probs = check(project.root)
    p = find(probs, "equls")
    assert (p.line, p.column) == (10, 11)
    assert "did you mean 'equals'?" in p.message


def test_wrong_types_are_reported_at_the_value(project: Project) -> None:
    project.policy("""\
        version: 1
        settings:
          mode: enforced
          combine: first
        policies:
          - name: x
            effect: deny
            when: {field: a, exists: "yes"}
        """)
    probs = check(project.root)
    mode = find(probs, "enforced")
    assert (mode.line, mode.column) == (3, 9) and "enforce" in mode.message
    assert "did you mean" in mode.message
    assert (find(probs, "first").line) == 4
    assert find(probs, "boolean").line == 8


def test_duplicate_names_across_two_files_of_one_scope(project: Project) -> None:
    project.write(".warden/a.yaml", """\
        version: 1
        policies:
          - name: no-rm-rf-root
            effect: ask
        gates:
          g: {kind: kill_switch}
        """)
    project.write(".warden/b.yaml", """\
        version: 1
        gates:
          g: {kind: kill_switch}
        """)
    probs = check(project.root)
    rule = find(probs, "duplicate policy name 'no-rm-rf-root'")
    assert rule.file == str(Path(".warden") / "a.yaml") and rule.line == 3
    assert "first defined at warden.yaml:3:11" in rule.message
    gate = find(probs, "duplicate gate name 'g'")
    assert gate.file == str(Path(".warden") / "b.yaml") and gate.line == 3
    assert len(probs) == 2


def test_same_name_in_user_and_project_scope_is_fine(project: Project, xdg: Env) -> None:
    write(xdg.user_dir / "mine.yaml", """\
        version: 1
        policies:
          - name: no-rm-rf-root
            effect: deny
        """)
    assert check(project.root, user=True) == []


def test_duplicate_step_names(project: Project) -> None:
    project.policy("""\
        version: 1
        actions:
          a:
            steps:
              - {name: s, run: ["true"]}
              - {name: s, run: ["false"]}
        """)
    [p] = check(project.root)
    assert p.line == 6 and "duplicate step name 's'" in p.message


def test_field_path_warning_for_a_misspelt_tool_input(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: no-rm
            event: PreToolUse
            tool: Bash
            when: {field: tool_input.comand, matches: 'rm -rf /'}
            effect: deny
        """)
    [p] = check(project.root)
    assert p.severity == "warning" and p.line == 6
    assert "tool_input.comand" in p.message
    assert "did you mean 'tool_input.command'?" in p.message
    [strict] = check(project.root, strict=True)
    assert strict.severity == "error"


def test_no_field_warning_for_known_fields_or_unknown_tools(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: a
            tool: [Write, Edit]
            when: {field: tool_input.file_path, glob: "*.env"}
            effect: deny
          - name: b
            tool: mcp__github__create_issue
            when: {field: tool_input.anything, exists: true}
            effect: deny
          - name: c
            tool: {matches: "Write|Edit"}
            when: {field: tool_input.whatever, exists: true}
            effect: deny
        """)
    assert check(project.root) == []


def test_field_warning_inside_nested_conditions(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: a
            tool: Read
            when:
              any:
                - {field: tool_input.file_path, ends_with: .env}
                - not: {field: tool_input.filepath, exists: true}
            effect: deny
        """)
    [p] = check(project.root)
    assert p.severity == "warning" and p.line == 8
    assert "tool_input.file_path" in p.message


def test_engine_load_raises_policy_error_with_all_problems(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - {name: a, effect: nope}
          - {name: b, effect: deny, when: {field: x, matches: "("}}
        """)
    with pytest.raises(PolicyError) as info:
        project.engine()
    assert [p.line for p in info.value.problems] == [3, 4]
    assert info.value.file == "warden.yaml"


def test_warnings_do_not_stop_loading(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - {name: a, tool: Bash, when: {field: tool_input.comand, exists: true}, effect: deny}
        """)
    engine = project.engine()
    assert [w.severity for w in engine.warnings] == ["warning"]


def test_yaml_error_and_schema_error_in_two_files_both_reported(project: Project) -> None:
    project.write(".warden/a.yaml", "version: 1\npolicies: [\n")
    project.write(".warden/b.yaml", "version: 2\n")
    probs = check(project.root)
    assert {p.file for p in probs} == {str(Path(".warden") / "a.yaml"),
                                       str(Path(".warden") / "b.yaml")}
    assert all(p.line is not None for p in probs)


def test_version_is_required(project: Project) -> None:
    project.policy("policies: []\n")
    [p] = check(project.root)
    assert "missing required key 'version'" in p.message and p.line == 1


def test_field_warning_for_a_misspelt_event_field(project: Project) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: a
            event: UserPromptSubmit
            when: {field: promt, matches: secret}
            effect: deny
          - name: b
            event: [PreToolUse, PostToolUse]
            when:
              any:
                - {field: tool_inputs.command, exists: true}
                - {field: my_own_field, exists: true}
                - {field: tool_response.ok, equals: true}
            effect: deny
          - name: c
            event: file
            when: {field: documnet.on, exists: true}
            effect: deny
          - name: d
            event: action
            when: {field: params.env, equals: prod}
            effect: deny
          - name: e
            when: {field: promt, exists: true}
            effect: deny
        """)
    probs = check(project.root)
    assert all(p.severity == "warning" for p in probs)
    got = {p.line: p.message for p in probs}
    assert "UserPromptSubmit input has no field 'promt' (did you mean 'prompt'?)" in got[5]
    assert "'tool_inputs' (did you mean 'tool_input'?)" in got[11]
    assert "'documnet' (did you mean 'document'?)" in got[17]
    # far from every known field (custom input), known fields, rules for any event: no warning
    assert sorted(got) == [5, 11, 17]
    assert {p.severity for p in check(project.root, strict=True)} == {"error"}
