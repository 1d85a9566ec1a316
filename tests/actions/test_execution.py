"""The executor with real files and real processes: rollback restores the tree exactly,
delete/restore keeps bytes and mode, timeouts kill process groups, kill -9 of warden leaves an
interrupted run that `recover` rolls back, params, templates and path checks."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest


def fail_if(step: int, proj: Any) -> str:
    """A verify argv that fails when params.fail_at equals ``step``."""
    return proj.py("import sys; sys.exit(1 if sys.argv[1] == sys.argv[2] else 0)",
                   "{params.fail_at}", str(step))


def rollback_policy(proj: Any) -> str:
    make = proj.py("import pathlib; pathlib.Path('made.txt').write_text('made')")
    unmake = proj.py("import pathlib; pathlib.Path('made.txt').unlink()")
    return f"""\
version: 1
actions:
  change:
    params:
      type: object
      properties:
        fail_at: {{type: integer}}
    steps:
      - name: make
        run: {make}
        rollback: {unmake}
        verify: {fail_if(1, proj)}
      - name: overwrite
        write_file: {{path: "a.txt", content: "new content", mode: "0600"}}
        verify: {fail_if(2, proj)}
      - name: create-deep
        write_file: {{path: "new/deep/c.txt", content: "c"}}
        verify: {fail_if(3, proj)}
      - name: delete
        delete_file: {{path: "dir/b.bin"}}
        verify: {fail_if(4, proj)}
      - name: mkdir
        mkdir: {{path: "fresh/sub"}}
        verify: {fail_if(5, proj)}
      - name: last
        run: {proj.py("import sys; sys.exit(1 if sys.argv[1] == '6' else 0)",
                      "{params.fail_at}")}
"""


def seed(proj: Any) -> None:
    proj.write("a.txt", "original a\n", mode=0o644)
    b = proj.root / "dir" / "b.bin"
    b.parent.mkdir()
    b.write_bytes(bytes(range(256)) * 3)
    os.chmod(b, 0o640)
    proj.write("keep/untouched.txt", "x")


@pytest.mark.parametrize("fail_at", [2, 3, 4, 6])
def test_rollback_restores_the_tree_exactly(proj: Any, fail_at: int) -> None:
    proj.policy(rollback_policy(proj))
    seed(proj)
    before = proj.tree()
    doc = proj.json("run", "change", "-p", f"fail_at={fail_at}", code=5)
    ex = doc["execution"]
    assert ex["status"] == "rolled_back" and ex["exit_code"] == 5
    assert proj.tree() == before
    steps = {s["name"]: s for s in ex["steps"]}
    failed = [s for s in ex["steps"] if s["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["idx"] == fail_at - 1
    assert steps["make"]["rollback"]["status"] == "ok"  # its rollback command ran
    if fail_at >= 3:
        snap = steps["overwrite"]["snapshots"][0]
        assert snap["path"] == "a.txt" and snap["before"]["size"] == len("original a\n")
        assert snap["after"]["mode"] == "0600"
    assert not (proj.root / ".warden" / "backups" / ex["id"]).exists()


def test_success_keeps_snapshots_and_rollback_command_restores(proj: Any) -> None:
    proj.policy(rollback_policy(proj))
    seed(proj)
    before = proj.tree()
    doc = proj.json("run", "change", "-p", "fail_at=0", code=0)
    xid = doc["execution"]["id"]
    assert (proj.root / "a.txt").read_text() == "new content"
    assert stat.S_IMODE((proj.root / "a.txt").stat().st_mode) == 0o600
    assert not (proj.root / "dir" / "b.bin").exists()
    assert (proj.root / "fresh" / "sub").is_dir()
    shown = proj.json("show", xid, code=0)
    delete = next(s for s in shown["steps"] if s["name"] == "delete")
    assert delete["snapshots"][0]["before"]["size"] == 768
    assert delete["snapshots"][0]["after"] is None
    backups = proj.root / ".warden" / "backups" / xid
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    text = proj.run("show", xid)
    assert "dir/b.bin: 768 bytes" in text.stdout
    assert proj.json("rollback", xid, code=0)["status"] == "rolled_back"
    assert proj.tree() == before
    assert proj.json("show", xid, code=0)["status"] == "rolled_back"


def test_delete_and_rollback_restore_content_and_mode(proj: Any) -> None:
    data = b"\x00\x01secret\xff\n" * 100
    target = proj.root / "secrets" / "key.bin"
    target.parent.mkdir()
    target.write_bytes(data)
    os.chmod(target, 0o604)
    mtime = target.stat().st_mtime
    proj.policy(f"""\
