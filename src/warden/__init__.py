"""warden: declarative YAML policy-as-code (DESIGN.md §9 is the public API).

import warden
engine = warden.load()
d = engine.evaluate({"hook_event_name": "PreToolUse", "tool_name": "Bash",
                     "tool_input": {"command": "rm -rf /"}})
d.decision, d.exit_code, d.to_dict(), engine.plan_hash
"""

from __future__ import annotations

__version__ = "0.1.0"

from warden.errors import InputError, PolicyError, UsageError, WardenError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from warden.decision import Decision
    from warden.engine import Engine, load, load_plan

__all__ = [
    "Decision",
    "Engine",
    "InputError",
    "PolicyError",
    "UsageError",
    "WardenError",
    "__version__",
    "load",
    "load_plan",
]


def __getattr__(name: str) -> Any:
    # Lazy: `import warden` stays cheap for the hook hot path.
    if name in ("Engine", "load", "load_plan"):
        from warden import engine

        return getattr(engine, name)
    if name == "Decision":
        from warden.decision import Decision

        return Decision
    raise AttributeError(name)
