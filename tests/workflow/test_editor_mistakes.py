"""Twenty typical mistakes, each through `warden validate`: exactly ONE problem line, at the
line of the mistake, with a message that says what to do.

(The schema's own `examples`/`defaultSnippets` are checked in tests/test_schema_examples.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from workflow_support import Runner

BASE = """\
# yaml-language-server: $schema=https://warden.dev/schema/warden.schema.json
version: 1
policies:
  - name: ok-rule
    event: PreToolUse
    tool: Bash
    when:
      field: tool_input.command
      matches: 'rm'
    effect: deny
"""

# (id, text appended to BASE (or a whole file), the line the problem must point at
#  (identified by a unique substring), words the message must contain)
MISTAKES: list[tuple[str, str, str, list[str]]] = [
    ("typo-in-rule-key", "  - name: r\n    efect: deny\n", "efect:",
     ["unknown key 'efect'", "did you mean 'effect'"]),
    ("wrong-effect", "  - name: r\n    effect: block\n", "effect: block",
     ['"block" is not allowed', '"deny"']),
    ("regex-as-a-list", "  - name: r\n    when: {field: a, matches: [x, y]}\n    effect: deny\n",
     "matches: [x, y]", ["expected string, got a list"]),
    ("missing-name", "  - effect: deny\n    event: PreToolUse\n", "- effect: deny",
     ["missing required key 'name'"]),
    ("missing-effect", "  - name: r\n    event: PreToolUse\n", "- name: r",
     ["missing required key 'effect'"]),
    ("name-not-a-slug", "  - name: No_Caps\n    effect: deny\n", "No_Caps",
     ["invalid name", "lowercase"]),
    ("operator-typo", "  - name: r\n    when: {field: a, equal: b}\n    effect: deny\n",
     "equal: b", ["unknown key 'equal'", "did you mean 'equals'"]),
    ("two-operators", "  - name: r\n    when: {field: a, equals: b, matches: c}\n"
     "    effect: deny\n", "equals: b, matches: c", ["exactly one operator", "equals, matches"]),
    ("field-without-operator", "  - name: r\n    when: {field: a}\n    effect: deny\n",
     "when: {field: a}", ["exactly one operator", "found: none"]),
    ("invalid-regex", "  - name: r\n    when: {field: a, matches: '(unclosed'}\n"
     "    effect: deny\n", "(unclosed", ["invalid RE2 regex", "missing )"]),
    ("duration-in-words", "  - name: r\n    when: {state: {event: PostToolUse, within: 10 minutes}}"
     "\n    effect: deny\n", "10 minutes", ["not a duration", "30s, 10m"]),
    ("weekday-spelt-out", "  - name: r\n    when: {time: {days: [monday]}}\n    effect: deny\n",
     "monday", ['"monday" is not allowed', "did you mean 'mon'"]),
    ("clock-with-am", "  - name: r\n    when: {time: {after: '9am'}}\n    effect: deny\n",
     "9am", ["not a time of day", "HH:MM"]),
    ("when-as-a-list", "  - name: r\n    when:\n      - {field: a, equals: b}\n"
     "    effect: deny\n", "- {field: a, equals: b}", ["expected object, got a list"]),
    ("top-level-typo", "polices: []\n", "polices:",
     ["unknown key 'polices'", "did you mean 'policies'"]),
    ("exists-not-boolean", "  - name: r\n    when: {field: a, exists: maybe}\n    effect: deny\n",
     "exists: maybe", ["expected boolean, got a string"]),
    ("run-as-a-string", "  - name: r\n    effect: deny\n    then:\n      - run: logger blocked\n",
     "run: logger", ["expected array, got a string"]),
    ("unclosed-template", "  - name: r\n    effect: deny\n    message: 'bad {tool_input.command'\n",
     "message: 'bad", ["bad template", "unclosed '{'"]),
    ("duplicate-name", "  - name: ok-rule\n    effect: deny\n",
     "  - name: ok-rule\n    effect: deny",
     ["duplicate policy name 'ok-rule'", "first defined at warden.yaml:4"]),
    ("tool-matches-typo", "  - name: r\n    tool: {match: 'Write|Edit'}\n    effect: deny\n",
     "match: 'Write", ["unknown key 'match'", "did you mean 'matches'"]),
    ("gate-kind-typo", "gates:\n  g1: {kind: aproval}\n", "kind: aproval",
     ['"aproval" is not allowed', "did you mean 'approval'"]),
    ("action-without-steps", "actions:\n  deploy:\n    description: x\n", "deploy:",
     ["missing required key 'steps'"]),
    ("event-typo", "  - name: r\n    event: PreToolUsee\n    effect: deny\n", "PreToolUsee",
     ["unknown event 'PreToolUsee'", "did you mean 'PreToolUse'"]),
    ("mode-typo", "settings:\n  mode: enforcing\n", "enforcing",
     ['"enforcing" is not allowed', "did you mean 'enforce'"]),
]

LINE = re.compile(r"^warden\.yaml:(\d+):(\d+): (?:warning: )?(.*)$")


def test_there_are_at_least_twenty() -> None:
    assert len(MISTAKES) >= 20
    assert len({m[0] for m in MISTAKES}) == len(MISTAKES)


@pytest.mark.parametrize(("name", "fragment", "where", "words"), MISTAKES,
                         ids=[m[0] for m in MISTAKES])
def test_one_mistake_one_error(name: str, fragment: str, where: str, words: list[str],
                               tmp_path: Path, warden: Runner) -> None:
    text = BASE + fragment
    (tmp_path / "warden.yaml").write_text(text, encoding="utf-8")
    r = warden("validate", "--strict", cwd=tmp_path)
    assert r.returncode == 78, r.stdout + r.stderr
    problems = [line for line in (r.stdout + r.stderr).splitlines()
                if not line.startswith("warden: ")]
    assert len(problems) == 1, problems
    m = LINE.match(problems[0])
    assert m, problems[0]
    want_line = text[: text.index(where)].count("\n") + 1
    if where.startswith("  - name:") and "\n" in where:  # the duplicate: the second one
        want_line = text[: text.rindex(where)].count("\n") + 1
    assert int(m.group(1)) == want_line, (problems[0], want_line)
    for w in words:
        assert w in m.group(3), (w, problems[0])
