"""Stage 6: the decision document of DESIGN §4 and the exit-code table."""

from __future__ import annotations

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


_MISSING: Any = object()
_LAZY = frozenset({"feedback", "matched", "gates", "side_effects", "warnings", "extra"})
_FIELDS = (
    "decision",
    "enforced",
    "reason",
    "feedback",
    "matched",
    "gates",
    "plan_hash",
    "event",
    "tool",
    "duration_ms",
    "mode",
    "side_effects",
    "warnings",
    "extra",
    "default_used",
)


class Decision:
    """One decision; ``to_dict()`` is the JSON document, ``exit_code`` what the CLI exits.

    A record with the fields below (constructor, ``==`` and ``repr`` as a dataclass), kept
    lean because the in-process API builds one per call: slots, and the lists and ``extra``
    made on first use when not given (empty; ``matched`` from the matched rules that
    ``new_decision`` was given).
    """

    __slots__ = (*_FIELDS, "_rules")
    __record_fields__ = _FIELDS
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    decision: str
    enforced: bool
    reason: str
    feedback: list[dict[str, str]]
    matched: list[dict[str, str]]
    gates: list[dict[str, Any]]
    plan_hash: str
    event: str | None
    tool: str | None
    duration_ms: float
    mode: str
    side_effects: list[dict[str, Any]]
    warnings: list[str]
    extra: dict[str, Any]
    default_used: bool

    _rules: list[Any]  # see new_decision

    def __init__(
        self,
        decision: str,
        enforced: bool,
        reason: str,
        feedback: list[dict[str, str]] = _MISSING,
        matched: list[dict[str, str]] = _MISSING,
        gates: list[dict[str, Any]] = _MISSING,
        plan_hash: str = "",
        event: str | None = None,
        tool: str | None = None,
        duration_ms: float = 0.0,
        mode: str = "enforce",
        side_effects: list[dict[str, Any]] = _MISSING,
        warnings: list[str] = _MISSING,
        extra: dict[str, Any] = _MISSING,
        default_used: bool = False,
    ) -> None:
        self.decision = decision
        self.enforced = enforced
        self.reason = reason
        if feedback is not _MISSING:
            self.feedback = feedback
        if matched is not _MISSING:
            self.matched = matched
        if gates is not _MISSING:
            self.gates = gates
        self.plan_hash = plan_hash
        self.event = event
        self.tool = tool
        self.duration_ms = duration_ms
        self.mode = mode
        if side_effects is not _MISSING:
            self.side_effects = side_effects
        if warnings is not _MISSING:
            self.warnings = warnings
        if extra is not _MISSING:
            self.extra = extra
        self.default_used = default_used

    def __getattr__(self, name: str) -> Any:
        # only called for a slot never assigned: the fields made on first use
        if name not in _LAZY:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value: Any
        if name == "extra":
            value = {}
        elif name == "matched":
            try:
                rules = object.__getattribute__(self, "_rules")
            except AttributeError:
                rules = ()
            value = [
                {"policy": r.name, "effect": r.effect, "source": r.spec["source"]} for r in rules
            ]
        else:
            value = []
        object.__setattr__(self, name, value)
        return value

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _FIELDS)

    def __getstate__(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in _FIELDS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for n, v in state.items():
            object.__setattr__(self, n, v)

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
        if self.extra:
            doc.update(self.extra)
        return doc

    def __repr__(self) -> str:
        return f"Decision({self.decision!r}, reason={self.reason!r})"


def exit_code_table() -> str:
    lines = ["code  meaning", "----  -------"]
    lines += [f"{code:>4}  {text}" for code, text in EXIT_CODES]
    return "\n".join(lines)


def new_decision(
    decision: str,
    enforced: bool,
    reason: str,
    feedback: list[dict[str, str]] | None,
    rules: list[Any],
    plan_hash: str,
    event: str | None,
    tool: str | None,
    mode: str,
    default_used: bool,
    _new: Any = object.__new__,
) -> Decision:
    """``Decision(...)`` for the evaluation hot path: no keyword parsing, and the fields
    left at their defaults made on first use. ``matched`` is made then from ``rules`` (the
    runtime's matched rules: their ``name``, ``effect`` and ``spec["source"]``);
    ``feedback`` None is empty."""
    d: Decision = _new(Decision)
    d.decision = decision
    d.enforced = enforced
    d.reason = reason
    if feedback is not None:
        d.feedback = feedback
    if rules:
        d._rules = rules
    d.plan_hash = plan_hash
    d.event = event
    d.tool = tool
    d.duration_ms = 0.0
    d.mode = mode
    d.default_used = default_used
    return d
