"""The bad-input table (issue 7, item 1): hostile event JSON for ``warden eval`` and hostile
policy YAML for ``warden validate`` / ``warden eval``.

Every case asserts the exit code of DESIGN §4, a clean error on stderr (one line, no
traceback, nothing on stdout) and that no state or file changed (the project, the user
config and the plan cache are snapshotted around the call).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from wardentest import Env, Project, Runner, bash

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rel_util import assert_clean_error, diff, snapshot

MiB = 1024 * 1024

POLICY = r"""
version: 1
policies:
  - name: no-rm-rf-root
    event: PreToolUse
    tool: Bash
    when:
      field: tool_input.command
      matches: '\brm\s+-\w*r\w*\s+/(\s|$)'
    effect: deny
    message: "Refusing to delete /: {tool_input.command}"
  - name: nested-backtrack
    when: {field: s, matches: '(a+)+$'}
    effect: deny
  - name: alternation-backtrack
    when: {field: s, matches: '^(a|aa)+$'}
    effect: deny
  - name: star-backtrack
    when: {field: s, matches: '(.*a){12}x'}
    effect: deny
  - name: words-backtrack
    when: {field: t, matches: '^(\w+\s?)*$'}
    effect: ask
  - name: nul-key
    when: {field: "k", equals: "a\u0000b"}
    effect: deny
    message: "NUL value matched"
