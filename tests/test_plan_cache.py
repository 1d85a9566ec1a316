"""The plan cache (rules stored one by one, decoded lazily) and the discovery index
(``stat``s of what discovery looked at): an edit, a new file, a new project root or a new
user policy is always seen, and a damaged cache or index is never trusted."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

import warden
from warden import plan as plan_mod
from wardentest import Env, Project, Runner, bash, write

DENY_RM = """\
version: 1
policies:
  - name: no-rm
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, contains: "rm "}
    effect: deny
"""
DENY_LS = DENY_RM.replace("no-rm", "no-ls").replace('"rm "', '"ls "')
SETTLE = 0.05  # seconds; the real window is 2 s (plan.SETTLED_NS)


@pytest.fixture(autouse=True)
def short_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_mod, "SETTLED_NS", int(SETTLE * 1e9))


def settle() -> None:
    """Let what was just written age past the settle window (and any timestamp tick)."""
    time.sleep(SETTLE * 2)


def decide(root: Path, command: str, **kw: Any) -> str:
    kw.setdefault("user_policies", False)
    engine = warden.load(root, **kw)
    return str(engine.evaluate(bash(command), side_effects=False).decision)


def index_files(xdg: Env) -> list[Path]:
    return sorted((xdg.cache / "warden" / "index").glob("*.idx"))


def test_second_load_goes_through_the_index_and_decides_the_same(project: Project,
                                                                 xdg: Env) -> None:
    project.policy(DENY_RM)
    settle()
    assert decide(project.root, "rm x") == "deny"
    assert len(index_files(xdg)) == 1
    engine = warden.load(project.root, user_policies=False)
    assert plan_mod.is_lazy(engine.runtime.plan), "the index should open the cached plan"
    assert engine.evaluate(bash("rm x"), side_effects=False).decision == "deny"
    assert engine.evaluate(bash("ls"), side_effects=False).decision == "allow"
    # the whole plan is still there for whoever asks for it
    assert [r["name"] for r in engine.plan["scopes"][0]["rules"]] == ["no-rm"]
    assert not plan_mod.is_lazy(engine.plan)


def test_an_edit_of_the_same_size_is_seen(project: Project) -> None:
    project.policy(DENY_RM)
    settle()
    assert decide(project.root, "rm x") == "deny"
    assert decide(project.root, "rm x") == "deny"  # through the index
    assert len(DENY_LS) == len(DENY_RM)
    project.policy(DENY_LS)  # same size; written right after the index
    assert decide(project.root, "rm x") == "allow"
    assert decide(project.root, "ls x") == "deny"


def test_an_edit_that_keeps_the_mtime_is_seen(project: Project) -> None:
    path = project.policy(DENY_RM)
    settle()
    assert decide(project.root, "rm x") == "deny"
    before = path.stat()
    path.write_text(DENY_LS, encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
    assert decide(project.root, "ls x") == "deny"


def test_nothing_is_indexed_while_the_sources_are_fresh(project: Project, xdg: Env,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_mod, "SETTLED_NS", 3_600 * 10**9)
    project.policy(DENY_RM)
    assert decide(project.root, "rm x") == "deny"
    assert index_files(xdg) == []
    project.policy(DENY_LS)
    assert decide(project.root, "ls x") == "deny"


def test_state_files_next_to_the_policies_do_not_invalidate_the_index(project: Project,
                                                                     xdg: Env) -> None:
    write(project.root / ".warden" / "extra.yaml", DENY_LS)
    settle()
    decide(project.root, "ls x")
    for name in ("state.db", "state.db-wal", "state.db-shm", "notes.txt"):
        (project.root / ".warden" / name).write_bytes(b"x")
    (project.root / "build.log").write_text("x")
    engine = warden.load(project.root, user_policies=False)
    assert plan_mod.is_lazy(engine.runtime.plan), "the index should still hold"
    assert engine.evaluate(bash("ls x"), side_effects=False).decision == "deny"


def test_a_new_file_in_dot_warden_is_seen(project: Project) -> None:
    project.policy(DENY_RM)
    write(project.root / ".warden" / "extra.yaml", "version: 1\npolicies: []\n")
    settle()
    assert decide(project.root, "ls x") == "allow"
    assert decide(project.root, "ls x") == "allow"
    write(project.root / ".warden" / "more.yaml", DENY_LS)
    assert decide(project.root, "ls x") == "deny"
    (project.root / ".warden" / "more.yaml").unlink()
    assert decide(project.root, "ls x") == "allow"


def test_a_nearer_project_root_is_seen(project: Project) -> None:
    project.policy(DENY_RM)
    sub = project.root / "pkg" / "deep"
    sub.mkdir(parents=True)
    settle()
    assert decide(sub, "ls x") == "allow"
    assert decide(sub, "ls x") == "allow"
    write(project.root / "pkg" / "warden.yaml", DENY_LS)  # pkg becomes the project root
    assert decide(sub, "ls x") == "deny"
    assert decide(sub, "rm x") == "allow"


def test_user_policies_that_appear_later_are_seen(project: Project, xdg: Env) -> None:
    project.policy("version: 1\npolicies: []\n")
    settle()
    assert decide(project.root, "ls x", user_policies=True) == "allow"
    assert decide(project.root, "ls x", user_policies=True) == "allow"
    write(xdg.user_dir / "mine.yaml", DENY_LS)  # creates $XDG_CONFIG_HOME/warden
    assert decide(project.root, "ls x", user_policies=True) == "deny"
    assert decide(project.root, "ls x", user_policies=False) == "allow"


def test_a_policy_dir_given_explicitly_is_watched(tmp_path: Path, project: Project) -> None:
    pol = tmp_path / "pol"
    write(pol / "a.yaml", DENY_RM)
    settle()
    assert decide(project.root, "ls x", policies=[str(pol)]) == "allow"
    assert decide(project.root, "ls x", policies=[str(pol)]) == "allow"
    write(pol / "b.yaml", DENY_LS)
    assert decide(project.root, "ls x", policies=[str(pol)]) == "deny"


def test_a_symlinked_start_that_moves_is_followed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write(a / "warden.yaml", DENY_RM)
    write(b / "warden.yaml", DENY_LS)
    link = tmp_path / "link"
    link.symlink_to(a)
    settle()
    assert decide(link, "rm x") == "deny"
    assert decide(link, "rm x") == "deny"
    link.unlink()
    link.symlink_to(b)
    assert decide(link, "rm x") == "allow"
    assert decide(link, "ls x") == "deny"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_index_is_ignored(project: Project, xdg: Env, damage: str) -> None:
    project.policy(DENY_RM)
    settle()
    decide(project.root, "rm x")
    (idx,) = index_files(xdg)
    blob = bytearray(idx.read_bytes())
    if damage == "flip":
        blob[-3] ^= 0xFF
    elif damage == "truncate":
        del blob[len(blob) // 2 :]
    else:
        blob = bytearray(plan_mod.seal(plan_mod.INDEX_MAGIC, b"\x00garbage"))
    idx.write_bytes(bytes(blob))
    assert decide(project.root, "rm x") == "deny"
    assert decide(project.root, "ls x") == "allow"


def test_the_index_cannot_point_at_another_plan(project: Project, xdg: Env,
                                                tmp_path: Path) -> None:
    """A plan cache file that is missing or damaged behind a good index: rebuilt from the
    sources, never an error and never another policy set's answer."""
    project.policy(DENY_RM)
    settle()
    decide(project.root, "rm x")
    for plan_file in xdg.plans.glob("*.plan"):
        plan_file.unlink()
    assert decide(project.root, "rm x") == "deny"
    for plan_file in xdg.plans.glob("*.plan"):
        plan_file.write_bytes(plan_mod.MAGIC + b"00000000\n")
    assert decide(project.root, "rm x") == "deny"


