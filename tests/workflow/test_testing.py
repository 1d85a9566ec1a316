"""`warden test`: YAML test suites, pytest-like output, coverage, formats, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from workflow_support import AGENT_POLICY, EXAMPLES, Runner, put

PASSING = """\
    version: 1
    tests:
      - name: rm -rf / is denied with a hint
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: "rm -rf /"}}
        expect:
          decision: deny
          matched: [no-rm-rf]
          feedback: ["consider trash"]
          exit_code: 2
      - name: ls is allowed
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: ls}}
        expect: {decision: allow, matched: [], exit_code: 0}
      - name: edit after a recent read is allowed
        now: "2024-05-06T10:00:00Z"
        input: {hook_event_name: PreToolUse, tool_name: Edit, tool_input: {file_path: a.py}}
        state:
          - ago: 5m
            input: {hook_event_name: PostToolUse, tool_name: Read, tool_input: {file_path: a.py}}
        expect: {decision: allow}
      - name: a read 15 minutes ago is too old
        now: "2024-05-06T10:00:00Z"
        input: {hook_event_name: PreToolUse, tool_name: Edit, tool_input: {file_path: a.py}}
        state:
          - ago: 15m
            input: {hook_event_name: PostToolUse, tool_name: Read, tool_input: {file_path: a.py}}
        expect: {decision: ask, matched: [read-before-edit], exit_code: 3}
      - name: edit without read asks
        input: {hook_event_name: PreToolUse, tool_name: Edit, tool_input: {file_path: a.py}}
        expect: {decision: ask}
      - name: push from CI asks
        env: {CI: "true"}
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: git push}}
        expect: {decision: ask, matched: [ci-push]}
      - name: push outside CI is fine (the real environment is not used)
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: git push}}
        expect: {decision: allow}
      - name: deploy on a Saturday is denied
        now: "2024-05-11T10:00:00Z"
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: deploy web}}
        expect: {decision: deny, matched: [office-hours]}
      - name: deploy on a Monday morning is allowed
        now: "2024-05-06T10:00:00Z"
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: deploy web}}
        expect: {decision: allow}
"""

FAILING = """\
    version: 1
    tests:
      - name: passes
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: ls}}
        expect: {decision: allow}
      - name: wrong on every count
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: ls}}
        expect:
          decision: deny
          matched: [no-rm-rf]
          feedback: [nope]
          exit_code: 2