"""


@pytest.fixture
def proj(project: Project, run_warden: Runner, xdg: Env) -> Project:
    project.policy(POLICY)
    # Warm the plan cache so that a later bad input can be checked to write nothing at all.
    ok = run_warden("eval", input=json.dumps(bash("ls")))
    assert ok.returncode == 0, ok.stderr
    return project


def _state(root: Path, xdg: Env) -> tuple[Path, ...]:
    return (root, xdg.config, xdg.cache)


def run_unchanged(run_warden: Runner, root: Path, xdg: Env, *args: str,
                  input: bytes | str | None = None, timeout: float = 120) -> Any:
    before = snapshot(*_state(root, xdg))
    proc = run_warden(*args, input=input, cwd=root, timeout=timeout)
    after = snapshot(*_state(root, xdg))
    assert diff(before, after) == [], f"files changed: {diff(before, after)}"
    assert not (root / ".warden" / "state.db").exists()
    return proc


# ================================================================ event input (exit 65)


def _deep_list(n: int) -> bytes:
    return b'{"a":' + b"[" * n + b"]" * n + b"}"


def _deep_obj(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


BAD_INPUTS: list[tuple[str, bytes, str]] = [
    ("empty stdin", b"", "empty input"),
    ("only whitespace", b" \n\t\r\n", "empty input"),
    ("invalid JSON", b'{"tool_name": "Bash",', "invalid JSON"),
    ("single quotes", b"{'a': 1}", "invalid JSON"),
    ("trailing garbage", b'{"a": 1} {"b": 2}', "invalid JSON"),
    ("trailing comma", b'{"a": 1,}', "invalid JSON"),
    ("comment", b'{"a": 1 /* x */}', "invalid JSON"),
    ("NaN is not JSON", b'{"a": NaN}', "NaN"),
    ("Infinity is not JSON", b'{"a": -Infinity}', "Infinity"),
    ("array", b"[1, 2]", "JSON object"),
    ("string", b'"rm -rf /"', "JSON object"),
    ("number", b"42", "JSON object"),
    ("null", b"null", "JSON object"),
    ("true", b"true", "JSON object"),
    ("10,000-deep arrays", _deep_list(10_000), "nested deeper"),
    ("10,000-deep objects", _deep_obj(10_000), "nested deeper"),
    ("10,000-deep top-level array", b"[" * 10_000 + b"]" * 10_000, "nested deeper"),
    ("257 levels", _deep_list(256), "nested deeper than 256"),
    ("invalid UTF-8 byte", b'{"a": "\xff"}', "not valid UTF-8"),
    ("truncated UTF-8 sequence", b'{"a": "\xe2\x82"}', "not valid UTF-8"),
    ("overlong UTF-8", b'{"a": "\xc0\xaf"}', "not valid UTF-8"),
    ("UTF-8-encoded surrogate", b'{"a": "\xed\xa0\x80"}', "not valid UTF-8"),
    ("UTF-16", json.dumps({"a": 1}).encode("utf-16"), "not valid UTF-8"),
    ("raw NUL inside a string", b'{"a": "x\x00y"}', "invalid JSON"),
    ("raw NUL outside strings", b'{"a": 1}\x00', "invalid JSON"),
    ("raw control char in string", b'{"a": "x\x01y"}', "invalid JSON"),
    ("integer beyond the digit limit", b'{"a": ' + b"9" * 5000 + b"}", "invalid JSON"),
]


@pytest.mark.parametrize(("raw", "message"), [(c[1], c[2]) for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_event_input_exits_65(proj: Project, run_warden: Runner, xdg: Env, raw: bytes,
                                  message: str) -> None:
    proc = run_unchanged(run_warden, proj.root, xdg, "eval", input=raw)
    err = assert_clean_error(proc, 65, contains=message)
    assert err.startswith("warden: ")


def test_50_mb_input_on_stdin_is_refused(proj: Project, run_warden: Runner, xdg: Env) -> None:
    raw = b'{"tool_name": "Bash", "s": "' + b"a" * (50 * MiB) + b'"}'
    proc = run_unchanged(run_warden, proj.root, xdg, "eval", input=raw)
    assert_clean_error(proc, 65, contains="larger than 16 MiB")


def test_50_mb_input_file_is_refused(proj: Project, run_warden: Runner, xdg: Env,
                                     tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.write(b'{"s": "')
        for _ in range(50):
            fh.write(b"a" * MiB)
        fh.write(b'"}')
    proc = run_unchanged(run_warden, proj.root, xdg, "eval", "--input", str(big))
    assert_clean_error(proc, 65, contains="larger than 16 MiB")


def test_input_of_exactly_16_mib_is_accepted(proj: Project, run_warden: Runner,
                                             xdg: Env) -> None:
    head, tail = b'{"tool_name": "Bash", "s": "', b'"}'
    raw = head + b"b" * (16 * MiB - len(head) - len(tail)) + tail
    assert len(raw) == 16 * MiB
    proc = run_warden("eval", input=raw, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["decision"] == "allow"
    over = run_unchanged(run_warden, proj.root, xdg, "eval", input=raw + b" ")
    assert_clean_error(over, 65, contains="larger than 16 MiB")


def test_256_levels_are_accepted(proj: Project, run_warden: Runner) -> None:
    # The top object is level 1; 255 nested lists make 256.
    proc = run_warden("eval", input=_deep_list(255))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["decision"] == "allow"


def test_missing_input_file_is_a_usage_error(proj: Project, run_warden: Runner,
                                             xdg: Env) -> None:
    proc = run_unchanged(run_warden, proj.root, xdg, "eval", "--input", "/nonexistent/x.json")
    assert_clean_error(proc, 64)


# ------------------------------------------------------- valid but unusual inputs (exit 0/2)


def _eval(run_warden: Runner, raw: bytes | str) -> dict[str, Any]:
    proc = run_warden("eval", input=raw, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 2, 3), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert proc.returncode == {"allow": 0, "deny": 2, "ask": 3}[doc["decision"]]
    return doc


def test_escaped_nul_in_strings_is_valid_input(proj: Project, run_warden: Runner) -> None:
    # A JSON "\u0000" escape is a valid string character, not an error.
    doc = _eval(run_warden, r'{"hook_event_name": "PreToolUse", "tool_name": "Bash", '
                            r'"tool_input": {"command": "ls \u0000 -la"}}')
    assert doc["decision"] == "allow"
    doc = _eval(run_warden, r'{"hook_event_name": "PreToolUse", "tool_name": "Bash", '
                            r'"tool_input": {"command": "rm -rf / \u0000"}}')
    assert doc["decision"] == "deny"
    assert doc["reason"] == "Refusing to delete /: rm -rf / \x00"
    assert _eval(run_warden, r'{"k": "a\u0000b"}')["reason"] == "NUL value matched"
    assert _eval(run_warden, r'{"a\u0000b": {"\u0000": "\u0000"}}')["decision"] == "allow"


def test_lone_surrogate_escapes_are_evaluated_not_crashed(proj: Project,
                                                          run_warden: Runner) -> None:
    # "\ud800" is valid JSON syntax but not Unicode: RE2 and UTF-8 output cannot take it.
    # It must never become an internal error (that would hand the decision to on_error).
    doc = _eval(run_warden, r'{"hook_event_name": "PreToolUse", "tool_name": "Bash", '
                            r'"tool_input": {"command": "rm -rf / \ud800"}}')
    assert doc["decision"] == "deny"
    doc = _eval(run_warden, r'{"hook_event_name": "Pre\udfff", "\ud800": "\udc00x"}')
    assert doc["decision"] == "allow"
    assert doc["input"]["event"].startswith("Pre")


def test_unicode_and_huge_numbers_are_fine(proj: Project, run_warden: Runner) -> None:
    doc = _eval(run_warden, json.dumps({
        "tool_name": "Bash", "tool_input": {"command": "rm -rf / 🦀 ünïcödé \u202e"},
        "hook_event_name": "PreToolUse", "n": 1e308, "m": -(10 ** 4000), "f": 1e-320,
        "max": 1.7976931348623157e308}, ensure_ascii=False))
    assert doc["decision"] == "deny"


def test_duplicate_keys_in_input_take_the_last(proj: Project, run_warden: Runner) -> None:
    doc = _eval(run_warden, '{"hook_event_name": "PreToolUse", "tool_name": "Bash", '
                            '"tool_input": {"command": "rm -rf /", "command": "ls"}}')
    assert doc["decision"] == "allow"


# ------------------------------------------------------ catastrophic backtracking (RE2)


@pytest.mark.parametrize(("field", "text", "decision"), [
    ("s", "a" * 100_000 + "!", "allow"),      # (a+)+$ / ^(a|aa)+$: exponential in `re`
    ("s", "a" * 100_000, "deny"),             # ... and they do match this one
    ("s", "a" * 50_000 + "b", "allow"),       # (.*a){12}x: polynomial blow-up in `re`
    ("t", "word " * 20_000 + "!", "allow"),   # ^(\w+\s?)*$
])
def test_backtracking_regexes_run_in_linear_time(proj: Project, run_warden: Runner,
                                                 field: str, text: str, decision: str) -> None:
    # Python's `re` would not finish these in a lifetime; RE2 does them in milliseconds.
    # No timing assertion beyond the subprocess timeout: it must simply finish.
    proc = run_warden("eval", input=json.dumps({field: text}), timeout=60)
    assert proc.returncode in (0, 2, 3), proc.stderr
    assert json.loads(proc.stdout)["decision"] == decision


# ============================================================== policy YAML (exit 78)


def _laughs(levels: int = 9) -> str:
    lines = ["version: 1", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", '
             '"lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _long_string_aliases() -> str:
    # Few aliases, but each expands a 1 MB string: 300 MB of policy text in effect.
    big = "y" * MiB
    rules = "".join(f"  - {{name: r{i}, effect: deny, message: *m}}\n" for i in range(1, 300))
    return (f"version: 1\npolicies:\n  - {{name: r0, effect: deny, message: &m '{big}'}}\n"
            + rules)


def _rule(when: str) -> str:
    return f"version: 1\npolicies:\n  - name: r\n    effect: deny\n    when: {when}\n"


BAD_POLICIES: list[tuple[str, bytes | str, str]] = [
    ("duplicate top-level key", "version: 1\npolicies: []\nversion: 1\n",
     "warden.yaml:3:1: duplicate key 'version'"),
    ("duplicate nested key",
     "version: 1\npolicies:\n  - name: a\n    effect: deny\n    effect: allow\n",
     "warden.yaml:5:5: duplicate key 'effect'"),
    ("tab indentation", "version: 1\npolicies:\n\t- name: a\n\t  effect: deny\n",
     "warden.yaml:3:1: invalid YAML: tab character"),
    ("billion laughs", _laughs(), "alias bomb"),
    ("long-string alias bomb", _long_string_aliases(), "alias bomb"),
    ("recursive alias", "version: 1\na: &a [1, *a]\n", "recursive alias"),
    ("10,000-deep flow sequences", "version: 1\nx: " + "[" * 10_000 + "]" * 10_000 + "\n",
     "nesting depth"),
    ("10,000-deep flow mappings", "version: 1\nx: " + "{a: " * 10_000 + "1" + "}" * 10_000
     + "\n", "nesting depth"),
    ("10,000-deep block sequences", "version: 1\nx:\n  " + "- " * 10_000 + "x\n",
     "nesting depth"),
    ("1 MB key", "version: 1\n" + "k" * MiB + ": 1\n", "invalid YAML"),
    ("integer key", "version: 1\n1: x\n", "mapping key '1' must be a string"),
    ("boolean key", "version: 1\ntrue: x\n", "mapping key 'true' must be a string"),
    ("null key", "version: 1\n~: x\n", "must be a string"),
    ("float key", "version: 1\n1.5: x\n", "must be a string"),
    ("collection key", "version: 1\n? [a, b]\n: x\n", "mapping keys must be plain strings"),
    ("document list", "- version: 1\n- version: 1\n",
     "expected a mapping at the top, found a list"),
    ("several documents", "version: 1\n---\nversion: 1\n", "expected one YAML document"),
    ("scalar document", "just text\n", "found a scalar"),
    ("empty file", "", "empty file"),
    ("only a comment", "# nothing here\n", "empty file"),
    ("invalid UTF-8", b"version: 1\npolicies: []\n# \xff\xfe\n", "not valid UTF-8"),
    ("NUL byte", b"version: 1\n\x00\n", "NUL byte"),
    ("integer beyond the digit limit", "version: " + "9" * 5000 + "\n", "number too large"),
    ("python object tag",
     "version: !!python/object/apply:os.system ['touch pwned']\n", "warden.yaml:1:10:"),
    ("unknown local tag", "version: !shell 'touch pwned'\n", "warden.yaml:1:10:"),
    ("backreference (not RE2)", _rule("{field: s, matches: '(a)\\1'}"), "invalid RE2 regex"),
    ("lookahead (not RE2)", _rule("{field: s, matches: 'a(?=b)'}"), "invalid RE2 regex"),
    ("regex repetition bomb", _rule("{field: s, matches: '((a{1000}){1000}){1000}'}"),
     "invalid RE2 regex"),
    ("glob that is not a valid class", _rule("{field: s, glob: '[z-a]'}"), "invalid glob"),
    ("glob negating nothing", _rule("{field: s, glob: '[!]'}"), "invalid glob"),
    ("duration overflow", _rule("{state: {within: " + "9" * 400 + "s}}"), "duration too large"),
    ("size overflow", _rule("{file: {path: x, larger_than: '" + "9" * 400 + "TB'}}"),
     "size too large"),
    ("unknown time zone", _rule("{time: {days: [mon], tz: ../../etc/passwd}}"),
     "unknown time zone"),
    ("bad template", "version: 1\npolicies:\n  - {name: r, effect: deny, message: 'x {a'}\n",
     "unclosed"),
]


@pytest.mark.parametrize(("text", "message"), [(c[1], c[2]) for c in BAD_POLICIES],
                         ids=[c[0] for c in BAD_POLICIES])
def test_bad_policy_validate_exits_78(project: Project, run_warden: Runner, xdg: Env,
                                      text: bytes | str, message: str) -> None:
    path = project.root / "warden.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    proc = run_unchanged(run_warden, project.root, xdg, "validate", "warden.yaml")
    err = assert_clean_error(proc, 78, lines=None, contains=message)
    problems, summary = err.strip("\n").split("\n")[:-1], err.strip("\n").split("\n")[-1]
    assert summary.startswith("warden: ") and "error" in summary
    assert problems and all(p.startswith("warden.yaml") for p in problems)
    assert all(len(p) < 2000 for p in problems), "error lines must stay readable"
    assert not (project.root / "pwned").exists()


@pytest.mark.parametrize(("text", "message"), [(c[1], c[2]) for c in BAD_POLICIES],
                         ids=[c[0] for c in BAD_POLICIES])
def test_bad_policy_eval_exits_78(project: Project, run_warden: Runner, xdg: Env,
                                  text: bytes | str, message: str) -> None:
    (project.root / "warden.yaml").write_bytes(text if isinstance(text, bytes)
                                               else text.encode())
    proc = run_unchanged(run_warden, project.root, xdg, "eval",
                         input=json.dumps(bash("rm -rf /")))
    err = assert_clean_error(proc, 78, lines=None, contains=message)
    assert all(line.startswith(("warden.yaml", "warden: ")) for line in err.splitlines())
    assert not list(xdg.plans.glob("*.plan")) if xdg.plans.exists() else True


def test_one_mb_scalar_is_handled(project: Project, run_warden: Runner, xdg: Env) -> None:
    # A 1 MB string value is legal YAML: validate and eval handle it, quickly and cleanly.
    big = "d" * MiB
    project.policy("version: 1\npolicies:\n  - name: big\n    effect: deny\n"
                   f"    description: '{big}'\n    when: {{field: s, equals: '{big}'}}\n")
    proc = run_warden("validate", "warden.yaml", timeout=60)
    assert proc.returncode == 0, proc.stderr[:2000]
    assert _eval(run_warden, json.dumps({"s": big}))["decision"] == "deny"
    assert _eval(run_warden, json.dumps({"s": big[:-1]}))["decision"] == "allow"


def test_few_aliases_of_a_long_string_are_still_fine(project: Project,
                                                     run_warden: Runner) -> None:
    # The alias limit must not refuse ordinary anchor use.
    msg = "m" * 10_000
    rules = "".join(f"  - {{name: r{i}, effect: warn, message: *m}}\n" for i in range(1, 5))
    project.policy(f"version: 1\npolicies:\n  - {{name: r0, effect: warn, message: &m '{msg}'}}\n"
                   + rules)
    assert _eval(run_warden, "{}")["feedback"][4]["message"] == msg


def test_yaml_python_tags_never_execute(project: Project, run_warden: Runner) -> None:
    project.policy("version: 1\npolicies:\n  - name: x\n    effect: deny\n"
                   "    message: !!python/object/apply:os.system ['touch pwned']\n")
    proc = run_warden("eval", input="{}")
    assert "Traceback" not in proc.stderr
    assert not (project.root / "pwned").exists()


# ======================================================== input that reaches odd corners


ODD_POLICY = """
version: 1
policies:
  - name: superscript-index
    when: {field: "a.²", equals: 1}
    effect: deny
  - name: arabic-index
    when: {field: "a.١", equals: 2}
    effect: deny
  - name: nul-argv
    when: {command: {run: ["true", "{c}"]}}
    effect: deny
  - name: env-bytes
    when: {env: {name: WARDEN_TEST_BYTES, matches: "x"}}
    effect: deny
