"""`warden init`: starter files that validate, test green and are already formatted."""

from __future__ import annotations

from pathlib import Path

import yaml
from workflow_support import Runner, put


def test_init_writes_a_working_project(tmp_path: Path, warden: Runner) -> None:
    r = warden("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:3] == [
        "wrote warden.yaml", "wrote warden.warden-test.yaml", "wrote .pre-commit-config.yaml"]
    policy = (tmp_path / "warden.yaml").read_text()
    assert policy.splitlines()[0] == (
        "# yaml-language-server: $schema=https://warden.dev/schema/warden.schema.json")
    tests = (tmp_path / "warden.warden-test.yaml").read_text()
    assert tests.startswith("# yaml-language-server: $schema=https://warden.dev/schema/"
                            "warden-test.schema.json")
    r = warden("validate", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = warden("validate", "warden.warden-test.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = warden("test", "--coverage", "--min-coverage", "100", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "8 passed, 0 failed"
    r = warden("fmt", "--check", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    config = yaml.safe_load((tmp_path / ".pre-commit-config.yaml").read_text())
    hooks = config["repos"][0]["hooks"]
    assert config["repos"][0]["repo"] == "local"
    assert [h["id"] for h in hooks] == ["warden-validate", "warden-test", "warden-fmt"]
    assert all(h["language"] == "system" for h in hooks)


def test_init_refuses_to_overwrite(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "warden.yaml", "version: 1\n")
    r = warden("init", cwd=tmp_path)
    assert r.returncode == 64
    assert "warden.yaml already exists (nothing written; use --force to overwrite)" in r.stderr
    assert (tmp_path / "warden.yaml").read_text() == "version: 1\n"
    assert not (tmp_path / "warden.warden-test.yaml").exists()
    assert not (tmp_path / ".pre-commit-config.yaml").exists()
    r = warden("init", "--force", cwd=tmp_path)
    assert r.returncode == 0
    assert "policies:" in (tmp_path / "warden.yaml").read_text()
    assert warden("test", cwd=tmp_path).returncode == 0


def test_init_appends_to_an_existing_pre_commit_config(tmp_path: Path, warden: Runner) -> None:
    existing = (
        "# my hooks\n"
        "repos:\n"
        "  - repo: https://github.com/pre-commit/pre-commit-hooks\n"
        "    rev: v4.6.0\n"
        "    hooks:\n"
        "      - id: trailing-whitespace  # keep this comment\n"
    )
    (tmp_path / ".pre-commit-config.yaml").write_text(existing)
    r = warden("init", cwd=tmp_path)
    assert r.returncode == 0
    assert "added the warden hooks to .pre-commit-config.yaml" in r.stdout
    text = (tmp_path / ".pre-commit-config.yaml").read_text()
    assert text.startswith(existing)
    config = yaml.safe_load(text)
    assert [r["repo"] for r in config["repos"]] == [
        "https://github.com/pre-commit/pre-commit-hooks", "local"]
    # a second init (forced) does not add the hooks twice
    r = warden("init", "--force", cwd=tmp_path)
    assert r.returncode == 0
    assert ".pre-commit-config.yaml already has warden hooks" in r.stdout
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == text
