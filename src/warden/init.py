"""``warden init``: starter files in the current directory.

Writes

- ``warden.yaml``: a few commented rules (agent hooks and one ``event: file`` rule), with
  the modeline ``# yaml-language-server: $schema=https://warden.dev/schema/warden.schema.json``
  (the schema's ``$id``; see docs/editors.md to map it to the copy ``warden schema``
  prints, for offline editors);
- ``warden.warden-test.yaml``: tests for those rules (``warden test`` finds it: every
  ``*.warden-test.yaml`` below the working directory);
- ``.pre-commit-config.yaml``: a ``repo: local`` entry running ``warden validate``,
  ``warden test`` and ``warden fmt --check`` with the warden already installed; appended
  to an existing file (comments kept), skipped when a ``warden-*`` hook is already there.

It refuses to overwrite ``warden.yaml`` or the test file unless ``force`` is set: the
command then exits 64 (usage error) and writes nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from warden.errors import UsageError

POLICY_FILE = "warden.yaml"
TEST_FILE = "warden.warden-test.yaml"
PRECOMMIT_FILE = ".pre-commit-config.yaml"
HOOK_IDS = ["warden-validate", "warden-test", "warden-fmt"]

PRECOMMIT_COMMENT = (
    "# warden hooks (added by `warden init`): they run the warden installed here. To pin a\n"
    "# version instead, use the hooks of the warden repository (see docs/ci.md).\n"
)


def precommit_repo() -> dict[str, Any]:
    """The ``repo: local`` entry ``warden init`` adds to .pre-commit-config.yaml."""
    policy_files = r"^(warden\.yaml|\.warden/[^/]+\.ya?ml)$"
    return {
        "repo": "local",
        "hooks": [
            {
                "id": "warden-validate",
                "name": "warden validate",
                "entry": "warden validate",
                "language": "system",
                "files": policy_files,
                "pass_filenames": False,
            },
            {
                "id": "warden-test",
                "name": "warden test",
                "entry": "warden test",
                "language": "system",
                "files": r"(^warden\.yaml$|^\.warden/|\.warden-test\.ya?ml$)",
                "pass_filenames": False,
            },
            {
                "id": "warden-fmt",
                "name": "warden fmt --check",
                "entry": "warden fmt --check",
                "language": "system",
                "files": r"(^warden\.yaml$|^\.warden/[^/]+\.ya?ml$|\.warden-test\.ya?ml$)",
            },
        ],
    }


@dataclass
class Outcome:
    written: list[str] = field(default_factory=list)
    appended: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def template(name: str) -> str:
    return resources.files("warden").joinpath("templates", name).read_text("utf-8")


def init(directory: str | Path = ".", *, force: bool = False) -> Outcome:
    """Write the starter files into ``directory`` (see the module docstring)."""
    from warden.fmt import add_precommit_repo

    base = Path(directory)
    targets = {POLICY_FILE: template("warden.yaml"), TEST_FILE: template("warden.warden-test.yaml")}
    existing = [name for name in targets if (base / name).exists()]
    if existing and not force:
        raise UsageError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}"
            " (nothing written; use --force to overwrite)"
        )
    out = Outcome()
    pre = base / PRECOMMIT_FILE
    old = pre.read_text("utf-8") if pre.exists() else ""
    if old.strip():
        new_pre = add_precommit_repo(old, precommit_repo(), HOOK_IDS)
    else:
        new_pre = PRECOMMIT_COMMENT + (add_precommit_repo("", precommit_repo(), HOOK_IDS) or "")
    for name, text in targets.items():
        (base / name).write_text(text, "utf-8")
        out.written.append(name)
    if new_pre is None:
        out.skipped.append(PRECOMMIT_FILE)
    else:
        pre.write_text(new_pre, "utf-8")
        (out.appended if old.strip() else out.written).append(PRECOMMIT_FILE)
    return out