"""


def test_odd_corners_never_crash(project: Project, run_warden: Runner) -> None:
    project.policy(ODD_POLICY)
    # A non-ASCII digit is a key, never a list index.
    assert _eval(run_warden, '{"a": [1, 2, 3]}')["decision"] == "allow"
    assert _eval(run_warden, '{"a": {"²": 1}}')["decision"] == "deny"
    # A NUL byte cannot be passed in argv: the command cannot start, the condition is false.
    doc = _eval(run_warden, r'{"c": "x\u0000y"}')
    assert doc["decision"] == "allow"
    assert any("could not start" in w for w in doc.get("warnings", []))
    # Undecodable bytes in the environment are matched as U+FFFD, never crash RE2.
    proc = run_warden("eval", input="{}", env={"WARDEN_TEST_BYTES": "a\udcffx"})
    assert proc.returncode == 2, proc.stderr


def test_check_with_non_ascii_digit_segment(project: Project, run_warden: Runner) -> None:
    # `warden check` locates findings itself: a superscript digit is a key there too.
    project.policy("version: 1\npolicies:\n"
                   "  - {name: sup, event: file, effect: deny,\n"
                   "     when: {field: 'document.a.²', exists: false}}\n"
                   "  - {name: sup2, event: file, effect: deny,\n"
                   "     when: {not: {field: 'document.a.²', exists: true}}}\n")
    (project.root / "d.json").write_text('{"a": [1, 2, 3]}')
    proc = run_warden("check", "d.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert "DENY sup" in proc.stdout


@pytest.mark.parametrize("command", ["eval", "explain"])
def test_endless_input_is_refused_not_buffered(proj: Project, xdg: Env, command: str) -> None:
    # /dev/zero never ends: warden must stop reading after the 16 MiB limit (exit 65)
    # instead of filling the memory.
    import os
    import subprocess

    from wardentest import WARDEN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "CLAUDE_"))}
    env.update(XDG_CONFIG_HOME=str(xdg.config), XDG_CACHE_HOME=str(xdg.cache))
    for args, stdin in (([command], "/dev/zero"), ([command, "--input", "/dev/zero"], None)):
        with open(stdin or os.devnull, "rb") as fh:
            proc = subprocess.run([WARDEN, *args], stdin=fh, capture_output=True, cwd=proj.root,
                                  env=env, timeout=60, check=False)
        assert proc.returncode == 65, proc.stderr
        assert b"larger than 16 MiB" in proc.stderr


def test_endless_and_huge_files_are_refused_everywhere(project: Project, run_warden: Runner,
                                                       xdg: Env) -> None:
    """A device (/dev/zero) named as a data, policy or test file is refused before reading;
    a file over 16 MiB is refused after reading one byte past the limit; a params file (a
    FIFO is fine there) stops at the limit too. No hang, no traceback."""
    (project.root / "zero.yaml").symlink_to("/dev/zero")
    (project.root / "z.warden-test.yaml").symlink_to("/dev/zero")
    for args in (("check", "zero.yaml"), ("validate", "--policy", "zero.yaml"),
                 ("fmt", "--check", "zero.yaml"), ("test", "z.warden-test.yaml")):
        proc = run_warden(*args)
        assert_clean_error(proc, 64, contains="not a regular file or directory")
    big = project.root / "big.yaml"
    with open(big, "wb") as fh:
        fh.write(b"a: 1\n" + b"#" * (16 * 1024 * 1024) + b"\n")
    proc = run_warden("check", "big.yaml", "--format", "json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "larger than 16 MiB" in proc.stdout
    proc = run_warden("validate", "--policy", "big.yaml")
    assert_clean_error(proc, 78, lines=None, contains="larger than 16 MiB")
    project.policy("""\
version: 1
actions:
  noop:
    description: nothing
    params: {type: object}
    steps: [{name: s, run: ["true"]}]
policies: []
""")
    proc = run_warden("run", "noop", "--params-file", "zero.yaml")
    assert_clean_error(proc, 65, contains="larger than 16 MiB")
    proc = run_warden("run", "noop", "--params-file", "-",
                      input="x" * (16 * 1024 * 1024 + 10))
    assert_clean_error(proc, 65, contains="larger than 16 MiB")
