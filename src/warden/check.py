"""``warden check``: apply ``event: file`` rules to data files, conftest-style.

Every YAML document (multi-document files give one input per document), JSON file and TOML
file becomes one input ``{event: file, path, format, document}`` where ``path`` is the file
as given on the command line or found below a directory (relative to the working directory
when below it, with ``/`` separators) and ``format`` is ``yaml``, ``json`` or ``toml`` by
extension (``.yaml``/``.yml``, ``.json``, ``.toml``).

Findings: every matched ``deny`` or ``ask`` rule and every applicable ``warn`` rule of a
document. A finding's location is the line and column of the value that made the rule's
condition true (for a ``*`` path, the first element that matched; for ``exists: false``
and ``not:``, the nearest node that exists), else the document's first line.

Levels (SARIF ``level``, GitHub annotation command): deny -> ``error``; ask and warn ->
``warning``. Unparseable files are errors too.

Exit code (DESIGN §8): 1 if any document is denied or asked (enforce mode) or a file cannot
be parsed; else 4 when there are warnings and ``--fail-on-warn``; else 0. In observe mode
decisions never fail the run (but are reported the same way); parse errors still do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden import __version__
from warden.errors import InputError, PolicyError, Problem, UsageError, no_such_path

__all__ = [
    "FORMATS",
    "Checked",
    "Finding",
    "Report",
    "check_paths",
    "collect_files",
    "format_github",
    "format_text",
    "to_json",
    "to_junit",
    "to_sarif",
]

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}
LEVELS = {"deny": "error", "ask": "warning", "warn": "warning"}
SKIP_DIRS = frozenset({".git", ".hg", ".svn"})
PARSE_ERROR_ID = "warden:parse-error"
INFO_URI = "https://warden.dev/docs/ci"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)


@dataclass
class Finding:
    """One rule that fired on one document."""

    policy: str
    effect: str  # deny | ask | warn
    message: str
    line: int
    column: int
    source: str = ""  # where the rule is defined (file:line:col)

    @property
    def level(self) -> str:
        return LEVELS.get(self.effect, "warning")


@dataclass
class Checked:
    """One input (one document of a data file), or one file that could not be parsed."""

    path: str
    format: str
    index: int = 0  # document number within the file (0-based)
    documents: int = 1  # how many documents the file has
    line: int = 1  # the document's first line
    decision: Any = None  # warden.decision.Decision
    findings: list[Finding] = field(default_factory=list)
    error: Problem | None = None

    @property
    def name(self) -> str:
        """``path``, or ``path#N`` (1-based) for a document of a multi-document file."""
        return self.path if self.documents <= 1 else f"{self.path}#{self.index + 1}"

    @property
    def failed(self) -> bool:
        """Counts toward exit 1: a parse error, or an enforced deny/ask."""
        if self.error is not None:
            return True
        d = self.decision
        return d is not None and d.enforced and d.decision in ("deny", "ask")

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return str(self.decision.decision) if self.decision is not None else "allow"

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.effect == "warn"]


@dataclass
class Report:
    """Everything one ``warden check`` run found."""

    results: list[Checked] = field(default_factory=list)
    files: int = 0
    rules: list[dict[str, Any]] = field(default_factory=list)  # rule specs (for SARIF)
    mode: str = "enforce"
    plan_hash: str = ""

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def warning_count(self) -> int:
        return sum(len(r.warnings) for r in self.results)

    def exit_code(self, *, fail_on_warn: bool = False) -> int:
        if any(r.failed for r in self.results):
            return 1
        if fail_on_warn and self.mode == "enforce" and self.warning_count:
            return 4
        return 0


# ----------------------------------------------------------------------- collecting


def display(path: Path) -> str:
    """Relative to the working directory when below it, always with ``/``."""
    try:
        rel = path.absolute().relative_to(Path.cwd())
        return rel.as_posix()
    except ValueError:
        return path.absolute().as_posix()


def _matcher(patterns: list[str] | None) -> Any:
    """A predicate over display paths: a gitignore-style glob matching the path or one of
    its parent directories (so ``--exclude vendor`` skips everything below ``vendor/``)."""
    if not patterns:
        return None
    from warden.compile import glob_to_regex
    from warden.runtime import regex

    rxs = [regex(glob_to_regex(p), full=True) for p in patterns]

    def match(path: str) -> bool:
        parts = path.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(rx(c) is not None for rx in rxs for c in candidates)

    return match


