"""The hook hot path: with a cached plan, no YAML parser, schema validator or pretty printer
is imported (DESIGN §5 budget)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from hookutil import EXAMPLES, WARDEN, HookProject, bash, event, file_tool

HEAVY = ("jsonschema", "ruamel", "rich", "yaml", "_yaml")

PROBE = """\
import io, json, sys
sys.stdin = io.TextIOWrapper(io.BytesIO(sys.argv[1].encode()))
captured = io.StringIO()
real_stdout, sys.stdout = sys.stdout, captured
from warden.cli.main import main
code = main(["hook", "claude"])
sys.stdout = real_stdout
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"code": code, "out": captured.getvalue(), "heavy": heavy}))
""".replace("HEAVY", repr(HEAVY))


def probe(hp: HookProject, inp: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(inp)], capture_output=True,
                          text=True, cwd=hp.root, env=hp.full_env(), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict = json.loads(proc.stdout.splitlines()[-1])
    return result


@pytest.fixture
def warm(hp: HookProject) -> HookProject:
    shutil.copy(EXAMPLES / "agent-guardrails" / "warden.yaml", hp.root / "warden.yaml")
    assert hp.hook(bash("ls")).code == 0  # compiles and caches the plan
    return hp


def test_cold_cache_does_parse_yaml(hp: HookProject) -> None:
    """The probe sees imports at all: without a cached plan, YAML is loaded."""
    shutil.copy(EXAMPLES / "agent-guardrails" / "warden.yaml", hp.root / "warden.yaml")
    result = probe(hp, bash("ls"))
    assert "yaml" in result["heavy"] or "_yaml" in result["heavy"]


@pytest.mark.parametrize("inp", [
    bash("ls"),
    bash("rm -rf /"),
    bash("git push origin main"),
    file_tool("Edit", "/tmp/x.py"),
    file_tool("Read", "/tmp/x.py", "PostToolUse"),
    event("UserPromptSubmit"),
    event("Stop"),
    event("SessionStart"),
], ids=["allow", "deny+record", "state", "state-edit", "record", "prompt", "stop", "start"])
def test_warm_hook_imports_nothing_heavy(warm: HookProject, inp: dict) -> None:
    result = probe(warm, inp)
    assert result["code"] in (0, 2)
    assert result["heavy"] == []
    json.loads(result["out"] or "{}")


def test_unchanged_policy_keeps_using_the_cache(warm: HookProject) -> None:
    assert probe(warm, bash("ls"))["heavy"] == []
    text = (warm.root / "warden.yaml").read_text()
    (warm.root / "warden.yaml").write_text(text + "\n# edited\n")
    assert probe(warm, bash("ls"))["heavy"] != []  # changed: parsed and validated again
    assert probe(warm, bash("ls"))["heavy"] == []  # ...and cached again


# Standard modules the hot path does without (each costs milliseconds at start-up): the
# plan index and lazily decoded rules replace pathlib and hashing, warden._json replaces
# json (which imports re and enum), the hook command skips argparse.
AVOIDED = ("argparse", "dataclasses", "typing", "pathlib", "json", "re", "enum", "hashlib",
           "contextlib", "sqlite3", "inspect")
BARE_PROBE = """\
import io, sys
sys.stdin = io.TextIOWrapper(io.BytesIO(sys.argv[1].encode()))
real_stdout, sys.stdout = sys.stdout, io.StringIO()
from warden.cli.main import main
code = main(["hook", "claude"])
reply = sys.stdout.getvalue()
sys.stdout = real_stdout
print(code, reply.strip() or "{}", " ".join(sorted(sys.modules)), sep="\\n")
"""


def bare_probe(hp: HookProject, inp: dict) -> tuple[int, str, set[str]]:
    proc = subprocess.run([sys.executable, "-c", BARE_PROBE, json.dumps(inp)],
                          capture_output=True, text=True, cwd=hp.root, env=hp.full_env(),
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    code, reply, modules = proc.stdout.splitlines()[-3:]
    return int(code), reply, set(modules.split())


def test_an_allowed_call_imports_only_what_it_needs(warm: HookProject) -> None:
    import time

    time.sleep(2.1)  # the discovery index is written once the policy file has settled
    assert warm.hook(file_tool("Read", "/tmp/x.py", "PostToolUse")).code == 0  # state.db
    assert (warm.root / ".warden" / "state.db").exists()
    code, reply, modules = bare_probe(warm, bash("make build"))  # no rule says anything
    assert (code, reply) == (0, "{}")
    assert modules.isdisjoint(AVOIDED), sorted(modules & set(AVOIDED))
    code, reply, modules = bare_probe(warm, bash("rm -rf /"))  # a deny reads the mode
    assert code in (0, 2) and "deny" in reply
    assert "sqlite3" in modules


def test_observe_mode_still_holds_for_a_deny(warm: HookProject) -> None:
    """A plain allow skips reading the stored mode; anything else still honours it."""
    assert warm.hook(file_tool("Read", "/tmp/x.py", "PostToolUse")).code == 0
    proc = subprocess.run([WARDEN, "mode", "observe"], cwd=warm.root, env=warm.full_env(),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    code, reply, _ = bare_probe(warm, bash("rm -rf /"))
    assert code == 0 and "permissionDecision" not in reply
    code, reply, _ = bare_probe(warm, bash("make build"))
    assert (code, reply) == (0, "{}")