version: 1
actions:
  drop:
    steps:
      - name: rm
        delete_file: {{path: secrets/key.bin}}
      - name: boom
        run: {proj.py("raise SystemExit(3)")}
""")
    doc = proj.json("run", "drop", code=5)
    assert doc["execution"]["steps"][1]["exit_code"] == 3
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == 0o604
    assert target.stat().st_mtime == mtime


def test_write_file_rollback_removes_created_dirs(proj: Any) -> None:
    proj.write("x/existing.txt", "e")
    proj.policy(f"""\
version: 1
actions:
  deep:
    steps:
      - name: write
        write_file: {{path: "x/y/z/file.txt", content: "hi"}}
      - name: boom
        run: {proj.py("raise SystemExit(1)")}
""")
    before = proj.tree()
    doc = proj.json("run", "deep", code=5)
    rb = doc["execution"]["steps"][0]["rollback"]
    assert rb["status"] == "ok" and "removed directory" in rb["detail"]
    assert not (proj.root / "x" / "y").exists()
    assert (proj.root / "x" / "existing.txt").exists()
    assert proj.tree() == before


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


SPAWN = """
import pathlib, subprocess, sys, time
child = subprocess.Popen(['sleep', '30'])
pathlib.Path(sys.argv[1]).write_text(str(child.pid))
pathlib.Path(sys.argv[1] + '.ready').write_text('ready')
time.sleep(30)
"""


def test_timeout_kills_the_whole_process_group(proj: Any) -> None:
    proj.policy(f"""\
version: 1
actions:
  slow:
    steps:
      - name: hang
        run: {proj.py(SPAWN, "gc.pid")}
        timeout: 1s
""")
    t0 = time.monotonic()
    doc = proj.json("run", "slow", code=5)
    took = time.monotonic() - t0
    step = doc["execution"]["steps"][0]
    assert "timed out after 1s" in step["detail"] and step["status"] == "failed"
    assert took < 10
    grandchild = int((proj.root / "gc.pid").read_text())
    assert _wait_gone(grandchild), "the grandchild sleep survived the timeout"


def test_kill_9_leaves_interrupted_and_recover_rolls_back(proj: Any) -> None:
    proj.policy(f"""\
version: 1
actions:
  long:
    gates: [once]
    steps:
      - name: marker
        write_file: {{path: "state/marker.txt", content: "running"}}
      - name: hang
        run: {proj.py(SPAWN, "gc.pid")}
gates:
  once: {{kind: idempotent}}
""")
    before = proj.tree()
    warden = proj.popen("run", "long")
    ready = proj.root / "gc.pid.ready"
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), warden.communicate(timeout=5)
    grandchild = int((proj.root / "gc.pid").read_text())
    os.kill(warden.pid, signal.SIGKILL)
    warden.wait(timeout=10)
    assert (proj.root / "state" / "marker.txt").exists()
    hist = proj.json("history", code=0)["executions"]
    assert hist[0]["status"] == "interrupted" and hist[0]["exit_code"] == 6
    xid = hist[0]["id"]
    assert proj.json("history", "--status", "interrupted", code=0)["executions"][0]["id"] == xid
    assert proj.json("show", xid, code=0)["steps"][1]["status"] == "running"
    # the idempotency key stays held until recover
    held = proj.json("run", "long", code=2)
    assert "interrupted" in held["reason"] and f"warden recover {xid}" in held["reason"]
    assert not _gone(grandchild)  # the step's process group outlived warden
    rec = proj.json("recover", code=0)
    assert [r["id"] for r in rec["recovered"]] == [xid]
    assert rec["recovered"][0]["status"] == "rolled_back"
    assert _wait_gone(grandchild)
    tree = proj.tree()
    for extra in ("gc.pid", "gc.pid.ready"):  # written by the killed step itself
        tree.pop(extra)
    assert tree == before
    assert proj.json("show", xid, code=0)["status"] == "rolled_back"
    assert proj.json("recover", code=0)["recovered"] == []


def test_on_failure_stop_is_partial_then_recover(proj: Any) -> None:
    proj.policy(f"""\
