"""End to end through the installed `warden` executable: eval, explain, validate, compile,
schema, help, exit codes and the plan cache (DESIGN §4, §7, §8)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from wardentest import REPO, Env, Project, Runner, bash, write

RM = json.dumps(bash("rm -rf /"))
LS = json.dumps(bash("ls"))

POLICY = """\
version: 1
policies:
  - name: prefer-trash
    tool: Bash
    when: {field: tool_input.command, matches: '\\brm\\b'}
    effect: warn
    message: consider trash-put
  - name: no-rm-rf-root
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, matches: 'rm\\s+-rf\\s+/(\\s|$)'}
    effect: deny
    message: "Refusing to delete /: {tool_input.command}"
  - name: ask-push
    tool: Bash
    when: {field: tool_input.command, starts_with: git push}
    effect: ask
"""


@pytest.fixture
def proj(project: Project) -> Project:
    project.policy(POLICY)
    return project


def schema_validator(name: str) -> Any:
    path = REPO / "schema" / f"{name}.schema.json"
    if not path.exists():
        pytest.skip(f"schema/{name}.schema.json not written yet")
    from jsonschema import Draft7Validator

    return Draft7Validator(json.loads(path.read_text(encoding="utf-8")))


def one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("warden: ")


# -------------------------------------------------------------------------- eval


def test_eval_reads_stdin_by_default(proj: Project, run_warden: Runner) -> None:
    r = run_warden("eval", input=RM)
    assert r.returncode == 2, r.stderr
    doc = json.loads(r.stdout)
    assert doc["decision"] == "deny" and doc["enforced"] is True
    assert doc["reason"] == "Refusing to delete /: rm -rf /"
    assert doc["matched"] == [{"policy": "no-rm-rf-root", "effect": "deny",
                               "source": "warden.yaml:8:5"}]
    assert doc["feedback"] == [{"policy": "prefer-trash", "message": "consider trash-put"}]
    assert doc["input"] == {"event": "PreToolUse", "tool": "Bash"}
    assert doc["plan"]["hash"].startswith("sha256:")


def test_eval_input_file_and_dash(proj: Project, run_warden: Runner, tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text(json.dumps(bash("git push origin main")))
    r = run_warden("eval", "--input", str(f))
    assert r.returncode == 3 and json.loads(r.stdout)["decision"] == "ask"
    r = run_warden("eval", "--input", "-", input=LS)
    assert r.returncode == 0 and json.loads(r.stdout)["decision"] == "allow"
    r = run_warden("eval", "-i", str(tmp_path / "missing.json"))
    assert r.returncode == 64
    one_line_error(r.stderr)


def test_eval_exit_codes(proj: Project, run_warden: Runner) -> None:
    assert run_warden("eval", input=LS).returncode == 0
    assert run_warden("eval", input=RM).returncode == 2
    assert run_warden("eval", input=json.dumps(bash("git push"))).returncode == 3


def test_eval_text_format(proj: Project, run_warden: Runner) -> None:
    r = run_warden("eval", "--format", "text", input=RM)
    assert r.returncode == 2
    first, *rest = r.stdout.splitlines()
    assert first == "DENY: Refusing to delete /: rm -rf /"
    assert any("no-rm-rf-root" in line and "warden.yaml:8:5" in line for line in rest)
    assert any("prefer-trash" in line and "consider trash-put" in line for line in rest)


def test_fail_on_warn(proj: Project, run_warden: Runner) -> None:
    warn_only = json.dumps(bash("rm x"))
    assert run_warden("eval", input=warn_only).returncode == 0
    assert run_warden("eval", "--fail-on-warn", input=warn_only).returncode == 4
    assert run_warden("eval", "--fail-on-warn", input=LS).returncode == 0
    # a deny stays a deny
    assert run_warden("eval", "--fail-on-warn", input=RM).returncode == 2


def test_observe_mode_exits_zero(project: Project, run_warden: Runner) -> None:
    project.policy("version: 1\nsettings: {mode: observe}\n"
                   "policies:\n  - {name: no, effect: deny}\n")
    r = run_warden("eval", input=LS)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["decision"] == "deny" and doc["enforced"] is False
    r = run_warden("eval", "--format", "text", input=LS)
    assert r.stdout.startswith("DENY (observe: not enforced)")


@pytest.mark.parametrize(("data", "what"), [
    ("{not json", "invalid JSON"),
    ("", "empty"),
    ("[1, 2]", "object"),
    ('"just a string"', "object"),
    ('{"a": NaN}', "JSON"),
    (b'{"a": "\xff"}', "UTF-8"),
    ("[" * 300 + "]" * 300, ""),
    ('{"a": ' * 300 + "1" + "}" * 300, "256"),
    ("[" * 100_000 + "]" * 100_000, ""),
])
def test_bad_input_exits_65_with_one_line(proj: Project, run_warden: Runner,
                                           data: str | bytes, what: str) -> None:
    r = run_warden("eval", input=data)
    assert r.returncode == 65, r.stderr
    one_line_error(r.stderr)
    assert what in r.stderr
    assert r.stdout == ""


def test_input_larger_than_16_mib_is_refused(proj: Project, run_warden: Runner) -> None:
    big = '{"pad": "' + "x" * (16 * 1024 * 1024) + '"}'
    r = run_warden("eval", input=big)
    assert r.returncode == 65
    one_line_error(r.stderr)
    assert "16 MiB" in r.stderr
    ok = '{"pad": "' + "x" * (1024 * 1024) + '"}'
    assert run_warden("eval", input=ok).returncode == 0


def test_depth_limit_is_256_levels_of_nesting(proj: Project, run_warden: Runner) -> None:
    # 256 nested containers are accepted, whatever the innermost value is; 257 are not
    for leaf in ("1", '"x"', "[]", "{}", "null"):
        ok = '{"a": ' * 255 + leaf + "}" * 255
        assert run_warden("eval", input=ok).returncode == 0, leaf
    assert run_warden("eval", input='{"a": ' * 256 + "1" + "}" * 256).returncode == 0
    too_deep = '{"a": ' * 256 + "[]" + "}" * 256
    r = run_warden("eval", input=too_deep)
    assert r.returncode == 65 and "256" in r.stderr
    assert run_warden("eval", input='{"a": ' * 257 + "1" + "}" * 257).returncode == 65


# ------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args", [
    ("bogus",),
    ("eval", "--bogus"),
    ("eval", "--format", "xml"),
    ("validate", "--nope"),
    ("schema", "nonsense"),
    ("help", "nonsense"),
])
def test_usage_errors_exit_64(proj: Project, run_warden: Runner, args: tuple[str, ...]) -> None:
    r = run_warden(*args, input="{}")
    assert r.returncode == 64, r.stderr
    one_line_error(r.stderr)
    assert "warden: warden" not in r.stderr


def test_version(run_warden: Runner) -> None:
    r = run_warden("--version")
    assert r.returncode == 0 and r.stdout.startswith("warden ")


# ------------------------------------------------------------------- broken policy


def test_broken_policy_exits_78_with_positions(project: Project, run_warden: Runner) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: a
            efect: deny
          - name: b
            effect: deny
            when: {field: x, matches: "("}
        """)
    for args in (("eval",), ("explain",), ("compile",), ("validate",)):
        r = run_warden(*args, input=LS)
        assert r.returncode == 78, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert "warden.yaml:4:5: unknown key 'efect' (did you mean 'effect'?)" in r.stderr
        assert "warden.yaml:7:31: invalid RE2 regex" in r.stderr
        assert r.stdout == "" or args == ("validate",)


