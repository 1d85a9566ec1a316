"""Fixtures for the agent-hook tests; the helpers live in hookutil.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parent))  # never shadow tests/conftest.py

from hookutil import HookProject


@pytest.fixture
def hp(tmp_path: Path) -> HookProject:
    """A project directory (no policy yet) with a private HOME and XDG directories."""
    root = tmp_path / "shop"
    root.mkdir()
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".cache").mkdir()
    return HookProject(root, home)