version: 1
actions:
  stopper:
    on_failure: stop
    steps:
      - name: write
        write_file: {{path: "w.txt", content: "w"}}
      - name: boom
        run: {proj.py("raise SystemExit(2)")}
""")
    doc = proj.json("run", "stopper", code=6)
    assert doc["execution"]["status"] == "partial"
    assert (proj.root / "w.txt").exists()
    xid = doc["execution"]["id"]
    rec = proj.json("recover", xid, code=0)
    assert rec["recovered"][0]["status"] == "rolled_back"
    assert not (proj.root / "w.txt").exists()


def test_step_env_allow_list_and_output_tails(proj: Any) -> None:
    dump = proj.py("import json, os, sys; json.dump(sorted(os.environ), open('env.json', 'w'));"
                   " sys.stdout.write('x' * 10000); sys.stderr.write('done')")
    proj.policy(f"""\
version: 1
actions:
  envy:
    steps:
      - name: dump
        run: {dump}
        env: [MY_VAR]
""")
    doc = proj.json("run", "envy", env={"MY_VAR": "1", "SECRET_TOKEN": "s", "LC_ALL": "C"},
                    code=0)
    names = set(json.loads((proj.root / "env.json").read_text()))
    assert {"PATH", "HOME", "MY_VAR", "LC_ALL"} <= names
    assert "SECRET_TOKEN" not in names and "XDG_CONFIG_HOME" not in names
    step = doc["execution"]["steps"][0]
    assert len(step["stdout"]) == 4096 and step["stderr"] == "done"


def test_params_coercion_and_validation(proj: Any) -> None:
    proj.policy("""\
version: 1
actions:
  scale:
    params:
      type: object
      required: [service, env, replicas]
      additionalProperties: false
      properties:
        service: {type: string, pattern: "^[a-z-]+$"}
        env: {enum: [staging, prod]}
        replicas: {type: integer, minimum: 1}
        label: {type: string}
        tags: {type: array, items: {type: string}}
    steps:
      - name: write
        write_file: {path: "scale/{params.service}", content: "{params.replicas}"}
""")
    doc = proj.json("run", "scale", "-p", "service=web", "-p", "env=prod", "-p", "replicas=3",
                    "-p", "label=3", "-p", "tags=a", "-p", "tags=b", code=0)
    params = doc["execution"]["params"]
    assert params == {"service": "web", "env": "prod", "replicas": 3, "label": "3",
                      "tags": ["a", "b"]}
    assert isinstance(params["replicas"], int)
    assert (proj.root / "scale" / "web").read_text() == "3"
    bad = proj.run("run", "scale", "-p", "service=Web!", "-p", "env=dev", "-p", "replicas=0",
                   "-p", "extra=1")
    assert bad.returncode == 65
    err = bad.stderr
    assert "(4 problems)" in err
    for needle in ("params.service:", "params.env:", "params.replicas:", "params: Additional"):
        assert needle in err, err
    missing = proj.run("run", "scale", "-p", "service=web")
    assert missing.returncode == 65 and "'env' is a required property" in missing.stderr
    assert proj.run("run", "scale", "-p", "novalue").returncode == 64
    via_json = proj.json("run", "scale", "--params-json",
                         '{"service": "api", "env": "staging", "replicas": 2}', code=0)
    assert via_json["execution"]["params"]["replicas"] == 2
    proj.write("p.yaml", "service: db\nenv: staging\nreplicas: 1\n")
    via_file = proj.json("run", "scale", "--params-file", "p.yaml", "-p", "replicas=4", code=0)
    assert via_file["execution"]["params"] == {"service": "db", "env": "staging", "replicas": 4}
    assert proj.run("run", "nope").returncode == 64


def test_yaml_scalars_without_schema(proj: Any) -> None:
    proj.policy("""\
