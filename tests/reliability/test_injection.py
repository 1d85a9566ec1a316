"""Template injection and path escapes in actions (issue 7, item 1, last part).

- A parameter holding spaces, ``;``, ``$(...)``, backquotes, newlines, quotes, globs,
  option-looking text or template-looking text stays exactly ONE argv element (argv is never
  passed through a shell, never split, never re-templated), and nothing it names runs.
- A missing or empty field in an argv element refuses the whole run before any side effect
  (``rm -rf /{params.dir}`` never becomes ``rm -rf /``); so does a NUL byte.
- ``write_file`` / ``delete_file`` / ``mkdir`` paths and ``cwd`` cannot leave the project
  root (``..``, absolute paths, symlinks pointing out, warden's own state) unless the action
  lists the target in ``allowed_roots``; a refused run changes nothing anywhere.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from wardentest import Project, Runner

RECORD = "import json, sys; open('argv.json', 'w').write(json.dumps(sys.argv[1:]))"

POLICY = f"""
version: 1
actions:
  argv:
    params: {{type: object, required: [x]}}
    steps:
      - name: record
        run: [{json.dumps(sys.executable)}, "-c", "{RECORD}", "{{params.x}}",
              "pre-{{params.x}}-post", "literal {{{{params.x}}}}"]
  hole:
    params: {{type: object, properties: {{dir: {{}}}}}}
    steps:
      - name: would-be-rm
        run: [{json.dumps(sys.executable)}, "-c", "{RECORD}", "-rf", "/{{params.dir}}"]
  write:
    params: {{type: object, required: [p], properties: {{p: {{type: string}}}}}}
    steps:
      - {{name: w, write_file: {{path: "{{params.p}}", content: "written by warden\\n"}}}}
  delete:
    params: {{type: object, required: [p], properties: {{p: {{type: string}}}}}}
    steps:
      - {{name: d, delete_file: {{path: "{{params.p}}"}}}}
  mkdir:
    params: {{type: object, required: [p], properties: {{p: {{type: string}}}}}}
    steps:
      - {{name: m, mkdir: {{path: "{{params.p}}"}}}}
  in-dir:
    params: {{type: object, required: [p], properties: {{p: {{type: string}}}}}}
    steps:
      - {{name: c, run: [{json.dumps(sys.executable)}, "-c", "{RECORD}"], cwd: "{{params.p}}"}}
  shared-write:
    allowed_roots: ["../shared"]
    params: {{type: object, required: [p], properties: {{p: {{type: string}}}}}}
    steps:
      - {{name: w, write_file: {{path: "{{params.p}}", content: "shared\\n"}}}}
