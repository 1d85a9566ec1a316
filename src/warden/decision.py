"""Stage 6: the decision document of DESIGN §4 and the exit-code table."""

from __future__ import annotations

from warden._record import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXIT_CODES: list[tuple[int, str]] = [
    (0, "allowed / succeeded / valid / tests passed"),
    (1, "check, test, fmt --check: something failed (validate uses 78)"),
    (2, "denied (also: a gate blocked a run; no side effect happened)"),
    (3, "needs approval (ask; a proposal is pending)"),
    (4, "warnings only, and --fail-on-warn was given"),
    (5, "a run failed and was rolled back"),
    (6, "a run failed and could not be fully rolled back (needs a human)"),
    (64, "usage error"),
    (65, "bad input data (malformed event JSON, params that fail their schema)"),
    (70, "internal error (with on_error: deny, hooks turn this into a deny)"),
    (78, "bad policy files (schema or semantic error)"),
]
DECISION_EXIT = {"allow": 0, "deny": 2, "ask": 3}


@dataclass
class Decision:
    """One decision; ``to_dict()`` is the JSON document, ``exit_code`` what the CLI exits."""

    decision: str
    enforced: bool
    reason: str
    feedback: list[dict[str, str]] = field(default_factory=list)
    matched: list[dict[str, str]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    plan_hash: str = ""
    event: str | None = None
    tool: str | None = None
    duration_ms: float = 0.0
    mode: str = "enforce"
    side_effects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    default_used: bool = False

    @property
    def exit_code(self) -> int:
        if not self.enforced:
            return 0
        return DECISION_EXIT.get(self.decision, 70)

    def exit_code_for(self, *, fail_on_warn: bool = False) -> int:
        code = self.exit_code
        if code == 0 and fail_on_warn and self.feedback and self.enforced:
            return 4
        return code

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "decision": self.decision,
            "enforced": self.enforced,
            "reason": self.reason,
            "feedback": self.feedback,
            "matched": self.matched,
            "gates": self.gates,
            "plan": {"hash": self.plan_hash},
            "input": {"event": self.event, "tool": self.tool},
            "duration_ms": self.duration_ms,
            "mode": self.mode,
        }
        if self.side_effects:
            doc["side_effects"] = self.side_effects
        if self.warnings:
            doc["warnings"] = self.warnings
        doc.update(self.extra)
        return doc

    def __repr__(self) -> str:
        return f"Decision({self.decision!r}, reason={self.reason!r})"


def exit_code_table() -> str:
    lines = ["code  meaning", "----  -------"]
    lines += [f"{code:>4}  {text}" for code, text in EXIT_CODES]
    return "\n".join(lines)