version: 1
actions:
  free:
    steps:
      - name: write
        write_file: {path: "free.txt", content: "ok"}
""")
    doc = proj.json("run", "free", "-p", "n=3", "-p", "f=1.5", "-p", "b=true", "-p", "o=on",
                    "-p", "z=null", "-p", "s=hello", code=0)
    assert doc["execution"]["params"] == {"n": 3, "f": 1.5, "b": True, "o": "on", "z": None,
                                          "s": "hello"}


def test_template_injection_stays_one_argv_element(proj: Any) -> None:
    record = proj.py("import pathlib, sys; pathlib.Path('argv.json').write_text("
                     "__import__('json').dumps(sys.argv[1:]))", "{params.msg}", "x{params.msg}")
    proj.policy(f"""\
version: 1
actions:
  echo:
    steps:
      - name: record
        run: {record}
""")
    evil = "a b; touch pwned $(touch pwned2) `touch pwned3` && echo | cat > pwned4"
    proj.json("run", "echo", "-p", f"msg={evil}", code=0)
    assert json.loads((proj.root / "argv.json").read_text()) == [evil, "x" + evil]
    assert not any(p.name.startswith("pwned") for p in proj.root.iterdir())


def test_empty_template_field_aborts_before_any_side_effect(proj: Any) -> None:
    proj.policy(f"""\
version: 1
actions:
  wipe:
    params:
      type: object
      properties:
        dir: {{type: string}}
    steps:
      - name: first
        write_file: {{path: "marker.txt", content: "touched"}}
      - name: remove
        run: {proj.py("import pathlib, sys; pathlib.Path('removed.txt').write_text(sys.argv[1])",
                      "/{params.dir}")}
""")
    for args in (["-p", "dir="], []):
        proc = proj.run("run", "wipe", *args)
        assert proc.returncode == 65, proc.stderr
        assert "{params.dir} is missing or empty" in proc.stderr
    assert sorted(p.name for p in proj.root.iterdir()) == ["warden.yaml"]


def test_paths_may_not_leave_the_root(proj: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (proj.root / "link").symlink_to(outside)
    proj.policy(f"""\
version: 1
actions:
  escape:
    params: {{type: object, properties: {{p: {{type: string}}}}}}
    steps:
      - name: marker
        write_file: {{path: "marker.txt", content: "touched"}}
      - name: w
        write_file: {{path: "{{params.p}}", content: "x"}}
  allowed:
    allowed_roots: ["{outside}"]
    steps:
      - name: w
        write_file: {{path: "{outside}/ok.txt", content: "x"}}
""")
    for p in ("../x", "sub/../../x", "link/x", str(outside / "abs.txt"), "/etc/passwd",
              ".warden/state.db"):
        proc = proj.run("run", "escape", "-p", f"p={p}")
        assert proc.returncode == 65, (p, proc.stderr)
    assert not (proj.root / "marker.txt").exists()
    assert list(outside.iterdir()) == []
    proj.json("run", "escape", "-p", "p=inside/../fine.txt", code=0)
    assert (proj.root / "fine.txt").exists()
    proj.json("run", "allowed", code=0)
    assert (outside / "ok.txt").read_text() == "x"


def test_actions_list_and_show(proj: Any) -> None:
    proj.policy("""\
version: 1
actions:
  deploy:
    description: Deploy one service.
    risk: high
    params: {type: object, properties: {service: {type: string}}}
    gates: [ks]
    idempotency_key: "deploy:{params.service}"
    steps:
      - name: build
        run: ["make", "build", "SERVICE={params.service}"]
        rollback: ["make", "clean"]
gates:
  ks: {kind: kill_switch}