"""

NASTY = [
    "two words", "a;touch pwned", "$(touch pwned)", "`touch pwned`", "line\ntouch pwned",
    "a && touch pwned", "a || touch pwned", "a | tee pwned", "> pwned", "a & touch pwned",
    "--help", "-rf", "'single' \"double\"", "*", "~", "${HOME}", "tab\there", "back\\slash",
    "{params.x}", "{{", "}}", "é 🦀 \u202e", " leading and trailing ", "x" * 5000, "\r\n",
]


@pytest.fixture
def proj(project: Project, tmp_path: Path) -> Project:
    project.policy(POLICY)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.txt").write_text("keep me\n")
    (tmp_path / "shared").mkdir()
    (project.root / "inside.txt").write_text("inside\n")
    return project


def run_action(run_warden: Runner, action: str, params: dict[str, Any]) -> Any:
    return run_warden("run", action, "--params-json", json.dumps(params), "--format", "json")


def recorded(project: Project) -> list[str]:
    data: list[str] = json.loads((project.root / "argv.json").read_text())
    (project.root / "argv.json").unlink()
    return data


def nothing_started(project: Project) -> None:
    db = project.root / ".warden" / "state.db"
    if not db.exists():
        return
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT status FROM executions").fetchall()
    finally:
        conn.close()
    assert all(r[0] == "aborted" for r in rows), rows


# ------------------------------------------------------------------------ argv


@pytest.mark.parametrize("value", NASTY, ids=[repr(v)[:30] for v in NASTY])
def test_param_stays_one_argv_element(proj: Project, run_warden: Runner, value: str) -> None:
    proc = run_action(run_warden, "argv", {"x": value})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recorded(proj) == [value, f"pre-{value}-post", "literal {params.x}"]
    assert not (proj.root / "pwned").exists()


def test_param_from_the_command_line_stays_one_element(proj: Project,
                                                       run_warden: Runner) -> None:
    value = "a b; $(touch pwned) `id`"
    proc = run_warden("run", "argv", "-p", f"x={value}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recorded(proj)[0] == value
    assert not (proj.root / "pwned").exists()


@pytest.mark.parametrize(("value", "text"), [
    (3, "3"), (1.5, "1.5"), (True, "true"), (None, None),
    (["a b", 1], '["a b",1]'), ({"k": "v w"}, '{"k":"v w"}'),
])
def test_non_string_params_render_as_one_json_element(proj: Project, run_warden: Runner,
                                                      value: Any, text: str | None) -> None:
    proc = run_action(run_warden, "argv", {"x": value})
    if text is None:  # null is "empty": refused like a missing field
        assert proc.returncode == 65, proc.stdout + proc.stderr
        assert not (proj.root / "argv.json").exists()
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recorded(proj)[:2] == [text, f"pre-{text}-post"]


@pytest.mark.parametrize("params", [{}, {"dir": ""}, {"dir": None}],
                         ids=["missing", "empty", "null"])
def test_hole_in_argv_refuses_the_run(proj: Project, run_warden: Runner,
                                      params: dict[str, Any]) -> None:
    proc = run_action(run_warden, "hole", params)
    assert proc.returncode == 65, proc.stdout + proc.stderr
    assert "params.dir" in proc.stderr and "Traceback" not in proc.stderr
    assert not (proj.root / "argv.json").exists()
    nothing_started(proj)


def test_nul_byte_in_argv_refuses_the_run(proj: Project, run_warden: Runner) -> None:
    proc = run_action(run_warden, "argv", {"x": "a\0b"})
    assert proc.returncode == 65, proc.stdout + proc.stderr
    assert "NUL" in proc.stderr and "Traceback" not in proc.stderr
    assert not (proj.root / "argv.json").exists()
    nothing_started(proj)


# ----------------------------------------------------------------------- paths


def escapes(tmp: Path) -> list[str]:
    return ["../outside/new.txt", "../../escape.txt", "a/../../outside/new.txt",
            "sub/../../outside/new.txt", str(tmp / "outside" / "new.txt"), "/etc/warden-escape",
            "link/new.txt", "link", ".warden/state.db", ".warden/backups/x", "../shared/x",
            "..", "/"]


@pytest.mark.parametrize("action", ["write", "delete", "mkdir"])
def test_paths_cannot_leave_the_project(proj: Project, run_warden: Runner, tmp_path: Path,
                                        action: str) -> None:
    (proj.root / "link").symlink_to(tmp_path / "outside")
    before = sorted(p.name for p in (tmp_path / "outside").iterdir())
    for target in escapes(tmp_path):
        proc = run_action(run_warden, action, {"p": target})
        assert proc.returncode == 65, (target, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == before, target
        assert (tmp_path / "outside" / "victim.txt").read_text() == "keep me\n"
    assert not Path("/etc/warden-escape").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert not list((tmp_path / "shared").iterdir())
    nothing_started(proj)


def test_deleting_outside_through_dotdot_is_refused(proj: Project, run_warden: Runner,
                                                    tmp_path: Path) -> None:
    proc = run_action(run_warden, "delete", {"p": "../outside/victim.txt"})
    assert proc.returncode == 65, proc.stdout + proc.stderr
    assert (tmp_path / "outside" / "victim.txt").exists()


@pytest.mark.parametrize("target", ["../", "../outside", "/tmp", "link"])
def test_cwd_cannot_leave_the_project(proj: Project, run_warden: Runner, tmp_path: Path,
                                      target: str) -> None:
    (proj.root / "link").symlink_to(tmp_path / "outside")
    proc = run_action(run_warden, "in-dir", {"p": target})
    assert proc.returncode == 65, (target, proc.stdout, proc.stderr)
    assert not (tmp_path / "outside" / "argv.json").exists()


def test_paths_inside_the_project_work(proj: Project, run_warden: Runner) -> None:
    assert run_action(run_warden, "write", {"p": "sub/dir/ok.txt"}).returncode == 0
    assert (proj.root / "sub" / "dir" / "ok.txt").read_text() == "written by warden\n"
    assert run_action(run_warden, "write", {"p": "sub/../inside2.txt"}).returncode == 0
    assert (proj.root / "inside2.txt").exists()
    assert run_action(run_warden, "delete", {"p": "inside.txt"}).returncode == 0
    assert not (proj.root / "inside.txt").exists()
    assert run_action(run_warden, "mkdir", {"p": "made/here"}).returncode == 0
    assert (proj.root / "made" / "here").is_dir()


def test_allowed_roots_open_exactly_that_root(proj: Project, run_warden: Runner,
                                              tmp_path: Path) -> None:
    proc = run_action(run_warden, "shared-write", {"p": "../shared/ok.txt"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "shared" / "ok.txt").read_text() == "shared\n"
    for target in ("../shared/../outside/new.txt", "../sharedX/new.txt", "../outside/new.txt",
                   str(tmp_path / "shared-evil" / "x")):
        proc = run_action(run_warden, "shared-write", {"p": target})
        assert proc.returncode == 65, (target, proc.stdout, proc.stderr)
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["victim.txt"]
    assert not (tmp_path / "sharedX").exists()
