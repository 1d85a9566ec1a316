"""schemathesis against the running server: every operation of /v1/openapi.json with
generated and schema-violating requests (examples, coverage and fuzzing phases, every check:
no 5xx, documented status codes, content types and headers, responses valid against the
document, negative data rejected, unsupported methods answered 405 with Allow, auth enforced).

The schemathesis command-line runner is used (its pytest plugin does not support pytest 9);
the number of generated cases is bounded (``-n``) and the seed is fixed, so the run is
reproducible and takes a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fleet_helpers import DEFAULT_POLICY, write

TOKEN = "fuzz-token"
WARN_POLICY = """\
  - name: warn-sudo
    tool: Bash
    when: {field: tool_input.command, contains: sudo}
    effect: warn
    message: "sudo: {tool_input.command}"
  - name: ask-network
    tool: {matches: "WebFetch|WebSearch"}
    effect: ask
"""


def _schemathesis() -> str:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return exe


def test_schemathesis_run(serve: Any, tmp_path: Path) -> None:
    exe = _schemathesis()
    root = tmp_path / "repo"
    write(root / "warden.yaml", DEFAULT_POLICY + WARN_POLICY)
    srv = serve(root, env={"WARDEN_TOKEN": TOKEN}, token=TOKEN)
    proc = subprocess.run(
        [exe, "run", f"{srv.url}/v1/openapi.json", "--url", srv.url,
         "-H", f"Authorization: Bearer {TOKEN}", "--checks", "all",
         "--phases", "examples,coverage,fuzzing", "-n", "60", "--seed", "20240101",
         "--workers", "2", "--no-color", "--warnings", "off"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "Fuzzing" in output and "Coverage" in output, output[-3000:]
