"""Stage 3/4: the compiled plan: deterministic, hashed, indexed; globs; merged settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from warden.compile import canonical, glob_to_regex, plan_hash
from warden.engine import build_plan, check_sources
from warden.load import discover
from warden.plan import dump_json, load_json
from wardentest import Env, Project, write

POLICY = """\
version: 1
settings:
  default: ask
  combine: deny-overrides
policies:
  - name: no-env
    event: PreToolUse
    tool: [Write, Edit]
    when: {field: tool_input.file_path, glob: ["*.env", "**/secrets/**"]}
    effect: deny
    message: "no secrets: {tool_input.file_path}"
  - name: any-tool
    event: [PreToolUse, PostToolUse]
    effect: warn
  - name: notebook
    tool: {matches: "Notebook.*"}
    effect: ask
  - name: everywhere
    effect: allow
gates:
  ks: {kind: kill_switch}
  office: {kind: time_window, days: [mon, tue], after: "09:00", before: "17:30", tz: UTC}
actions:
  deploy:
    gates: [ks, office]
    params: {type: object, properties: {env: {enum: [prod, staging]}}}
    idempotency_key: "deploy:{params.env}"
    steps:
      - {name: go, run: ["echo", "{params.env}"], timeout: 1m}
"""


def plan_for(root: Path, user: bool = False) -> dict[str, Any]:
    sources, _ = discover(cwd=str(root), user=user)
    plan, problems = check_sources(sources)
    assert plan is not None, [str(p) for p in problems]
    return plan


def test_compiling_twice_gives_byte_identical_plans(project: Project) -> None:
    project.policy(POLICY)
    a, b = plan_for(project.root), plan_for(project.root)
    assert dump_json(a) == dump_json(b)
    assert a["hash"] == b["hash"]


def test_plan_hash_is_recomputable(project: Project) -> None:
    project.policy(POLICY)
    plan = plan_for(project.root)
    assert plan["hash"].startswith("sha256:") and len(plan["hash"]) == 7 + 64
    assert plan_hash(plan) == plan["hash"]
    body = {k: v for k, v in plan.items() if k != "hash"}
    import hashlib

    assert plan["hash"] == "sha256:" + hashlib.sha256(canonical(body).encode()).hexdigest()
    # a round trip through the JSON file keeps the hash valid
    reread = json.loads(dump_json(plan))
    assert plan_hash(reread) == plan["hash"]


def test_plan_hash_changes_with_the_policy(project: Project) -> None:
    project.policy(POLICY)
    before = plan_for(project.root)["hash"]
    project.policy(POLICY.replace("no secrets", "no secret files"))
    assert plan_for(project.root)["hash"] != before


def test_edited_plan_file_is_refused(project: Project, tmp_path: Path) -> None:
    from warden.errors import PolicyError

    project.policy(POLICY)
    plan = plan_for(project.root)
    f = tmp_path / "plan.json"
    f.write_text(dump_json(plan))
    assert load_json(str(f))["hash"] == plan["hash"]
    plan["scopes"][0]["rules"][0]["effect"] = "allow"
    f.write_text(dump_json(plan))
    with pytest.raises(PolicyError, match="hash does not match"):
        load_json(str(f))
    f.write_text("{not json")
    with pytest.raises(PolicyError, match="not a plan"):
        load_json(str(f))


def test_plan_structure(project: Project) -> None:
    project.policy(POLICY)
    plan = plan_for(project.root)
    assert plan["format"] == 1
    assert [s["path"] for s in plan["sources"]] == ["warden.yaml"]
    assert len(plan["sources"][0]["sha256"]) == 64
    [scope] = plan["scopes"]
    assert scope["name"] == "project" and scope["combine"] == "deny-overrides"
    assert scope["default"] == "ask"
    rules = {r["name"]: r for r in scope["rules"]}
    assert rules["no-env"]["source"] == "warden.yaml:6:5"
    assert rules["no-env"]["message"] == ["no secrets: ", ["tool_input", "file_path"]]
    assert rules["notebook"]["tool_re"] == "Notebook.*"
    # default message
    assert rules["everywhere"]["message"] == ["allow by everywhere"]
    # the index: by event, then tool
    index = scope["index"]
    assert index["events"]["PreToolUse"]["tools"] == {"Write": [0], "Edit": [0]}
    assert index["events"]["PreToolUse"]["any"] == [1]
    assert index["events"]["PostToolUse"]["any"] == [1]
    assert index["any"]["any"] == [2, 3]
    gate = plan["gates"]["office"]
    assert gate["days"] == [0, 1] and gate["after"] == 9 * 60 and gate["before"] == 17 * 60 + 30
    step = plan["actions"]["deploy"]["steps"][0]
    assert step["timeout"] == 60 and step["run"] == [["echo"], [["params", "env"]]]
    assert plan["actions"]["deploy"]["hash"].startswith("sha256:")
    assert plan["settings"]["default"] == "ask"


def test_action_hash_ignores_positions_and_unrelated_rules(project: Project) -> None:
    project.policy(POLICY)
    before = plan_for(project.root)["actions"]["deploy"]["hash"]
    # move everything down two lines and change an unrelated rule: same action hash
    project.policy("# comment\n\n" + POLICY.replace("no secrets", "nope"))
    assert plan_for(project.root)["actions"]["deploy"]["hash"] == before
    # change what the action does: a new hash
    project.policy(POLICY.replace('"echo"', '"printf"'))
    assert plan_for(project.root)["actions"]["deploy"]["hash"] != before


# --------------------------------------------------------------------------- globs


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("*.env", ".env", True),
    ("*.env", "config/prod.env", True),          # no slash: the basename
    ("*.env", "/home/u/app/.env", True),
    ("*.env", "prod.env.bak", False),             # full match
    ("*.py", "a/b.py/c", False),
    ("src/*.py", "src/a.py", True),
    ("src/*.py", "src/sub/a.py", False),         # * stays within a segment
    ("src/*.py", "x/src/a.py", False),           # a slash anchors the pattern
    ("**/secrets/**", "secrets/x", True),
    ("**/secrets/**", "a/b/secrets/c/d", True),
    ("**/secrets/**", "/abs/path/secrets/key.pem", True),  # also an absolute path
    ("**/secrets/**", "a/secretsx/c", False),
    ("**/*.pem", "/etc/ssl/k.pem", True),
    ("**/*.pem", "k.pem", True),
    ("build/", "build/out/x.o", True),            # trailing slash: the directory and below
    ("build/", "build", True),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file12.txt", False),
    ("[ab].txt", "a.txt", True),
    ("[!ab].txt", "a.txt", False),
    ("[!ab].txt", "c.txt", True),
    ("a.b", "axb", False),                        # dots are literal
    ("/etc/*", "/etc/passwd", True),
    ("/etc/*", "/etc/ssh/sshd_config", False),
    ("/etc/**", "/etc/ssh/sshd_config", True),
])
def test_glob_gitignore_semantics(pattern: str, path: str, hit: bool) -> None:
    import re2

    assert (re2.fullmatch(glob_to_regex(pattern), path) is not None) is hit


# ----------------------------------------------------------------- two scopes


USER_STRICT = """\
version: 1
settings:
  mode: enforce
  default: deny
  on_error: deny
  redact: [tool_input.content]
