"""The one exception family of warden.

Every error raised on purpose is a ``WardenError``; its ``exit_code`` is the code the CLI
exits with (DESIGN.md §4). The CLI prints ``str(error)`` on one line, never a traceback.
"""

from __future__ import annotations


class WardenError(Exception):
    """Base of every error warden raises on purpose."""

    exit_code = 70


class UsageError(WardenError):
    """The command line is wrong."""

    exit_code = 64


class InputError(WardenError):
    """Bad input data: malformed event JSON, params that fail their schema."""

    exit_code = 65


class PolicyError(WardenError):
    """One or more problems in policy files (schema or semantic errors).

    ``problems`` holds every problem found; ``str()`` joins them one per line as
    ``file:line:col: message``.
    """

    exit_code = 78

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = problems
        super().__init__("\n".join(str(p) for p in problems))

    @property
    def file(self) -> str | None:
        return self.problems[0].file if self.problems else None

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None

    @property
    def column(self) -> int | None:
        return self.problems[0].column if self.problems else None


class StateError(WardenError):
    """The state store failed (unreadable, locked, corrupt)."""

    exit_code = 70


class Problem:
    """One diagnostic at a source position: ``file:line:col: message``."""

    __slots__ = ("column", "file", "line", "message", "path", "severity")

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str = "",
        severity: str = "error",
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.severity = severity

    def location(self) -> str:
        if self.file is None:
            return ""
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.message)

    def __str__(self) -> str:
        loc = self.location()
        sev = "" if self.severity == "error" else f"{self.severity}: "
        where = f" (at {self.path})" if self.path else ""
        return f"{loc}: {sev}{self.message}{where}" if loc else f"{sev}{self.message}{where}"

    def __repr__(self) -> str:
        return f"Problem({self!s})"


def no_such_path(arg: str, label: str = "") -> UsageError:
    """The usage error for a path argument that is neither a file nor a directory (missing,
    or a device or FIFO such as ``/dev/zero``, which warden never reads)."""
    import os

    what = "not a regular file or directory" if os.path.exists(arg) else "no such file or directory"
    return UsageError(f"{label}{arg}: {what}")