"""


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    put(root / "warden.yaml", AGENT_POLICY)
    return root


def test_passing_suite(proj: Path, warden: Runner) -> None:
    put(proj / "tests" / "agent.warden-test.yaml", PASSING)
    r = warden("test", cwd=proj)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "9 passed, 0 failed"
    assert "tests/agent.warden-test.yaml ........." in r.stdout


def test_failures_show_expected_and_actual(proj: Path, warden: Runner) -> None:
    put(proj / "t.warden-test.yaml", FAILING)
    r = warden("test", cwd=proj)
    assert r.returncode == 1
    out = r.stdout
    assert out.strip().splitlines()[-1] == "1 passed, 1 failed"
    assert "FAILED t.warden-test.yaml:6 wrong on every count" in out
    assert "decision: expected 'deny', got 'allow'" in out
    assert "matched: expected ['no-rm-rf'], got []" in out
    assert "feedback: expected a message containing 'nope', got []" in out
    assert "exit_code: expected 2, got 0" in out
    assert "reason: no rule matched: default allow" in out
    assert "FAILED t.warden-test.yaml:3" not in out


def test_matched_is_an_exact_ordered_list(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "warden.yaml", """\
        version: 1
        settings: {combine: deny-overrides}
        policies:
          - {name: a, event: file, when: {field: document.x, equals: 1}, effect: deny}
          - {name: b, event: file, when: {field: document.y, equals: 1}, effect: deny}
        """)
    put(tmp_path / "t.warden-test.yaml", """\
        version: 1
        tests:
          - name: both in order
            input: {event: file, path: x.yaml, format: yaml, document: {x: 1, y: 1}}
            expect: {matched: [a, b]}
          - name: wrong order fails
            input: {event: file, path: x.yaml, format: yaml, document: {x: 1, y: 1}}
            expect: {matched: [b, a]}
          - name: a subset fails
            input: {event: file, path: x.yaml, format: yaml, document: {x: 1, y: 1}}
            expect: {matched: [a]}
        """)
    r = warden("test", cwd=tmp_path)
    assert r.stdout.strip().splitlines()[-1] == "1 passed, 2 failed"


def test_feedback_expectations(tmp_path: Path, warden: Runner) -> None:
    """``feedback: [..]``: each string in some message; ``feedback: []``: no feedback."""
    put(tmp_path / "warden.yaml", """\
        version: 1
        policies:
          - {name: w, event: file, when: {field: document.x, equals: 1}, effect: warn,
             message: "x is one"}
        """)
    put(tmp_path / "t.warden-test.yaml", """\
        version: 1
        tests:
          - name: substring present
            input: {event: file, path: a.yaml, format: yaml, document: {x: 1}}
            expect: {feedback: [is one]}
          - name: none expected, none given
            input: {event: file, path: a.yaml, format: yaml, document: {x: 2}}
            expect: {feedback: []}
          - name: none expected, one given
            input: {event: file, path: a.yaml, format: yaml, document: {x: 1}}
            expect: {feedback: []}
        """)
    r = warden("test", cwd=tmp_path)
    assert r.stdout.strip().splitlines()[-1] == "2 passed, 1 failed", r.stdout
    assert "feedback: expected none, got ['x is one']" in r.stdout


def test_yml_test_files_are_tests_not_policies(tmp_path: Path, warden: Runner) -> None:
    """``*.warden-test.yml`` is a test file like ``*.warden-test.yaml``: found by ``warden
    test`` and never loaded as a policy from ``.warden/``."""
    put(tmp_path / ".warden" / "rules.yaml", """\
        version: 1
        policies:
          - {name: no-rm, tool: Bash, when: {field: tool_input.command, contains: rm},
             effect: deny}
        """)
    put(tmp_path / ".warden" / "rules.warden-test.yml", """\
        version: 1
        tests:
          - name: rm is denied
            input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: rm x}}
            expect: {decision: deny, matched: [no-rm]}
        """)
    r = warden("validate", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = warden("test", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "1 passed, 0 failed"


def test_keyword_selects_cases(proj: Path, warden: Runner) -> None:
    put(proj / "t.warden-test.yaml", PASSING)
    r = warden("test", "-k", "DEPLOY", cwd=proj)
    assert r.returncode == 0
    assert "7 deselected by -k" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "2 passed, 0 failed"
    r = warden("test", "-k", "no such test", cwd=proj)
    assert r.returncode == 1
    assert "no test case selected" in r.stderr


def test_policies_key_is_relative_to_the_test_file(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "policy" / "rules.yaml", AGENT_POLICY)
    put(tmp_path / "suite" / "x.warden-test.yaml", """\
        version: 1
        policies: [../policy/rules.yaml]
        tests:
          - name: denied
            input:
              {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: mkfs /dev/sda}}
            expect: {decision: deny}
        """)
    r = warden("test", "suite", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 0 failed" in r.stdout


def test_user_policies_never_take_part(proj: Path, warden: Runner, home: Path) -> None:
    put(home / "config" / "warden" / "deny-all.yaml", """\
        version: 1
        policies:
          - {name: deny-everything, effect: deny}
        """)
    put(proj / "t.warden-test.yaml", PASSING)
    r = warden("test", cwd=proj)
    assert r.returncode == 0, r.stdout


def test_invalid_test_file_exits_78_with_position(proj: Path, warden: Runner) -> None:
    put(proj / "bad.warden-test.yaml", """\
        version: 1
        tests:
          - name: typo
            input: {hook_event_name: PreToolUse}
            expect: {decison: deny}
        """)
    r = warden("test", cwd=proj)
    assert r.returncode == 78
    assert "bad.warden-test.yaml:5:14: unknown key 'decison' (did you mean 'decision'?)" in (
        r.stderr)


def test_broken_policy_exits_78(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "warden.yaml", "version: 1\npolicies:\n  - name: x\n    effect: nope\n")
    put(tmp_path / "t.warden-test.yaml", PASSING)
    r = warden("test", cwd=tmp_path)
    assert r.returncode == 78
    assert "warden.yaml:4:13:" in r.stderr


def test_no_test_files_is_a_failure(proj: Path, warden: Runner) -> None:
    r = warden("test", cwd=proj)
    assert r.returncode == 1
    assert "no test files" in r.stderr


def test_coverage_reports_unexercised_rules_and_branches(proj: Path, warden: Runner) -> None:
    put(proj / "t.warden-test.yaml", """\
        version: 1
        tests:
          - name: rm
            now: "2024-05-06T10:00:00Z"
            input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: "rm -rf /"}}
            expect: {decision: deny}
        """)
    r = warden("test", "--coverage", cwd=proj)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line.strip() for line in r.stdout.splitlines()]
    # 5 rules: no-rm-rf and trash-hint applied. 6 branches: any[0] of no-rm-rf true;
    # all[1] of office-hours (`not time` on a Monday 10:00) false, like the others.
    assert "warden.yaml  rules 2/5  branches 1/6  27.3%" in lines
    assert lines[lines.index("warden.yaml  rules 2/5  branches 1/6  27.3%") + 1:][:8] == [
        "warden.yaml:10:11: branch 2 of any: in rule no-rm-rf never true",
        "warden.yaml:19:5: rule read-before-edit never applied",
        "warden.yaml:27:5: rule ci-push never applied",
        "warden.yaml:32:11: branch 1 of all: in rule ci-push never true",
        "warden.yaml:33:11: branch 2 of all: in rule ci-push never true",
        "warden.yaml:35:5: rule office-hours never applied",
        "warden.yaml:40:11: branch 1 of all: in rule office-hours never true",
        "warden.yaml:41:11: branch 2 of all: in rule office-hours never true",
    ]
    assert "TOTAL        3/11  27.3%" in lines
    r = warden("test", "--min-coverage", "95", cwd=proj)
    assert r.returncode == 1
    assert "coverage 27.3% is below --min-coverage 95%" in r.stderr
    r = warden("test", "--min-coverage", "27", cwd=proj)
    assert r.returncode == 0


def test_full_coverage(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "warden.yaml", """\
        version: 1
        policies:
          - name: r
            event: PreToolUse
            when:
              any:
                - {field: a, equals: 1}
                - all:
                    - {field: b, equals: 2}
                    - {field: c, equals: 3}
            effect: deny
        """)
    put(tmp_path / "t.warden-test.yaml", """\
        version: 1
        tests:
          - name: a
            input: {hook_event_name: PreToolUse, a: 1}
            expect: {decision: deny}
          - name: b and c
            input: {hook_event_name: PreToolUse, b: 2, c: 3}
            expect: {decision: deny}
        """)
    r = warden("test", "--min-coverage", "100", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    cov = json.loads(r.stdout)["coverage"]
    assert cov["percent"] == 100.0
    assert cov["files"][0]["rules"] == 1 and cov["files"][0]["branches"] == 4


def test_json_format(proj: Path, warden: Runner) -> None:
    put(proj / "t.warden-test.yaml", FAILING)
    r = warden("test", "--format", "json", cwd=proj)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert (doc["passed"], doc["failed"]) == (1, 1)
    case = doc["files"][0]["cases"][1]
    assert case["name"] == "wrong on every count" and not case["passed"]
    assert case["decision"]["decision"] == "allow"


def test_junit_format_parses_with_counts(proj: Path, warden: Runner) -> None:
    put(proj / "a.warden-test.yaml", FAILING)
    put(proj / "b.warden-test.yaml", PASSING)
    r = warden("test", "--format", "junit", cwd=proj)
    assert r.returncode == 1
    root = ET.fromstring(r.stdout)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("11", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["a.warden-test.yaml", "b.warden-test.yaml"]
    assert [(s.get("tests"), s.get("failures")) for s in suites] == [("2", "1"), ("9", "0")]
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1
    assert "decision: expected 'deny'" in (failures[0].text or "")


def test_observe_mode_tests_see_exit_code_0(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "warden.yaml", """\
        version: 1
        settings: {mode: observe}
        policies:
          - {name: d, effect: deny}
        """)
    put(tmp_path / "t.warden-test.yaml", """\
        version: 1
        tests:
          - name: denied but not enforced
            input: {hook_event_name: PreToolUse}
            expect: {decision: deny, exit_code: 0}
        """)
    r = warden("test", cwd=tmp_path)
    assert r.returncode == 0, r.stdout


def test_examples_pass(warden: Runner) -> None:
    """`warden test examples/` is part of `make test` (through pre-commit)."""
    if not any(EXAMPLES.rglob("*.warden-test.yaml")):
        pytest.skip("no example tests yet")
    r = warden("test", str(EXAMPLES), cwd=EXAMPLES.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1].endswith(" passed, 0 failed")