def collect_files(
    paths: list[str], *, include: list[str] | None = None, exclude: list[str] | None = None
) -> list[tuple[Path, str, str]]:
    """(path, display, format) of every data file to check, in a stable order.

    Directories are searched recursively for ``.yaml``, ``.yml``, ``.json`` and ``.toml``
    files (``.git`` skipped). A file named directly must have one of those extensions.
    ``include``/``exclude`` globs apply to every file, named or found.
    """
    inc, exc = _matcher(include), _matcher(exclude)
    out: list[tuple[Path, str, str]] = []
    seen: set[Path] = set()

    def add(p: Path, fmt: str) -> None:
        shown = display(p)
        if inc is not None and not inc(shown):
            return
        if exc is not None and exc(shown):
            return
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append((p, shown, fmt))

    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            for sub in _walk(p):
                fmt = FORMATS.get(sub.suffix.lower())
                if fmt is not None:
                    add(sub, fmt)
        elif p.is_file():
            fmt = FORMATS.get(p.suffix.lower())
            if fmt is None:
                raise UsageError(
                    f"{arg}: cannot tell the format from the extension "
                    f"(use .yaml, .yml, .json or .toml)"
                )
            add(p, fmt)
        else:
            raise no_such_path(arg)
    return out


def _walk(root: Path) -> Iterator[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        found.extend(Path(dirpath) / name for name in filenames)
    yield from sorted(found, key=lambda p: p.as_posix())


# ------------------------------------------------------------------------- checking


def check_paths(
    engine: Any,
    paths: list[str],
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    now: float | None = None,
) -> Report:
    """Check every data file under ``paths`` against ``engine``'s ``event: file`` rules."""
    from warden.load import load_data_file

    files = collect_files(paths, include=include, exclude=exclude)
    report = Report(files=len(files), mode=engine.effective_mode(), plan_hash=engine.plan_hash)
    specs = _rule_specs(engine.plan)
    report.rules = [s for s in specs if _file_rule(s)]
    for path, shown, fmt in files:
        try:
            docs = load_data_file(str(path), fmt, shown)
        except (PolicyError, InputError) as exc:
            problem = (
                exc.problems[0]
                if isinstance(exc, PolicyError) and exc.problems
                else Problem(str(exc), shown, 1, 1)
            )
            if problem.line is None:
                problem = Problem(problem.message, shown, 1, 1)
            report.results.append(Checked(shown, fmt, error=problem, line=problem.line or 1))
            continue
        for i, doc in enumerate(docs):
            report.results.append(
                check_document(engine, doc, shown, fmt, i, len(docs), specs, now=now)
            )
    return report


def check_document(
    engine: Any,
    doc: Any,
    shown: str,
    fmt: str,
    index: int,
    count: int,
    specs: list[dict[str, Any]],
    *,
    now: float | None = None,
) -> Checked:
    """One document -> one decision and its findings."""
    from warden import paths as paths_mod

    result = Checked(shown, fmt, index=index, documents=count, line=doc.line)
    inp = {"event": "file", "path": shown, "format": fmt, "document": doc.data}
    try:
        decision = engine.evaluate(inp, now=now)
    except InputError as exc:
        result.error = Problem(str(exc), shown, doc.line, 1)
        return result
    result.decision = decision
    env = engine.make_env(inp, now=now)
    by_source = {s["source"]: s for s in specs}
    by_name: dict[str, dict[str, Any]] = {}
    for s in specs:
        by_name.setdefault(s["name"], s)
    fired: list[tuple[dict[str, Any], str]] = []
    for m in decision.matched:
        if m["effect"] in ("deny", "ask"):
            spec = by_source.get(m["source"]) or by_name.get(m["policy"])
            if spec is not None:
                fired.append((spec, paths_mod.render_text(spec["message"], inp)))
    for fb in decision.feedback:
        spec = by_name.get(fb["policy"])
        if spec is not None:
            fired.append((spec, fb["message"]))
    for spec, message in fired:
        line, col = locate(spec.get("when"), env, inp, doc)
        result.findings.append(
            Finding(spec["name"], spec["effect"], message, line, col, spec.get("source", ""))
        )
    return result


def _rule_specs(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for scope in plan.get("scopes", []) for r in scope.get("rules", [])]


def _file_rule(spec: dict[str, Any]) -> bool:
    events = spec.get("events")
    return spec.get("effect") != "allow" and (not events or "file" in events)


# ------------------------------------------------------------------------ locations


def locate(node: dict[str, Any] | None, env: Any, inp: dict[str, Any], doc: Any) -> tuple[int, int]:
    """(line, column) of the value that made ``node`` true, else the document's start."""
    path = where(node, env, inp) if node is not None else None
    if path and path[0] == "document":
        line, col = doc.pos(tuple(path[1:]))
        return line, col
    return doc.line, 1


def where(node: dict[str, Any], env: Any, subj: Any) -> tuple[str | int, ...] | None:
    """The concrete input path that best explains why ``node`` is true.

    ``runtime.witness`` for positive field conditions; for ``exists: false`` and ``not:``
    (where no offending value exists) the nearest node that does exist.
    """
    from warden.runtime import build, witness

    op = node.get("op")
    if op == "all":
        # Prefer a value inside the document over input fields such as ``path``.
        # Prefer a value inside the document over input fields such as ``path``, and a
        # real finding over an ``exists: true`` guard (``document.jobs`` exists...).
        # Prefer a value inside the document over input fields such as ``path``, a real
        # finding over an ``exists: true`` guard (``document.jobs`` exists...), and the
        # deepest (most specific) path over a shallow discriminator (``kind: Pod``).
        found = [(w, _guard(c)) for c in node["args"] if (w := where(c, env, subj))]
        inside = [(w, g) for w, g in found if w[0] == "document"]
        ranked = sorted(inside, key=lambda wg: (wg[1], -len(wg[0])))
        best = [w for w, _ in ranked] + [w for w, _ in found]
        return best[0] if best else None
    if op == "any":
        for child in node["args"]:
            if _holds(build(child), env, subj):
                return where(child, env, subj)
        return None
    if op == "not":
        inner = node["arg"]
        if inner.get("op") == "field":
            return _nearest(subj, inner["path"])
        return None
    if op != "field":
        return None
    if node.get("cmp") == "exists" and not node.get("value"):
        return _missing_at(subj, node["path"])
    try:
        return witness(node, env, subj)
    except Exception:
        return None


def _guard(node: dict[str, Any]) -> bool:
    return node.get("op") == "field" and node.get("cmp") == "exists" and bool(node.get("value"))


def _holds(pred: Any, env: Any, subj: Any) -> bool:
    try:
        return bool(pred(env, subj))
    except Exception:
        return False


def _nearest(value: Any, segments: list[str]) -> tuple[str | int, ...] | None:
    """The deepest concrete path along ``segments`` that exists (first ``*`` element)."""
    from warden.paths import STAR

    path: list[str | int] = []
    for seg in segments:
        if seg == STAR:
            if isinstance(value, dict) and value:
                key = next(iter(value))
                path.append(key)
                value = value[key]
                continue
            if isinstance(value, list) and value:
                path.append(0)
                value = value[0]
                continue
            break
        if isinstance(value, dict) and seg in value:
            path.append(seg)
            value = value[seg]
        elif isinstance(value, list) and seg.isascii() and seg.isdigit() and int(seg) < len(value):
            path.append(int(seg))
            value = value[int(seg)]
        else:
            break
    return tuple(path) if path else None


def _missing_at(
    value: Any, segments: list[str], prefix: tuple[str | int, ...] = ()
) -> tuple[str | int, ...] | None:
    """Where a path stops existing: for a ``*`` path, inside the first element that lacks
    the rest (so "some container has no memory limit" points at that container)."""
    from warden.paths import STAR

    if not segments:
        return None  # the path exists here
    seg, rest = segments[0], segments[1:]
    if seg == STAR:
        items: list[tuple[str | int, Any]] = []
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        for k, v in items:
            found = _missing_at(v, rest, (*prefix, k))
            if found is not None:
                return found
        return None
    if isinstance(value, dict) and seg in value:
        return _missing_at(value[seg], rest, (*prefix, seg))
    if isinstance(value, list) and seg.isascii() and seg.isdigit() and int(seg) < len(value):
        return _missing_at(value[int(seg)], rest, (*prefix, int(seg)))
    return prefix if prefix else None


# --------------------------------------------------------------------------- output


def summary(report: Report) -> str:
    docs = len([r for r in report.results if r.error is None])
    parts = [
        f"{report.count('deny')} denied",
        f"{report.count('ask')} asked",
        f"{report.warning_count} warning(s)",
        f"{report.count('error')} unparseable",
    ]
    mode = " (observe mode: not enforced)" if report.mode != "enforce" else ""
    return f"checked {docs} document(s) in {report.files} file(s): " + ", ".join(parts) + mode


def format_text(report: Report) -> str:
    lines = []
    for r in report.results:
        if r.error is not None:
            lines.append(f"{r.error.location()}: ERROR cannot parse: {r.error.message}")
            continue
        for f in r.findings:
            lines.append(
                f"{r.path}:{f.line}:{f.column}: {f.effect.upper()} {f.policy}: {f.message}"
            )
    lines.append(summary(report))
    return "\n".join(lines)


def to_json(report: Report, *, fail_on_warn: bool = False) -> dict[str, Any]:
    results = []
    for r in report.results:
        item: dict[str, Any] = {
            "path": r.path,
            "format": r.format,
            "document": r.index,
            "line": r.line,
            "status": r.status,
        }
        if r.error is not None:
            item["error"] = {
                "message": r.error.message,
                "line": r.error.line,
                "column": r.error.column,
            }
        else:
            item["decision"] = r.decision.to_dict() if r.decision is not None else None
            item["findings"] = [
                {
                    "policy": f.policy,
                    "effect": f.effect,
                    "level": f.level,
                    "message": f.message,
                    "line": f.line,
                    "column": f.column,
                    "rule_source": f.source,
                }
                for f in r.findings
            ]
        results.append(item)
    return {
        "summary": {
            "files": report.files,
            "documents": len([r for r in report.results if r.error is None]),
            "denied": report.count("deny"),
            "asked": report.count("ask"),
            "allowed": report.count("allow"),
            "warnings": report.warning_count,
            "errors": report.count("error"),
            "mode": report.mode,
            "exit_code": report.exit_code(fail_on_warn=fail_on_warn),
        },
        "plan": {"hash": report.plan_hash},
        "results": results,
    }


def to_junit(report: Report) -> str:
    """JUnit XML: a ``testsuite`` per data file, a ``testcase`` per document; ``failure``
    for deny/ask, ``error`` for a file that cannot be parsed; warnings in ``system-out``."""
    import xml.etree.ElementTree as ET

    suites: dict[str, list[Checked]] = {}
    for r in report.results:
        suites.setdefault(r.path, []).append(r)
    total_fail = sum(1 for r in report.results if r.status in ("deny", "ask"))
    root = ET.Element(
        "testsuites",
        name="warden check",
        tests=str(len(report.results)),
        failures=str(total_fail),
        errors=str(report.count("error")),
        time="0",
    )
    for path, items in suites.items():
        fails = sum(1 for r in items if r.status in ("deny", "ask"))
        errors = sum(1 for r in items if r.status == "error")
        suite = ET.SubElement(
            root,
            "testsuite",
            name=path,
            tests=str(len(items)),
            failures=str(fails),
            errors=str(errors),
            skipped="0",
            time="0",
        )
        for r in items:
            tc = ET.SubElement(
                suite,
                "testcase",
                name=r.name,
                classname=path,
                file=path,
                line=str(r.line),
                time="0",
            )
            if r.error is not None:
                err = ET.SubElement(tc, "error", message=r.error.message, type="ParseError")
                err.text = f"{r.error.location()}: {r.error.message}"
                continue
            hard = [f for f in r.findings if f.effect in ("deny", "ask")]
            if hard:
                fail = ET.SubElement(tc, "failure", message=hard[0].message, type=r.status)
                fail.text = "\n".join(
                    f"{path}:{f.line}:{f.column}: {f.effect} {f.policy}: {f.message}" for f in hard
                )
            if r.warnings:
                out = ET.SubElement(tc, "system-out")
                out.text = "\n".join(
                    f"{path}:{f.line}:{f.column}: warn {f.policy}: {f.message}" for f in r.warnings
                )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _uri(path: str) -> str:
    from urllib.parse import quote

    if path.startswith("/"):
        return "file://" + quote(path)
    return quote(path)


def _rule_descriptor(spec: dict[str, Any]) -> dict[str, Any]:
    from warden import paths as paths_mod

    message = "".join(
        p if isinstance(p, str) else "{" + paths_mod.join_path(p) + "}"
        for p in spec.get("message", [])
    )
    description = spec.get("description") or message or f"{spec['effect']} by {spec['name']}"
    short = description.strip().split("\n")[0]
    if len(short) > 200:
        short = short[:197] + "..."
    return {
        "id": spec["name"],
        "name": spec["name"],
        "shortDescription": {"text": short},
        "fullDescription": {"text": description.strip()},
        "help": {
            "text": f"{description.strip()}\nMessage: {message}\n"
            f"Defined at {spec.get('source', '?')}."
        },
        "defaultConfiguration": {"level": LEVELS.get(spec["effect"], "warning")},
        "properties": {
            "effect": spec["effect"],
            "source": spec.get("source", ""),
            "tags": ["warden", spec["effect"]],
        },
    }


def to_sarif(report: Report) -> dict[str, Any]:
    """SARIF 2.1.0: one run, ``ruleId`` = policy name, rules with descriptions."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for spec in report.rules:
        if spec["name"] not in index:
            index[spec["name"]] = len(rules)
            rules.append(_rule_descriptor(spec))
    results: list[dict[str, Any]] = []

    def location(path: str, line: int, col: int) -> dict[str, Any]:
        return {
            "physicalLocation": {
                "artifactLocation": {
                    "uri": _uri(path),
                    **({} if path.startswith("/") else {"uriBaseId": "%SRCROOT%"}),
                },
                "region": {"startLine": max(1, line), "startColumn": max(1, col)},
            }
        }

    for r in report.results:
        if r.error is not None:
            if PARSE_ERROR_ID not in index:
                index[PARSE_ERROR_ID] = len(rules)
                rules.append(
                    {
                        "id": PARSE_ERROR_ID,
                        "name": "parse-error",
                        "shortDescription": {"text": "The file could not be parsed."},
                        "fullDescription": {
                            "text": "warden check could not parse this data file "
                            "as YAML, JSON or TOML."
                        },
                        "defaultConfiguration": {"level": "error"},
                    }
                )
            results.append(
                {
                    "ruleId": PARSE_ERROR_ID,
                    "ruleIndex": index[PARSE_ERROR_ID],
                    "level": "error",
                    "message": {"text": f"cannot parse: {r.error.message}"},
                    "locations": [location(r.path, r.error.line or 1, r.error.column or 1)],
                }
            )
            continue
        for f in r.findings:
            if f.policy not in index:
                index[f.policy] = len(rules)
                rules.append(
                    _rule_descriptor(
                        {
                            "name": f.policy,
                            "effect": f.effect,
                            "message": [f.message],
                            "source": f.source,
                        }
                    )
                )
            results.append(
                {
                    "ruleId": f.policy,
                    "ruleIndex": index[f.policy],
                    "level": f.level,
                    "message": {"text": f.message},
                    "locations": [location(r.path, f.line, f.column)],
                    "partialFingerprints": {
                        "wardenFinding/v1": _fingerprint(r.path, r.index, f.policy, f.message)
                    },
                    "properties": {"effect": f.effect, "document": r.index},
                }
            )
    cwd = Path.cwd().as_posix().rstrip("/") + "/"
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "warden",
                        "semanticVersion": __version__,
                        "version": __version__,
                        "informationUri": INFO_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": "file://" + _quote_dir(cwd)}},
                "invocations": [{"executionSuccessful": True}],
                "columnKind": "unicodeCodePoints",
                "results": results,
                "properties": {"planHash": report.plan_hash, "mode": report.mode},
            }
        ],
    }


def _quote_dir(path: str) -> str:
    from urllib.parse import quote

    return quote(path)


def _fingerprint(path: str, index: int, policy: str, message: str) -> str:
    import hashlib

    return hashlib.sha256(f"{path}\0{index}\0{policy}\0{message}".encode()).hexdigest()[:32]


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(report: Report) -> str:
    """GitHub Actions workflow commands: ``::error`` for deny and parse errors,
    ``::warning`` for ask and warn; then the summary as a plain line."""
    lines = []
    for r in report.results:
        if r.error is not None:
            lines.append(
                f"::error file={_gh_prop(r.path)},line={r.error.line or 1},"
                f"col={r.error.column or 1},title={_gh_prop('warden: cannot parse')}"
                f"::{_gh_data(r.error.message)}"
            )
            continue
        for f in r.findings:
            title = _gh_prop(f"warden {f.effect}: {f.policy}")
            lines.append(
                f"::{f.level} file={_gh_prop(r.path)},line={f.line},col={f.column},"
                f"title={title}::{_gh_data(f.message)}"
            )
    lines.append(summary(report))
    return "\n".join(lines)
