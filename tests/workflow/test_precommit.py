"""The pre-commit hooks of this repository, used the way another repository would.

`.pre-commit-hooks.yaml` is checked statically, then exercised with the real pre-commit:
`pre-commit try-repo <a clone of this repository> <hook> --all-files` in a temporary git
repository. pre-commit builds a virtualenv and pip-installs warden from the clone (that
needs the package registry), so these tests are marked slow; the virtualenv is built once
per test session (a shared PRE_COMMIT_HOME).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from workflow_support import LEAKY, REPO, dedent, put

PRE_COMMIT = str(Path(sys.executable).parent / "pre-commit")
HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"


def test_hooks_file_declares_the_four_hooks() -> None:
    hooks = yaml.safe_load(HOOKS_FILE.read_text(encoding="utf-8"))
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"warden-validate", "warden-test", "warden-fmt", "warden-check"}
    for h in hooks:
        assert h["language"] == "python"
        assert h["entry"].startswith("warden ")
        assert h["name"] and h["description"]
    assert by_id["warden-fmt"]["entry"] == "warden fmt --check"
    assert by_id["warden-validate"]["pass_filenames"] is False
    assert by_id["warden-test"]["pass_filenames"] is False
    assert set(by_id["warden-check"]["types_or"]) == {"yaml", "json", "toml"}


@pytest.mark.parametrize(("hook", "path", "matches"), [
    ("warden-validate", "warden.yaml", True),
    ("warden-validate", ".warden/extra.yaml", True),
    ("warden-validate", "sub/project/warden.yaml", True),
    ("warden-validate", "k8s/deploy.yaml", False),
    ("warden-validate", "warden.warden-test.yaml", False),
    ("warden-test", "policies.warden-test.yaml", True),
    ("warden-test", "policies.warden-test.yml", True),
    ("warden-validate", "t/x.warden-test.yml", False),
    ("warden-test", "warden.yaml", True),
    ("warden-test", "README.md", False),
    ("warden-fmt", "t/x.warden-test.yaml", True),
    ("warden-check", "warden.yaml", False),
    ("warden-check", ".pre-commit-config.yaml", False),
])
def test_hook_file_patterns(hook: str, path: str, matches: bool) -> None:
    import re

    h = {h["id"]: h for h in yaml.safe_load(HOOKS_FILE.read_text(encoding="utf-8"))}[hook]
    included = re.search(h.get("files", ""), path) is not None
    excluded = "exclude" in h and re.search(h["exclude"], path) is not None
    assert (included and not excluded) is matches


# ------------------------------------------------------------------ the real pre-commit


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(a clean clone of this repository's HEAD, a PRE_COMMIT_HOME shared by the tests)."""
    if not (REPO / ".git").exists():
        pytest.skip("the repository is not a git checkout")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    base = tmp_path_factory.mktemp("precommit")
    clone = base / "warden-clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)],
                   check=True, capture_output=True)
    if not (clone / ".pre-commit-hooks.yaml").exists():
        pytest.fail(".pre-commit-hooks.yaml is not committed")
    yield clone, base / "pre-commit-home"


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "--quiet", str(path)], check=True)
    return path


def try_repo(hooks: tuple[Path, Path], cwd: Path,
             hook: str | None = None) -> subprocess.CompletedProcess[str]:
    """``pre-commit try-repo CLONE [HOOK] --all-files`` (every hook when HOOK is None).
    try-repo installs into a fresh temporary store each time (~20 s)."""
    clone, pc_home = hooks
    subprocess.run(["git", "add", "-A"], cwd=cwd, check=True)
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    env.update(PRE_COMMIT_HOME=str(pc_home), XDG_CACHE_HOME=str(cwd.parent / "cache"),
               XDG_CONFIG_HOME=str(cwd.parent / "config"), PRE_COMMIT_COLOR="never")
    env.pop("VIRTUAL_ENV", None)
    args = [PRE_COMMIT, "try-repo", str(clone), *([hook] if hook else []), "--all-files"]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
                          check=False)


TESTS = """\
    version: 1
    tests:
      - name: rm -rf / is denied
        input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: rm -rf /}}
        expect: {decision: deny}
"""

GOOD_COMPOSE = """\
    services:
      web:
        image: nginx:1.27.0
"""

GOOD_POLICY = """\
    version: 1
    policies:
      - name: no-rm-rf-root
        event: PreToolUse
        tool: Bash
        when: {field: tool_input.command, matches: 'rm\\s+-rf\\s+/'}
        effect: deny
      - name: no-latest
        event: file
        when: {field: 'document.services.*.image', ends_with: ':latest'}
        effect: deny
        message: "{path}: pin the image (no :latest)"
"""


def hook_sections(output: str) -> dict[str, str]:
    """pre-commit's output split per hook: {hook name: "Passed"/"Failed" + its output}."""
    sections: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        for status in ("Passed", "Failed"):
            if line.endswith(status) and "..." in line:
                current = line.split("...")[0].rstrip(".")
                sections[current] = status + "\n"
                break
        else:
            if current is not None:
                sections[current] += line + "\n"
    return sections


@pytest.mark.slow
def test_try_repo_every_hook_passes_on_a_good_repository(
        hooks_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "consumer")
    put(repo / "warden.yaml", GOOD_POLICY)
    put(repo / "policy.warden-test.yaml", TESTS)
    put(repo / "compose.yaml", GOOD_COMPOSE)
    r = try_repo(hooks_repo, repo)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    sections = hook_sections(r.stdout)
    assert set(sections) == {"warden validate", "warden test", "warden fmt --check",
                             "warden check"}, r.stdout
    assert all(v.startswith("Passed") for v in sections.values()), sections


@pytest.mark.slow
def test_try_repo_fails_readably_on_bad_data_tests_and_formatting(
        hooks_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "consumer")
    put(repo / "warden.yaml", "policies:\n" + dedent(GOOD_POLICY).split("policies:\n", 1)[1]
        + "version: 1\n")
    put(repo / "policy.warden-test.yaml", TESTS.replace("expect: {decision: deny}",
                                                        "expect: {decision: allow}"))
    put(repo / "compose.yaml", GOOD_COMPOSE + "      cache:\n        image: redis:latest\n")
    r = try_repo(hooks_repo, repo)
    assert r.returncode == 1
    sections = hook_sections(r.stdout)
    assert sections["warden validate"].startswith("Passed"), r.stdout
    test = sections["warden test"]
    assert test.startswith("Failed")
    assert "decision: expected 'allow', got 'deny'" in test and "0 passed, 1 failed" in test
    fmt = sections["warden fmt --check"]
    assert fmt.startswith("Failed") and "would reformat warden.yaml" in fmt
    check = sections["warden check"]
    assert check.startswith("Failed")
    assert "compose.yaml:5:12: DENY no-latest: compose.yaml: pin the image (no :latest)" in check


@pytest.mark.slow
def test_try_repo_validate_fails_readably_on_a_broken_policy(
        hooks_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "consumer")
    put(repo / "warden.yaml", GOOD_POLICY.replace("effect: deny\n      - name: no-latest",
                                                  "efect: deny\n      - name: no-latest"))
    r = try_repo(hooks_repo, repo, "warden-validate")
    assert r.returncode == 1, r.stdout[-4000:]
    out = hook_sections(r.stdout)["warden validate"]
    assert out.startswith("Failed")
    assert "exit code: 78" in out
    assert "warden.yaml:7:5: unknown key 'efect' (did you mean 'effect'?)" in out