""")
    listed = proj.json("actions", "list", code=0)["actions"]
    assert listed[0]["name"] == "deploy" and listed[0]["gates"] == ["ks"]
    assert listed[0]["risk"] == "high"
    shown = proj.json("actions", "show", "deploy", code=0)
    assert shown["id"] == "deploy" and shown["idempotency_key"] == "deploy:{params.service}"
    assert shown["steps"][0]["run"] == ["make", "build", "SERVICE={params.service}"]
    assert shown["steps"][0]["rollback"] == ["make", "clean"]
    assert shown["hash"].startswith("sha256:")
    text = proj.run("actions", "list")
    assert text.returncode == 0 and "Deploy one service." in text.stdout
    assert proj.run("actions", "show", "nope").returncode == 64


def test_history_filters_and_interrupted_status(proj: Any) -> None:
    proj.policy(f"""\
version: 1
actions:
  ok:
    steps:
      - name: w
        write_file: {{path: "ok.txt", content: "x"}}
  bad:
    steps:
      - name: b
        run: {proj.py("raise SystemExit(1)")}
""")
    proj.json("run", "ok", code=0)
    proj.json("run", "bad", code=5)
    hist = proj.json("history", code=0)["executions"]
    assert [h["status"] for h in hist] == ["rolled_back", "succeeded"]
    assert proj.json("history", "--action", "ok", code=0)["executions"][0]["action"] == "ok"
    assert len(proj.json("history", "--status", "rolled_back", code=0)["executions"]) == 1
    assert proj.json("history", "--since", "1h", code=0)["executions"]
    future = {"WARDEN_NOW": "2099-01-01T00:00:00Z"}
    assert proj.json("history", "--since", "1d", env=future, code=0)["executions"] == []
    assert proj.run("history", "--status", "weird").returncode == 64
    text = proj.run("history")
    assert "succeeded" in text.stdout and text.returncode == 0


def test_run_in_subdirectory_uses_project_root(proj: Any) -> None:
    proj.policy("""\
version: 1
actions:
  here:
    steps:
      - name: w
        write_file: {path: "top.txt", content: "x"}
""")
    sub = proj.root / "a" / "b"
    sub.mkdir(parents=True)
    proc = subprocess.run([*_warden(), "run", "here"], cwd=sub, env=proj.env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (proj.root / "top.txt").exists() and not (sub / "top.txt").exists()


def _warden() -> list[str]:
    import sys

    return [str(Path(sys.executable).parent / "warden")]


def test_sigterm_to_warden_kills_the_step_and_rolls_back(proj: Any) -> None:
    proj.policy(f"""\
version: 1
actions:
  long:
    steps:
      - name: marker
        write_file: {{path: "marker.txt", content: "x"}}
      - name: hang
        run: {proj.py(SPAWN, "gc.pid")}
""")
    warden = proj.popen("run", "long", "--format", "json")
    ready = proj.root / "gc.pid.ready"
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists()
    grandchild = int((proj.root / "gc.pid").read_text())
    warden.send_signal(signal.SIGTERM)
    out, err = warden.communicate(timeout=30)
    assert warden.returncode == 5, (out, err)
    doc = json.loads(out)
    assert doc["execution"]["status"] == "rolled_back"
    assert "interrupted by signal" in doc["execution"]["steps"][1]["detail"]
    assert not (proj.root / "marker.txt").exists()
    assert _wait_gone(grandchild)


def test_precondition_cwd_and_stop_with_nothing_changed(proj: Any) -> None:
    where = proj.py("import os, pathlib; pathlib.Path('cwd.txt').write_text(os.getcwd())")
    proj.policy(f"""\
version: 1
actions:
  guarded:
    on_failure: stop
    params: {{type: object, properties: {{ok: {{type: boolean, default: false}}}}}}
    steps:
      - name: check
        precondition: {proj.py("import sys; sys.exit(0 if sys.argv[1] == 'true' else 1)",
                               "{params.ok}")}
        run: {where}
        cwd: sub
""")
    (proj.root / "sub").mkdir()
    doc = proj.json("run", "guarded", code=5)
    step = doc["execution"]["steps"][0]
    assert step["detail"] == "precondition exited 1" and doc["execution"]["status"] == \
        "rolled_back"
    assert not (proj.root / "sub" / "cwd.txt").exists()
    proj.json("run", "guarded", "-p", "ok=true", code=0)
    assert (proj.root / "sub" / "cwd.txt").read_text() == str((proj.root / "sub").resolve())
