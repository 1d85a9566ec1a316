"""`warden fmt`: canonical key order and layout, comments and quoting kept, idempotent."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from workflow_support import EXAMPLES, Runner, dedent, put

from warden.load import parse_yaml

EXAMPLE_FILES = sorted(
    p for p in EXAMPLES.rglob("*.yaml")
    if p.name == "warden.yaml" or p.name.endswith(".warden-test.yaml") or ".warden" in p.parts
)


def comments(text: str) -> tuple[Counter[str], list[str]]:
    """Full-line comments (a multiset) and the tails of lines holding a ' #'."""
    full: Counter[str] = Counter()
    tails = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            full[s] += 1
        elif " #" in line:
            tails.append(line[line.index(" #"):].strip())
    return full, tails


def test_examples_exist() -> None:
    assert EXAMPLE_FILES, "no example policy or test files found"


@pytest.mark.parametrize("src", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_fmt_round_trips_every_example_file(src: Path, tmp_path: Path, warden: Runner) -> None:
    copy = tmp_path / src.parent.name
    shutil.copytree(src.parent, copy)
    target = copy / src.name
    before = target.read_text(encoding="utf-8")
    r = warden("fmt", str(target), cwd=copy)
    assert r.returncode == 0, r.stderr
    after = target.read_text(encoding="utf-8")
    # idempotent
    r = warden("fmt", "--check", str(target), cwd=copy)
    assert r.returncode == 0, r.stdout + r.stderr
    r = warden("fmt", str(target), cwd=copy)
    assert target.read_text(encoding="utf-8") == after
    # comments and the modeline kept
    assert before.splitlines()[0] == after.splitlines()[0]
    full_before, tails = comments(before)
    full_after, _ = comments(after)
    assert full_before == full_after
    for tail in tails:
        assert tail in after, tail
    # the same data, and still valid (and still passing its tests)
    assert parse_yaml(before, "a")[0].data == parse_yaml(after, "b")[0].data
    r = warden("validate", str(copy), cwd=copy)
    assert r.returncode == 0, r.stdout + r.stderr
    if any(copy.glob("*.warden-test.yaml")):
        r = warden("test", str(copy), cwd=copy)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


MESSY = """\
    # yaml-language-server: $schema=../schema/warden.schema.json
    # A messy but valid policy file.

    policies:
    # first rule
    - effect: deny          # deny it
      when:
        matches: '\\brm\\s+-rf\\b'
        field: tool_input.command
      # the tool comes from Claude Code
      tool: Bash
      name: "no-rm-rf"
      event: PreToolUse

    # ---- second rule ----
    - {message: "hint: {tool_input.command}", name: hint, effect: warn, tool: Bash}

    gates:
      office: {when: {time: {days: [fri]}}, kind: condition}
    settings:
      default: allow
      mode: enforce
    version: 1
"""

CANONICAL = """\
    # yaml-language-server: $schema=../schema/warden.schema.json
    # A messy but valid policy file.

    version: 1
    settings:
      mode: enforce
      default: allow
    policies:
      # first rule
      - name: "no-rm-rf"
        event: PreToolUse
        # the tool comes from Claude Code
        tool: Bash
        when:
          field: tool_input.command
          matches: '\\brm\\s+-rf\\b'
        effect: deny        # deny it

      # ---- second rule ----
      - {name: hint, tool: Bash, effect: warn, message: "hint: {tool_input.command}"}

    gates:
      office: {kind: condition, when: {time: {days: [fri]}}}
"""


def test_canonical_order_and_layout(tmp_path: Path, warden: Runner) -> None:
    f = put(tmp_path / "warden.yaml", MESSY)
    r = warden("fmt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "reformatted warden.yaml" in r.stdout
    assert f.read_text() == dedent(CANONICAL)
    assert warden("validate", cwd=tmp_path).returncode == 0


def test_check_lists_files_and_writes_nothing(tmp_path: Path, warden: Runner) -> None:
    f = put(tmp_path / "warden.yaml", MESSY)
    put(tmp_path / ".warden" / "extra.yaml", "version: 1\npolicies: []\n")
    t = put(tmp_path / "t.warden-test.yaml", """\
        version: 1
        tests:
        - expect: {decision: deny}
          name: x
          input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: rm -rf a}}
        """)
    r = warden("fmt", "--check", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.splitlines() == ["would reformat warden.yaml",
                                     "would reformat t.warden-test.yaml"]
    assert "2 file(s) would be reformatted, 1 unchanged" in r.stderr
    assert f.read_text() == dedent(MESSY)
    r = warden("fmt", "--diff", cwd=tmp_path)
    assert r.returncode == 1
    assert "+  - name: x" in r.stdout and "-- expect: {decision: deny}" in r.stdout
    assert warden("fmt", cwd=tmp_path).returncode == 0
    assert t.read_text().splitlines()[2:5] == [
        "  - name: x",
        "    input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: "
        "{command: rm -rf a}}",
        "    expect: {decision: deny}",
    ]
    r = warden("fmt", "--check", cwd=tmp_path)
    assert r.returncode == 0
    assert "0 file(s) would be reformatted, 3 unchanged" in r.stderr


def test_quoting_scalars_and_block_text_are_kept(tmp_path: Path, warden: Runner) -> None:
    text = """\
        version: 1
        policies:
          - message: |
              line one
              line two

            effect: deny
            name: 'quoted'
            when: {field: "a", in: [yes, "no", 'on', 0o17, 1e3, ~, 2024-01-01]}
        """
    f = put(tmp_path / "warden.yaml", text)
    assert warden("fmt", cwd=tmp_path).returncode == 0
    out = f.read_text()
    assert "name: 'quoted'" in out
    assert """when: {field: "a", in: [yes, "no", 'on', 0o17, 1e3, null, 2024-01-01]}""" in out
    assert out.endswith("    message: |\n      line one\n      line two\n")
    assert out.index("name:") < out.index("when:") < out.index("effect:") < out.index("message:")
    assert parse_yaml(dedent(text), "a")[0].data == parse_yaml(out, "b")[0].data


def test_unreadable_yaml_exits_78(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "warden.yaml", "version: 1\npolicies: [\n")
    r = warden("fmt", "warden.yaml", cwd=tmp_path)
    assert r.returncode == 78
    assert r.stderr.startswith("warden.yaml:3:1: invalid YAML")
    put(tmp_path / "warden.yaml", "version: 1\nversion: 1\n")
    r = warden("fmt", "--check", cwd=tmp_path)
    assert r.returncode == 78
    assert "warden.yaml:2:1: duplicate key 'version'" in r.stderr


def test_no_project_is_an_error(tmp_path: Path, warden: Runner) -> None:
    r = warden("fmt", cwd=tmp_path)
    assert r.returncode == 78
    assert "no policy files found" in r.stderr
