"""``warden test``: run the policies' own unit tests (``*.warden-test.yaml``) and measure
rule coverage.

A test file (schema/warden-test.schema.json) holds cases; each case evaluates one input
against the policies the file names (``policies:``, relative to the test file) or, without
that key, against the project discovered from the test file's directory. User policies
(``$XDG_CONFIG_HOME/warden``) never take part, so a result never depends on the machine.

Per case:

- ``now`` fixes the clock (ISO 8601; default: the real clock, or ``$WARDEN_NOW``);
- ``env`` is the whole environment ``env:`` conditions see (default: an empty one, so a
  test gives the same answer on a laptop and in CI);
- ``state`` lists prior events of the session, recorded at ``now - ago`` (in memory: no
  state database is opened or written);
- the input is evaluated without side effects (``then:`` items never run) and in the mode
  of the policy files (``warden mode`` in a state database is ignored);
- ``expect`` compares ``decision``; ``matched`` as the exact, ordered list of matched
  policy names (``[]``: no hard rule matched); ``feedback``: every string is a substring of
  some feedback message (``[]``: no feedback at all); ``exit_code``: the code ``warden
  eval`` would exit with.

Coverage: a rule is covered when it applied in at least one case; a branch (every item of
an ``any:`` or ``all:`` list) when it evaluated true, on its own, in at least one case in
which its rule's ``event``/``tool`` filters matched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden.errors import PolicyError, Problem, no_such_path
from warden.load import Document, test_files_under

__all__ = [
    "CaseResult",
    "Coverage",
    "FileResult",
    "RecordedEvent",
    "Run",
    "find_test_files",
    "load_test_file",
    "run_tests",
]


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A prior event of a test case, shaped like ``warden.state.Event``."""

    id: int
    session_id: str
    ts: float
    event: str
    tool: str | None
    data: dict[str, Any]


@dataclass
class CaseResult:
    """The outcome of one test case."""

    file: str
    name: str
    line: int
    passed: bool
    diffs: list[str] = field(default_factory=list)
    error: str | None = None
    decision: dict[str, Any] | None = None
    duration_ms: float = 0.0

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class FileResult:
    """The cases of one test file."""

    file: str
    cases: list[CaseResult] = field(default_factory=list)
    deselected: int = 0

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.passed)


# ----------------------------------------------------------------------- discovery


def find_test_files(paths: list[str]) -> list[Path]:
    """``*.warden-test.yaml`` (or ``.yml``) under the directories given (recursively, ``.git`` and
    ``node_modules`` skipped), plus any file named directly, in a stable order."""
    found: list[Path] = []
    seen: set[Path] = set()
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            candidates: Iterable[Path] = [
                f
                for f in test_files_under(p)
                if f.is_file() and not ({".git", "node_modules"} & set(f.parts))
            ]
        elif p.is_file():
            candidates = [p]
        else:
            raise no_such_path(arg)
        for f in candidates:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