def test_lazy_and_plain_cache_reads_are_the_same_plan(project: Project, xdg: Env) -> None:
    import sys

    from wardentest import REPO

    sys.path.insert(0, str(REPO / "bench"))
    try:
        import gen
    finally:
        sys.path.remove(str(REPO / "bench"))
    (project.root / "warden.yaml").unlink()
    gen.realistic(300).write(project.root)
    settle()
    warden.load(project.root, user_policies=False)
    (cache,) = xdg.plans.glob("*.plan")
    plain = plan_mod.read_cached(cache.stem)
    lazy = plan_mod.read_cached(cache.stem, lazy=True)
    assert plain is not None and lazy is not None
    assert plan_mod.is_lazy(lazy) and not plan_mod.is_lazy(plain)
    assert plan_mod.materialize(lazy) == plain
    fresh = warden.load(project.root, user_policies=False, use_cache=False)
    assert plain == fresh.plan
    # the same answers from precomputed screens on lazy rules as from a fresh compile,
    # for a one-shot engine per request (first use) and for one long-lived engine
    cached = warden.load(project.root, user_policies=False)
    assert plan_mod.is_lazy(cached.runtime.plan)
    requests = gen.requests(gen.realistic(300), 300)
    want = [fresh.evaluate(r, side_effects=False).to_dict() for r in requests]
    for doc in want:
        doc.pop("duration_ms")
    got = [cached.evaluate(r, side_effects=False).to_dict() for r in requests]
    for doc in got:
        doc.pop("duration_ms")
    assert got == want
    for r, doc in list(zip(requests, want, strict=True))[:40]:
        one = warden.load(project.root, user_policies=False).evaluate(r, side_effects=False)
        assert {**one.to_dict(), "duration_ms": None} == {**doc, "duration_ms": None}


def test_hook_process_uses_the_index_and_sees_edits(project: Project, run_warden: Runner,
                                                    xdg: Env) -> None:
    """The real CLI with the real 2-second window."""
    project.policy(DENY_RM)
    time.sleep(2.1)
    rm = json.dumps(bash("rm x"))
    for _ in range(2):
        out = run_warden("hook", "claude", input=rm)
        assert json.loads(out.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert len(index_files(xdg)) == 1
    project.policy(DENY_LS)
    out = run_warden("hook", "claude", input=rm)
    assert out.returncode == 0 and out.stdout.strip() == "{}", out.stdout


def test_old_cache_files_are_pruned(project: Project, xdg: Env,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every edit leaves a plan behind; only the newest KEEP_FILES stay."""
    monkeypatch.setattr(plan_mod, "KEEP_FILES", 3)
    for i in range(6):
        project.policy(DENY_RM.replace("no-rm", f"no-rm-{i}"))
        assert decide(project.root, "rm x") == "deny"
        time.sleep(0.01)  # distinct mtimes
    plans = sorted(xdg.plans.glob("*.plan"), key=lambda p: p.stat().st_mtime_ns)
    assert len(plans) == 3
    engine = warden.load(project.root, user_policies=False)  # the newest one is kept
    assert engine.plan["scopes"][0]["rules"][0]["name"] == "no-rm-5"