def test_yaml_syntax_error_exits_78(project: Project, run_warden: Runner) -> None:
    project.policy("version: 1\npolicies:\n\t- name: x\n")
    r = run_warden("eval", input=LS)
    assert r.returncode == 78
    assert r.stderr.startswith("warden.yaml:3:1:") and "tab" in r.stderr


def test_no_policy_files(run_warden: Runner, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    r = run_warden("eval", input=LS, cwd=empty)
    assert r.returncode == 78
    assert "no policy files" in r.stderr


# ------------------------------------------------------------------------ validate


def test_validate_ok_and_json(proj: Project, run_warden: Runner) -> None:
    r = run_warden("validate")
    assert r.returncode == 0 and "1 file(s) valid" in r.stdout
    r = run_warden("validate", "--format", "json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"valid": True, "files": 1, "problems": []}


def test_validate_errors_json(project: Project, run_warden: Runner) -> None:
    project.policy("version: 1\npolicies:\n  - {name: a, effect: block}\n")
    r = run_warden("validate", "--format", "json")
    assert r.returncode == 78
    doc = json.loads(r.stdout)
    assert doc["valid"] is False
    [p] = doc["problems"]
    assert (p["file"], p["line"], p["column"], p["severity"]) == ("warden.yaml", 3, 23, "error")


def test_validate_strict_turns_warnings_into_errors(project: Project, run_warden: Runner) -> None:
    project.policy("""\
        version: 1
        policies:
          - name: no-rm
            tool: Bash
            when: {field: tool_input.comand, matches: 'rm -rf /'}
            effect: deny
        """)
    r = run_warden("validate")
    assert r.returncode == 0
    assert "warden.yaml:5:11: warning:" in r.stdout
    assert "did you mean 'tool_input.command'?" in r.stdout
    r = run_warden("validate", "--strict")
    assert r.returncode == 78
    assert "warden.yaml:5:11:" in r.stderr and "tool_input.comand" in r.stderr
    r = run_warden("validate", "--strict", "--format", "json")
    assert r.returncode == 78 and json.loads(r.stdout)["problems"][0]["severity"] == "error"


def test_validate_named_paths(project: Project, run_warden: Runner, tmp_path: Path) -> None:
    other = write(tmp_path / "other" / "p.yaml",
                  "version: 1\npolicies: [{name: X, effect: deny}]\n")
    r = run_warden("validate", str(project.root / "warden.yaml"))
    assert r.returncode == 0
    r = run_warden("validate", str(other))
    assert r.returncode == 78 and "p.yaml:2:" in r.stderr
    r = run_warden("validate", str(tmp_path / "absent.yaml"))
    assert r.returncode == 78


def test_validate_leaves_user_files_out_by_default(proj: Project, run_warden: Runner,
                                                   xdg: Env) -> None:
    write(xdg.user_dir / "broken.yaml", "version: 7\n")
    assert run_warden("validate").returncode == 0
    r = run_warden("validate", "--user-policies")
    assert r.returncode == 78 and "broken.yaml" in r.stderr
    # eval does read them
    assert run_warden("eval", input=LS).returncode == 78
    assert run_warden("eval", "--no-user-policies", input=LS).returncode == 0


# -------------------------------------------------------------- compile and plans


def test_compile_then_eval_plan(proj: Project, run_warden: Runner, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = run_warden("compile", "-o", str(out))
    assert r.returncode == 0, r.stderr
    plan = json.loads(out.read_text())
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not 0600
    from warden.compile import plan_hash

    assert plan["hash"] == plan_hash(plan)
    assert plan["hash"] in r.stderr
    # stdout form is byte-identical
    assert run_warden("compile").stdout == out.read_text()
    # evaluating the plan does not need the policy files any more
    (proj.root / "warden.yaml").unlink()
    r = run_warden("eval", "--plan", str(out), input=RM)
    assert r.returncode == 2
    assert json.loads(r.stdout)["plan"]["hash"] == plan["hash"]
    assert run_warden("eval", "--plan", str(out), input=LS).returncode == 0


def test_compile_is_deterministic(proj: Project, run_warden: Runner) -> None:
    a, b = run_warden("compile"), run_warden("compile")
    assert a.returncode == 0 and a.stdout == b.stdout


def test_edited_plan_is_refused(proj: Project, run_warden: Runner, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    run_warden("compile", "-o", str(out))
    out.write_text(out.read_text().replace('"deny"', '"allow"'))
    r = run_warden("eval", "--plan", str(out), input=RM)
    assert r.returncode == 78 and "hash" in r.stderr


def test_plan_validates_against_its_schema(proj: Project, run_warden: Runner) -> None:
    validator = schema_validator("plan")
    proj.write(".warden/more.yaml", """\
        version: 1
        settings: {default: ask, combine: deny-overrides}
        policies:
          - name: nested
            event: [PreToolUse, file]
            tool: {matches: "Write|Edit"}
            when:
              all:
                - {field: tool_input.file_path, glob: ["*.env", "**/secrets/**"]}
                - not: {env: {name: CI, exists: true}}
                - any:
                    - {time: {days: [mon], after: "09:00", tz: Europe/Berlin}}
                    - {file: {path: "{tool_input.file_path}", larger_than: 1MB}}
                    - {state: {event: PostToolUse, tool: Read, within: 30m, count: {gte: 2}}}
                    - {command: {run: ["true"], timeout: 1s}}
                    - {field: tool_input.content, in: [a, "{tool_name}"]}
            effect: deny
            then:
              - {run: [logger, "blocked {tool_name}"], timeout: 5s, background: true}
              - record: {key: blocked, value: "{tool_input.file_path}"}
        gates:
          ks: {kind: kill_switch}
          appr: {kind: approval, approvals: 1, when: {field: params.env, equals: prod}}
          rate: {kind: rate_limit, key: "deploy:{params.env}", max: 3, per: 1d}
          dry: {kind: dry_run, max_age: 1h}
          once: {kind: idempotent}
          office: {kind: time_window, days: [mon, fri], after: "09:00", before: "17:00"}
          tests: {kind: command, run: [make, test], timeout: 10m}
          cond: {kind: condition, when: {not: {time: {days: [fri]}}}}
        actions:
          deploy:
            risk: high
            params:
              type: object
              properties: {env: {enum: [staging, prod]}}
            gates: [ks, appr, rate, dry, once, office, tests, cond]
            idempotency_key: "deploy:{params.env}"
            steps:
              - name: build
                run: [make, build]
                dry_run: [make, -n, build]
                verify: [test, -f, dist/x]
                rollback: [rm, -f, dist/x]
                timeout: 10m
              - {name: marker, write_file: {path: "deployed/{params.env}", content: "x\\n"}}
              - {name: old, delete_file: {path: "deployed/old"}}
              - {name: dir, mkdir: {path: "deployed"}}
        """)
    r = run_warden("compile")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    errors = sorted(validator.iter_errors(plan), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_decision_validates_against_its_schema(proj: Project, run_warden: Runner) -> None:
    validator = schema_validator("decision")
    for inp in (RM, LS, json.dumps(bash("git push")), "{}"):
        doc = json.loads(run_warden("eval", input=inp).stdout)
        errors = list(validator.iter_errors(doc))
        assert not errors, [e.message for e in errors]


# --------------------------------------------------------------------- explain


def test_explain_text(proj: Project, run_warden: Runner) -> None:
    r = run_warden("explain", input=json.dumps(bash("git status")))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("ALLOW: no rule matched")
    for name in ("prefer-trash", "no-rm-rf-root", "ask-push"):
        assert name in out
    # the failing condition, with its value and position
    assert "git status" in out and "starts_with" in out and "warden.yaml:16:11" in out


def test_explain_json(proj: Project, run_warden: Runner) -> None:
    r = run_warden("explain", "--format", "json", input=RM)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["decision"]["decision"] == "deny"
    applied = {row["policy"]: row["applied"] for row in doc["rules"]}
    assert applied == {"prefer-trash": True, "no-rm-rf-root": True, "ask-push": False}


# ------------------------------------------------------------------- schema, help


@pytest.mark.parametrize("name", ["decision", "policy", "test", "plan"])
def test_schema_prints_valid_json(run_warden: Runner, name: str) -> None:
    if not (REPO / "schema" / f"{'warden' if name == 'policy' else name}.schema.json").exists() \
            and name in ("plan",):
        pytest.skip("schema not written yet")
    r = run_warden("schema", name)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["$schema"].startswith("http://json-schema.org/draft-07")


def test_shipped_schemas_are_the_source_schemas(run_warden: Runner) -> None:
    for name, file in (("decision", "decision"), ("policy", "warden"), ("test", "warden-test")):
        r = run_warden("schema", name)
        assert json.loads(r.stdout) == json.loads((REPO / "schema" / f"{file}.schema.json")
                                                  .read_text())


def test_help_exit_codes(run_warden: Runner) -> None:
    r = run_warden("help", "exit-codes")
    assert r.returncode == 0
    codes = [int(line.split()[0]) for line in r.stdout.splitlines()
             if line.strip()[:1].isdigit()]
    assert codes == [0, 1, 2, 3, 4, 5, 6, 64, 65, 70, 78]


# ------------------------------------------------------------------ plan cache


def test_second_call_uses_the_plan_cache(proj: Project, run_warden: Runner, xdg: Env) -> None:
    assert run_warden("eval", input=RM).returncode == 2
    files = list(xdg.plans.glob("*.plan"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    assert run_warden("eval", input=RM).returncode == 2
    assert list(xdg.plans.glob("*.plan")) == files
    assert files[0].stat().st_mtime_ns == mtime  # read, not rewritten


def test_cache_is_used_instead_of_the_yaml(proj: Project, run_warden: Runner,
                                           xdg: Env) -> None:
    """Prove the cache is read: a cache entry planted under the right key wins."""
    from warden.engine import build_plan
    from warden.load import discover
    from warden.plan import read_cached

    assert run_warden("eval", input=LS).returncode == 0
    [cache_file] = xdg.plans.glob("*.plan")
    sources, root = discover(cwd=str(proj.root))
    plan = build_plan(sources, root).plan
    assert read_cached(cache_file.stem) == plan


def test_corrupted_cache_is_discarded_and_rebuilt(proj: Project, run_warden: Runner,
                                                  xdg: Env) -> None:
    run_warden("eval", input=RM)
    [cache_file] = xdg.plans.glob("*.plan")
    good = cache_file.read_bytes()
    blob = bytearray(good)
    blob[len(blob) // 2] ^= 0x55
    cache_file.write_bytes(bytes(blob))
    r = run_warden("eval", input=RM)
    assert r.returncode == 2 and json.loads(r.stdout)["decision"] == "deny"
    assert cache_file.read_bytes() == good  # rebuilt
    cache_file.write_bytes(b"")
    assert run_warden("eval", input=RM).returncode == 2
    assert cache_file.read_bytes() == good


def test_editing_the_policy_invalidates_the_cache(proj: Project, run_warden: Runner,
                                                  xdg: Env) -> None:
    assert run_warden("eval", input=RM).returncode == 2
    proj.policy(POLICY.replace("effect: deny", "effect: ask"))
    assert run_warden("eval", input=RM).returncode == 3
    assert len(list(xdg.plans.glob("*.plan"))) == 2
    # adding a file to .warden/ changes the policy set too
    proj.write(".warden/extra.yaml", "version: 1\npolicies: [{name: all-deny, effect: deny}]\n")
    assert run_warden("eval", input=LS).returncode == 2


def test_user_policy_edit_invalidates_the_cache(proj: Project, run_warden: Runner,
                                                xdg: Env) -> None:
    assert run_warden("eval", input=LS).returncode == 0
    write(xdg.user_dir / "u.yaml", "version: 1\npolicies: [{name: u, tool: Bash, effect: deny}]\n")
    assert run_warden("eval", input=LS).returncode == 2


def test_unwritable_cache_still_works(proj: Project, run_warden: Runner, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    r = run_warden("eval", input=RM, env={"XDG_CACHE_HOME": str(blocker)})
    assert r.returncode == 2, r.stderr