def display(path: Path) -> str:
    """A path as shown in reports: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_test_file(path: Path) -> tuple[Document | None, list[Problem]]:
    """Parse and schema-check one test file: (document, problems)."""
    from warden.load import load_document
    from warden.validate import schema_problems

    try:
        doc = load_document(path, display(path))
    except PolicyError as exc:
        return None, exc.problems
    problems = schema_problems(doc, "warden-test")
    problems.extend(_semantic_problems(doc))
    return doc, problems


def _semantic_problems(doc: Document) -> list[Problem]:
    """What the schema cannot say: unparseable ``now``, duplicate test names."""
    from warden.durations import parse_instant

    problems: list[Problem] = []
    seen: dict[str, int] = {}
    tests = doc.data.get("tests") if isinstance(doc.data, dict) else None
    for i, case in enumerate(tests if isinstance(tests, list) else []):
        if not isinstance(case, dict):
            continue
        now = case.get("now")
        if isinstance(now, str):
            try:
                parse_instant(now)
            except ValueError as exc:
                line, col = doc.pos(("tests", i, "now"))
                problems.append(Problem(f"invalid time {now!r}: {exc}", doc.file, line, col))
        name = case.get("name")
        if isinstance(name, str):
            if name in seen:
                line, col = doc.pos(("tests", i, "name"))
                problems.append(
                    Problem(
                        f"duplicate test name {name!r} (first at line {seen[name]})",
                        doc.file,
                        line,
                        col,
                    )
                )
            else:
                seen[name] = doc.pos(("tests", i, "name"))[0]
    return problems


# ------------------------------------------------------------------------ policies


def engine_for(
    doc: Document,
    path: Path,
    *,
    use_cache: bool = True,
    memo: dict[tuple[str, ...], Any] | None = None,
) -> Any:
    """The engine a test file runs against (``policies:``, else the project around it).
    ``memo`` shares one engine between test files of the same policy set."""
    from warden.engine import Engine, build_plan
    from warden.load import discover

    base = path.resolve().parent
    cwd = os.getcwd()
    listed = doc.data.get("policies")
    if listed:
        resolved = []
        for i, rel in enumerate(listed):
            target = (base / rel).resolve()
            if not target.exists():
                line, col = doc.pos(("policies", i))
                raise PolicyError(
                    Problem(
                        f"policy path {rel!r} does not exist (relative to {display(base)})",
                        doc.file,
                        line,
                        col,
                    )
                )
            resolved.append(str(target))
        sources, root = discover(resolved, cwd=cwd, user=False, start=str(base))
    else:
        sources, root = discover(None, cwd=cwd, user=False, start=str(base))
    if not sources:
        raise PolicyError(
            Problem(
                "no policy files for this test file: add 'policies: [...]' or put it in a "
                "project (warden.yaml or .warden/*.yaml at or above its directory)",
                doc.file,
                1,
                1,
            )
        )
    key = (str(root), *(str(Path(s.path).resolve()) for s in sources))
    if memo is not None and key in memo:
        return memo[key]
    loaded = build_plan(sources, root, use_cache=use_cache)
    engine = Engine(loaded.plan, loaded.root, loaded.warnings)
    if memo is not None:
        memo[key] = engine
    return engine


# ------------------------------------------------------------------------ one case


def case_events(case: dict[str, Any], now: float) -> list[RecordedEvent]:
    """The prior ``state`` events of a case, oldest first."""
    from warden.durations import parse_duration
    from warden.runtime import event_and_tool

    events = []
    for i, prior in enumerate(case.get("state") or []):
        data = prior["input"]
        event, tool = event_and_tool(data)
        session = data.get("session_id")
        ts = now - parse_duration(prior.get("ago", "0s"))
        events.append(
            RecordedEvent(
                i + 1, session if isinstance(session, str) else "", ts, event or "", tool, data
            )
        )
    events.sort(key=lambda e: (e.ts, e.id))
    return events


def compare(expect: dict[str, Any], decision: Any) -> list[str]:
    """One line per expectation the decision does not meet (empty: the case passed)."""
    diffs = []
    if "decision" in expect and expect["decision"] != decision.decision:
        diffs.append(f"decision: expected {expect['decision']!r}, got {decision.decision!r}")
    if "matched" in expect:
        got = [m["policy"] for m in decision.matched]
        if list(expect["matched"]) != got:
            diffs.append(f"matched: expected {list(expect['matched'])!r}, got {got!r}")
    if "feedback" in expect:
        messages = [f["message"] for f in decision.feedback]
        missing = [s for s in expect["feedback"] if not any(s in m for m in messages)]
        for s in missing:
            diffs.append(f"feedback: expected a message containing {s!r}, got {messages!r}")
        if not expect["feedback"] and messages:  # []: no warn rule may apply
            diffs.append(f"feedback: expected none, got {messages!r}")
    if "exit_code" in expect and expect["exit_code"] != decision.exit_code:
        diffs.append(f"exit_code: expected {expect['exit_code']}, got {decision.exit_code}")
    return diffs


def run_case(
    engine: Any, case: dict[str, Any], *, file: str, line: int, coverage: Coverage | None = None
) -> CaseResult:
    from warden.durations import now as clock
    from warden.durations import parse_instant
    from warden.errors import WardenError

    result = CaseResult(file, str(case.get("name", "?")), line, passed=False)
    start = time.perf_counter()
    try:
        now = parse_instant(case["now"]) if case.get("now") else clock()
        environ = {str(k): str(v) for k, v in (case.get("env") or {}).items()}
        recorded = case_events(case, now)

        def events() -> list[Any]:
            return list(recorded)

        mode = str(engine.settings.get("mode", "enforce"))
        decision = engine.evaluate(
            case["input"], now=now, environ=environ, events=events, mode=mode, side_effects=False
        )
        if coverage is not None:
            coverage.observe(
                engine, engine.make_env(case["input"], now=now, environ=environ, events=events)
            )
    except WardenError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.diffs = [f"error: {exc}"]
        return result
    result.decision = decision.to_dict()
    result.diffs = compare(case["expect"], decision)
    if result.diffs:
        result.diffs.append(f"reason: {decision.reason}")
    result.passed = not result.diffs
    result.duration_ms = round((time.perf_counter() - start) * 1000, 3)
    return result


# ------------------------------------------------------------------------ coverage


@dataclass
class _Item:
    kind: str  # "rule" | "branch"
    source: str  # file:line:col
    label: str
    covered: bool = False


class Coverage:
    """Which rules applied and which ``any``/``all`` branches were true, per policy file."""

    def __init__(self) -> None:
        self.items: dict[str, _Item] = {}
        self._seen_plans: set[str] = set()
        self._preds: dict[int, Callable[..., bool]] = {}

    def register(self, engine: Any) -> None:
        if engine.plan_hash in self._seen_plans:
            return
        self._seen_plans.add(engine.plan_hash)
        for scope in engine.plan["scopes"]:
            for spec in scope["rules"]:
                key = f"rule {spec['source']}"
                self.items.setdefault(key, _Item("rule", spec["source"], spec["name"]))
                if spec.get("when"):
                    for node, parent, n in _branches(spec["when"]):
                        at = node.get("at") or spec["source"]
                        label = f"branch {n} of {parent}: in rule {spec['name']}"
                        self.items.setdefault(f"branch {at}", _Item("branch", at, label))

    def observe(self, engine: Any, env: Any) -> None:
        """Mark what this input exercised."""
        from warden.runtime import event_and_tool

        self.register(engine)
        event, tool = event_and_tool(env.input)
        for scope in engine.runtime.scopes:
            for i, spec in enumerate(scope.specs):
                rule = scope.rule(i)
                if not _candidate(spec, rule, event, tool):
                    continue
                if rule.when is None or self._true(spec["when"], env):
                    self.items[f"rule {spec['source']}"].covered = True
                if spec.get("when"):
                    for node, _, _ in _branches(spec["when"]):
                        item = self.items.get(f"branch {node.get('at') or spec['source']}")
                        if item is not None and not item.covered and self._true(node, env):
                            item.covered = True

    def _true(self, node: dict[str, Any], env: Any) -> bool:
        from warden.runtime import build

        pred = self._preds.get(id(node))
        if pred is None:
            pred = self._preds[id(node)] = build(node)
        try:
            return bool(pred(env, env.input))
        except Exception:
            return False

    def report(self) -> dict[str, Any]:
        """Per policy file and in total: counts, percentages and what was never exercised."""
        files: dict[str, dict[str, Any]] = {}
        for item in sorted(self.items.values(), key=lambda i: _source_key(i.source)):
            fname = item.source.rsplit(":", 2)[0]
            f = files.setdefault(
                fname,
                {
                    "file": fname,
                    "rules": 0,
                    "rules_covered": 0,
                    "branches": 0,
                    "branches_covered": 0,
                    "uncovered": [],
                },
            )
            plural = "rules" if item.kind == "rule" else "branches"
            f[plural] += 1
            if item.covered:
                f[f"{plural}_covered"] += 1
            else:
                what = (
                    f"rule {item.label} never applied"
                    if item.kind == "rule"
                    else f"{item.label} never true"
                )
                f["uncovered"].append({"kind": item.kind, "source": item.source, "message": what})
        total = covered = 0
        for f in files.values():
            n = f["rules"] + f["branches"]
            c = f["rules_covered"] + f["branches_covered"]
            f["percent"] = _pct(c, n)
            total += n
            covered += c
        return {
            "files": list(files.values()),
            "total": total,
            "covered": covered,
            "percent": _pct(covered, total),
        }


def _pct(covered: int, total: int) -> float:
    return 100.0 if total == 0 else round(100.0 * covered / total, 1)


def _source_key(source: str) -> tuple[str, int, int]:
    file, line, col = source.rsplit(":", 2)
    try:
        return (file, int(line), int(col))
    except ValueError:
        return (source, 0, 0)


def _branches(node: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, int]]:
    """Every item of every ``any``/``all`` list in a condition tree, with its list's op and
    its 1-based position in the list."""
    op = node.get("op")
    if op in ("any", "all"):
        for n, child in enumerate(node["args"], 1):
            yield child, op, n
            yield from _branches(child)
    elif op == "not":
        yield from _branches(node["arg"])


def _candidate(spec: dict[str, Any], rule: Any, event: Any, tool: Any) -> bool:
    if spec.get("events") and event not in spec["events"]:
        return False
    if spec.get("tools") and tool not in spec["tools"]:
        return False
    return not (
        rule.tool_rx is not None and (not isinstance(tool, str) or rule.tool_rx(tool) is None)
    )


# ----------------------------------------------------------------------------- run


@dataclass
class Run:
    """Everything one ``warden test`` invocation found."""

    files: list[FileResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    coverage: dict[str, Any] | None = None
    duration_s: float = 0.0

    @property
    def passed(self) -> int:
        return sum(f.passed for f in self.files)

    @property
    def failed(self) -> int:
        return sum(f.failed for f in self.files)

    @property
    def deselected(self) -> int:
        return sum(f.deselected for f in self.files)


def _selected(name: str, keyword: str | None) -> bool:
    return keyword is None or keyword.casefold() in name.casefold()


def run_tests(
    paths: list[str], *, keyword: str | None = None, coverage: bool = False, use_cache: bool = True
) -> Run:
    """Validate every test file first (problems: nothing runs), then run the cases.

    Raises ``PolicyError`` for bad test files or policy files (exit 78).
    """
    start = time.perf_counter()
    run = Run()
    files = find_test_files(paths)
    loaded: list[tuple[Path, Document]] = []
    for f in files:
        doc, problems = load_test_file(f)
        run.problems.extend(problems)
        if doc is not None and not any(p.severity == "error" for p in problems):
            loaded.append((f, doc))
    if any(p.severity == "error" for p in run.problems):
        raise PolicyError(sorted(run.problems, key=lambda p: p.sort_key()))
    cov = Coverage() if coverage else None
    memo: dict[tuple[str, ...], Any] = {}
    for path, doc in loaded:
        fr = FileResult(doc.file)
        run.files.append(fr)
        cases = doc.data.get("tests") or []
        if not any(_selected(str(c.get("name", "")), keyword) for c in cases):
            fr.deselected = len(cases)
            continue
        engine = engine_for(doc, path, use_cache=use_cache, memo=memo)
        if cov is not None:
            cov.register(engine)
        for i, case in enumerate(cases):
            if not _selected(str(case.get("name", "")), keyword):
                fr.deselected += 1
                continue
            line = doc.pos(("tests", i))[0]
            fr.cases.append(run_case(engine, case, file=doc.file, line=line, coverage=cov))
    if cov is not None:
        run.coverage = cov.report()
    run.duration_s = round(time.perf_counter() - start, 3)
    return run


# ------------------------------------------------------------------------- output


def summary_line(run: Run) -> str:
    """The closing line: exactly ``N passed, N failed``."""
    return f"{run.passed} passed, {run.failed} failed"


def format_text(run: Run, *, verbose: bool = False) -> str:
    lines: list[str] = []
    for f in run.files:
        marks = "".join("." if c.passed else "F" for c in f.cases)
        if f.cases or verbose:
            lines.append(f"{f.file} {marks}")
    failures = [c for f in run.files for c in f.cases if not c.passed]
    if verbose:
        for f in run.files:
            for c in f.cases:
                lines.append(f"{'PASSED' if c.passed else 'FAILED'} {c.where} {c.name}")
    if failures:
        lines.append("")
        lines.append("=" * 30 + " failures " + "=" * 30)
        for c in failures:
            lines.append(f"FAILED {c.where} {c.name}")
            for d in c.diffs:
                lines.append(f"    {d}")
    if run.coverage is not None:
        lines.append("")
        lines.extend(format_coverage(run.coverage))
    lines.append("")
    if run.deselected:
        lines.append(f"{run.deselected} deselected by -k")
    lines.append(summary_line(run))
    return "\n".join(lines)


def format_coverage(cov: dict[str, Any]) -> list[str]:
    lines = ["coverage (rules applied, any/all branches true):"]
    width = max((len(f["file"]) for f in cov["files"]), default=4)
    for f in cov["files"]:
        lines.append(
            f"  {f['file']:<{width}}  rules {f['rules_covered']}/{f['rules']}  "
            f"branches {f['branches_covered']}/{f['branches']}  {f['percent']:.1f}%"
        )
        for u in f["uncovered"]:
            lines.append(f"    {u['source']}: {u['message']}")
    lines.append(f"  {'TOTAL':<{width}}  {cov['covered']}/{cov['total']}  {cov['percent']:.1f}%")
    return lines


def to_json(run: Run) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "passed": run.passed,
        "failed": run.failed,
        "deselected": run.deselected,
        "duration_s": run.duration_s,
        "files": [
            {
                "file": f.file,
                "passed": f.passed,
                "failed": f.failed,
                "cases": [
                    {
                        "name": c.name,
                        "line": c.line,
                        "passed": c.passed,
                        "diffs": c.diffs,
                        "error": c.error,
                        "decision": c.decision,
                        "duration_ms": c.duration_ms,
                    }
                    for c in f.cases
                ],
            }
            for f in run.files
        ],
    }
    if run.coverage is not None:
        doc["coverage"] = run.coverage
    return doc


def to_junit(run: Run) -> str:
    """JUnit XML: one ``testsuite`` per test file, one ``testcase`` per case."""
    import xml.etree.ElementTree as ET

    root = ET.Element(
        "testsuites",
        name="warden test",
        tests=str(run.passed + run.failed),
        failures=str(run.failed),
        errors="0",
        time=f"{run.duration_s:.3f}",
    )
    for f in run.files:
        suite_time = sum(c.duration_ms for c in f.cases) / 1000
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f.file,
            tests=str(len(f.cases)),
            failures=str(f.failed),
            errors="0",
            skipped="0",
            time=f"{suite_time:.3f}",
        )
        for c in f.cases:
            tc = ET.SubElement(
                suite,
                "testcase",
                name=c.name,
                classname=f.file,
                file=f.file,
                line=str(c.line),
                time=f"{c.duration_ms / 1000:.3f}",
            )
            if not c.passed:
                fail = ET.SubElement(
                    tc,
                    "failure",
                    message=c.diffs[0] if c.diffs else "failed",
                    type="AssertionError" if c.error is None else "Error",
                )
                fail.text = f"{c.where}: {c.name}\n" + "\n".join(c.diffs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