policies:
  - name: user-rule
    effect: deny
    tool: Bash
"""


def test_settings_merge_stricter_wins(project: Project, xdg: Env) -> None:
    project.policy("""\
        version: 1
        settings:
          mode: observe
          default: allow
          on_error: allow
          combine: deny-overrides
          redact: [prompt]
        """)
    write(xdg.user_dir / "u.yaml", USER_STRICT)
    plan = plan_for(project.root, user=True)
    s = plan["settings"]
    assert (s["mode"], s["default"], s["on_error"]) == ("enforce", "deny", "deny")
    assert s["redact"] == ["prompt", "tool_input.content"]
    scopes = {sc["name"]: sc for sc in plan["scopes"]}
    assert list(scopes) == ["project", "user"]
    assert scopes["project"]["combine"] == "deny-overrides"
    assert scopes["user"]["combine"] == "first-match"   # each scope keeps its own
    assert [r["scope"] for r in scopes["user"]["rules"]] == ["user"]


def test_settings_merge_the_other_way_round(project: Project, xdg: Env) -> None:
    project.policy("""\
        version: 1
        settings: {mode: enforce, default: ask}
        """)
    write(xdg.user_dir / "u.yaml", "version: 1\nsettings: {mode: observe, default: allow}\n")
    s = plan_for(project.root, user=True)["settings"]
    assert (s["mode"], s["default"]) == ("enforce", "ask")


def test_setting_only_one_scope_sets_is_taken(project: Project, xdg: Env) -> None:
    project.policy("version: 1\nsettings: {mode: observe}\n")
    write(xdg.user_dir / "u.yaml", "version: 1\n")
    assert plan_for(project.root, user=True)["settings"]["mode"] == "observe"


def test_conflicting_settings_within_one_scope_is_an_error(project: Project) -> None:
    project.write(".warden/extra.yaml", "version: 1\nsettings: {default: deny}\n")
    project.policy("version: 1\nsettings: {default: allow}\n")
    sources, _ = discover(cwd=str(project.root), user=False)
    plan, problems = check_sources(sources)
    assert plan is None
    [p] = problems
    assert "settings.default is set twice" in p.message
    assert (p.file, p.line, p.column) == (str(Path(".warden") / "extra.yaml"), 2, 12)


def test_build_plan_uses_and_fills_the_cache(project: Project, xdg: Env) -> None:
    sources, root = discover(cwd=str(project.root), user=False)
    first = build_plan(sources, root)
    assert not first.cached
    assert len(list(xdg.plans.glob("*.plan"))) == 1
    second = build_plan(sources, root)
    assert second.cached and second.plan == first.plan


def test_corrupted_cache_file_is_discarded_and_rebuilt(project: Project, xdg: Env) -> None:
    sources, root = discover(cwd=str(project.root), user=False)
    first = build_plan(sources, root)
    [cache_file] = xdg.plans.glob("*.plan")
    blob = bytearray(cache_file.read_bytes())
    blob[-5] ^= 0xFF
    cache_file.write_bytes(bytes(blob))
    again = build_plan(sources, root)
    assert not again.cached and again.plan == first.plan
    assert build_plan(sources, root).cached  # rewritten
    cache_file.write_bytes(b"garbage")
    assert not build_plan(sources, root).cached
