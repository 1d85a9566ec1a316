"""``warden fmt``: canonical key order and indentation that keep comments.

Three passes, all comment-safe:

1. **Key order**, done on the text: for every mapping whose keys are out of the canonical
   order below, its entries are moved as whole blocks of lines. The comment and blank lines
   just above a key travel with that key; comments after a mapping's last entry stay where
   they are. Single-line flow mappings (``{kind: approval, approvals: 1}``) are reordered
   in place. Unknown keys keep their relative order, after the known ones.
2. **Layout**, by a ruamel.yaml round trip: 2-space indentation with sequences indented
   under their key (``mapping=2, sequence=4, offset=2``); comments, the modeline, blank
   lines, quoting, flow style and block scalars are kept; long lines are never folded;
   a one-entry mapping inside a flow sequence keeps (or gets) its braces: ``[{a: 1}]``;
   null is spelt ``null`` (``~`` and an empty value become ``null``).
3. **Comment indentation**: a full-line comment is indented like the line of YAML that
   follows it (text inside block scalars is content and never touched).

Canonical orders (also the order of the keys in schema/warden.schema.json):

- file: ``version, settings, policies, actions, gates``
- settings: ``mode, default, combine, on_error, state, redact, state_retention``
- rule: ``name, description, event, tool, when, effect, message, then``
- ``then`` item: ``run, timeout, background, record``; ``record``: ``key, value``
- condition: ``all, any, not, field`` + operator + ``ignore_case``, ``file, env, time,
  state, command``; ``state``: ``event, tool, where, within, since, count``
- action: ``description, risk, params, gates, idempotency_key, on_failure, allowed_roots,
  steps``
- step (in execution order): ``name, description, precondition, run, write_file,
  delete_file, mkdir, dry_run, verify, rollback, timeout, env, cwd``
- gate: ``kind, description, when``, then the kind's own keys (``approvals, approvers,
  key, max, per, max_age, window, days, after, before, tz, run, timeout, exit_code``)
- test file: ``version, policies, tests``; test: ``name, description, now, env, input,
  state, expect``; prior event: ``ago, input``; expect: ``decision, matched, feedback,
  exit_code``

Safety net: the formatted text is parsed again and must give exactly the same data as the
original (as warden reads it, YAML 1.2); otherwise the file is reported and left alone.

ruamel.yaml is imported here only, and lazily: nothing else in warden pays for it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.compile import FIELD_OPS
from warden.errors import PolicyError, Problem

TOP = ("version", "settings", "policies", "actions", "gates")
TEST_TOP = ("version", "policies", "tests")
SETTINGS = ("mode", "default", "combine", "on_error", "state", "redact", "state_retention")
RULE = ("name", "description", "event", "tool", "when", "effect", "message", "then")
SIDE_EFFECT = ("run", "timeout", "background", "record")
RECORD = ("key", "value")
CONDITION = (
    "all",
    "any",
    "not",
    "field",
    *FIELD_OPS,
    "ignore_case",
    "file",
    "env",
    "time",
    "state",
    "command",
)
FILE_CONDITION = ("path", "exists", "modified_within", "larger_than")
ENV_CONDITION = ("name", "equals", "matches", "exists")
TIME_CONDITION = ("days", "after", "before", "tz")
STATE_CONDITION = ("event", "tool", "where", "within", "since", "count")
COMMAND_CONDITION = ("run", "exit_code", "timeout")
ACTION = (
    "description",
    "risk",
    "params",
    "gates",
    "idempotency_key",
    "on_failure",
    "allowed_roots",
    "steps",
)
STEP = (
    "name",
    "description",
    "precondition",
    "run",
    "write_file",
    "delete_file",
    "mkdir",
    "dry_run",
    "verify",
    "rollback",
    "timeout",
    "env",
    "cwd",
)
WRITE_FILE = ("path", "content", "mode")
GATE = (
    "kind",
    "description",
    "when",
    "approvals",
    "approvers",
    "key",
    "max",
    "per",
    "max_age",
    "window",
    "days",
    "after",
    "before",
    "tz",
    "run",
    "timeout",
    "exit_code",
)
TEST_CASE = ("name", "description", "now", "env", "input", "state", "expect")
PRIOR = ("ago", "input")
EXPECT = ("decision", "matched", "feedback", "exit_code")

MAX_PASSES = 10_000


@dataclass
class Result:
    """The outcome of formatting one file."""

    path: str
    original: str
    formatted: str
    problem: Problem | None = None

    @property
    def changed(self) -> bool:
        return self.problem is None and self.formatted != self.original


# ----------------------------------------------------------------- pass 1: key order


@dataclass
class _Edit:
    first: int  # first line replaced (0-based)
    last: int  # last line replaced (inclusive)
    lines: list[str]


def _compose(text: str) -> Any:
    import yaml

    loader = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
    return yaml.compose(text, Loader=loader)


def _kind(node: Any) -> str:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "map"
    if isinstance(node, yaml.SequenceNode):
        return "seq"
    return "scalar"


def _items(node: Any) -> list[tuple[str, Any]]:
    return [(k.value if _kind(k) == "scalar" else "", v) for k, v in node.value]


def _targets(root: Any) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """Every mapping of a policy or test file that has a canonical order, with it."""
    if _kind(root) != "map":
        return
    top = dict(_items(root))
    if "tests" in top:  # a test file (policy files have no `tests`)
        yield root, TEST_TOP
        yield from _test_targets(top)
        return
    yield root, TOP
    if _kind(top.get("settings")) == "map":
        yield top["settings"], SETTINGS
    for rule in _seq(top.get("policies")):
        if _kind(rule) == "map":
            yield rule, RULE
            r = dict(_items(rule))
            yield from _condition_targets(r.get("when"))
            for item in _seq(r.get("then")):
                if _kind(item) == "map":
                    yield item, SIDE_EFFECT
                    rec = dict(_items(item)).get("record")
                    if _kind(rec) == "map":
                        yield rec, RECORD
    for action in _map_values(top.get("actions")):
        yield action, ACTION
        for step in _seq(dict(_items(action)).get("steps")):
            if _kind(step) == "map":
                yield step, STEP
                wf = dict(_items(step)).get("write_file")
                if _kind(wf) == "map":
                    yield wf, WRITE_FILE
    for gate in _map_values(top.get("gates")):
        yield gate, GATE
        yield from _condition_targets(dict(_items(gate)).get("when"))


def _test_targets(top: dict[str, Any]) -> Iterator[tuple[Any, tuple[str, ...]]]:
    for case in _seq(top.get("tests")):
        if _kind(case) != "map":
            continue
        yield case, TEST_CASE
        c = dict(_items(case))
        for prior in _seq(c.get("state")):
            if _kind(prior) == "map":
                yield prior, PRIOR
        if _kind(c.get("expect")) == "map":
            yield c["expect"], EXPECT


def _condition_targets(node: Any) -> Iterator[tuple[Any, tuple[str, ...]]]:
    if _kind(node) != "map":
        return
    yield node, CONDITION
    c = dict(_items(node))
    for key in ("all", "any"):
        for child in _seq(c.get(key)):
            yield from _condition_targets(child)
    yield from _condition_targets(c.get("not"))
    sub = {
        "file": FILE_CONDITION,
        "env": ENV_CONDITION,
        "time": TIME_CONDITION,
        "command": COMMAND_CONDITION,
        "state": STATE_CONDITION,
    }
    for key, order in sub.items():
        if _kind(c.get(key)) == "map":
            yield c[key], order
    state = c.get("state")
    if _kind(state) == "map":
        s = dict(_items(state))
        yield from _condition_targets(s.get("where"))
        yield from _condition_targets(s.get("since"))


def _seq(node: Any) -> list[Any]:
    return list(node.value) if node is not None and _kind(node) == "seq" else []


def _map_values(node: Any) -> list[Any]:
    if node is None or _kind(node) != "map":
        return []
    return [v for _, v in _items(node) if _kind(v) == "map"]


def _new_order(keys: list[str], order: tuple[str, ...]) -> list[int]:
    rank = {k: i for i, k in enumerate(order)}
    return sorted(range(len(keys)), key=lambda i: (rank.get(keys[i], len(order)), i))


def _last_line(lines: list[str], node: Any, floor: int) -> int:
    """The last line (0-based) holding a piece of ``node``'s own text."""
    while _kind(node) in ("map", "seq") and not node.flow_style and node.value:
        node = node.value[-1][1] if _kind(node) == "map" else node.value[-1]
    end = node.end_mark
    line: int = end.line
    if end.column == 0 and line > node.start_mark.line:
        line -= 1
    start = node.start_mark
    if _kind(node) == "scalar" and node.style in ("|", ">"):
        header = lines[start.line][start.column :].split("#")[0]
        if "+" not in header:  # blank lines after a clipped/stripped block are not its own
            while line > start.line and not lines[min(line, len(lines) - 1)].strip():
                line -= 1
    return max(line, floor)  # an alias points at its anchor, which is further up


def _is_code(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#")


def _block_edit(lines: list[str], node: Any, order: tuple[str, ...]) -> _Edit | None:
    entries = _items(node)
    keys = [k for k, _ in entries]
    new = _new_order(keys, order)
    if new == list(range(len(keys))):
        return None
    key_nodes = [k for k, _ in node.value]
    key_lines = [k.start_mark.line for k in key_nodes]
    col = key_nodes[0].start_mark.column
    if any(k.start_mark.column != col for k in key_nodes):
        return None
    ends = [_last_line(lines, v, key_lines[i]) for i, (_, v) in enumerate(entries)]
    for i in range(1, len(entries)):
        if key_lines[i] <= ends[i - 1]:
            return None  # two entries share a line: leave it alone
    starts = [key_lines[0]] + [ends[i - 1] + 1 for i in range(1, len(entries))]
    segs = [list(lines[starts[i] : ends[i] + 1]) for i in range(len(entries))]
    first = lines[key_lines[0]]
    prefix = first[:col]
    if prefix.strip():  # "- key: ..." (a mapping inside a sequence item)
        segs[0][0] = " " * col + first[col:]
    out_segs = [segs[i] for i in new]
    if prefix.strip():
        head = out_segs[0]
        j = key_lines[new[0]] - starts[new[0]]
        head[j] = prefix + head[j][col:]
    out = [line for seg in out_segs for line in seg]
    return _Edit(starts[0], ends[-1], out)


def _flow_edit(lines: list[str], node: Any, order: tuple[str, ...]) -> _Edit | None:
    start, end = node.start_mark, node.end_mark
    if start.line != end.line or not node.value:
        return None
    keys = [k for k, _ in _items(node)]
    new = _new_order(keys, order)
    if new == list(range(len(keys))):
        return None
    line = lines[start.line]
    spans = [line[k.start_mark.column : v.end_mark.column] for k, v in node.value]
    if any(k.start_mark.line != start.line or v.end_mark.line != start.line for k, v in node.value):
        return None
    inner_start = node.value[0][0].start_mark.column
    inner_end = node.value[-1][1].end_mark.column
    text = ", ".join(spans[i] for i in new)
    return _Edit(start.line, start.line, [line[:inner_start] + text + line[inner_end:]])


def reorder(text: str) -> str:
    """Pass 1: the text with every known mapping's keys in canonical order."""
    for _ in range(MAX_PASSES):
        root = _compose(text)
        if root is None:
            return text
        lines = text.split("\n")
        edits: list[_Edit] = []
        for node, order in _targets(root):
            edit = (_flow_edit if node.flow_style else _block_edit)(lines, node, order)
            if edit is not None:
                edits.append(edit)
        if not edits:
            return text
        applied: list[_Edit] = []
        # Innermost first: an edit overlapping one already taken waits for the next pass.
        for e in sorted(edits, key=lambda e: (e.last - e.first, -e.first)):
            if all(e.last < a.first or e.first > a.last for a in applied):
                applied.append(e)
        for e in sorted(applied, key=lambda e: -e.first):
            lines[e.first : e.last + 1] = e.lines
        text = "\n".join(lines)
    return text


# -------------------------------------------------------------------- pass 2: layout


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    y.allow_duplicate_keys = False
    y.brace_single_entry_mapping_in_flow_sequence = True  # [{a: 1}], never [a: 1]
    # null is always written `null` (ruamel would write nothing in block context).
    y.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


_DOC_START = re.compile(r"^---(\s|$)")


def layout(text: str) -> str:
    """Pass 2: ruamel.yaml round trip (indentation; comments and quoting kept)."""
    lines = text.split("\n")
    # ruamel drops comments above an explicit "---"; keep that preamble verbatim.
    preamble: list[str] = []
    body = text
    for i, line in enumerate(lines):
        if _DOC_START.match(line):
            preamble = lines[:i]
            body = "\n".join(lines[i:])
            break
        if _is_code(line) and not line.startswith("%"):
            break
    y = _yaml()
    y.explicit_start = bool(preamble) or _DOC_START.match(body) is not None
    data = y.load(body)
    buf = io.StringIO()
    y.dump(data, buf)
    out = buf.getvalue()
    if preamble:
        out = "\n".join(preamble) + "\n" + out
    return out


# ------------------------------------------------------- pass 3: comment indentation


def indent_comments(text: str) -> str:
    """A full-line comment takes the indentation of the next line of YAML (so comments
    follow the re-indented keys they describe); lines inside block scalars are content,
    not comments, and are never touched."""
    lines = text.split("\n")
    content = _block_scalar_lines(text)
    nxt = ""
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        stripped = line.lstrip(" ")
        if i in content or not stripped:
            continue
        if stripped.startswith("#"):
            want = len(nxt) - len(nxt.lstrip(" ")) if nxt else 0
            lines[i] = " " * want + stripped
        else:
            nxt = line
    return "\n".join(lines)


def _block_scalar_lines(text: str) -> set[int]:
    """0-based numbers of the lines holding block scalar (``|``, ``>``) content."""
    import yaml

    out: set[int] = set()
    root = _compose(text)
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            out.update(range(node.start_mark.line + 1, node.end_mark.line + 1))
    return out


# ----------------------------------------------------------------------- one file


def format_text(text: str, name: str = "<text>") -> str:
    """The canonical form of one policy or test file. Raises PolicyError (with the
    position) for YAML it cannot read, or when formatting would change the data."""
    from warden.load import parse_yaml

    text = text.replace("\r\n", "\n")
    before = parse_yaml(text, name)
    if not before or not isinstance(before[0].data, dict):
        return text
    try:
        out = indent_comments(layout(reorder(text)))
    except PolicyError:
        raise
    except Exception as exc:  # ruamel's errors carry a mark like PyYAML's
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        raise PolicyError(Problem(f"cannot format: {problem}", name, line, col)) from None
    after = parse_yaml(out, name)
    if not after or not _same(before[0].data, after[0].data):
        raise PolicyError(
            Problem(
                "cannot format: the result would read differently; "
                "file left unchanged (please report this)",
                name,
                1,
                1,
            )
        )
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN
    return type(a) is type(b) and bool(a == b)


def display(path: Path) -> str:
    """Relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def format_file(path: Path, shown: str | None = None) -> Result:
    from warden.load import FileTooLarge, read_limited

    name = shown or display(path)
    try:
        raw = read_limited(path)
    except OSError as exc:
        return Result(name, "", "", Problem(f"cannot read: {exc.strerror}", name))
    except FileTooLarge as exc:
        return Result(name, "", "", Problem(str(exc), name))
    try:
        original = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Result(name, "", "", Problem(f"not valid UTF-8 (byte {exc.start})", name))
    try:
        formatted = format_text(original, name)
    except PolicyError as exc:
        return Result(name, original, original, exc.problems[0])
    return Result(name, original, formatted)


def diff(result: Result) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            result.original.splitlines(keepends=True),
            result.formatted.splitlines(keepends=True),
            fromfile=f"a/{result.path}",
            tofile=f"b/{result.path}",
        )
    )


# ----------------------------------------------------------------------- which files


def files_for(paths: list[str]) -> list[Path]:
    """The files ``warden fmt PATHS`` formats: files named directly; under a directory,
    every project policy file (``warden.yaml``, ``.warden/*.yaml``) and test file
    (``*.warden-test.yaml``), or its top-level ``*.yaml`` when it holds no project. With no
    PATHS: the current project's policy files and the test files below its root (``.git``
    and ``node_modules`` skipped)."""
    from warden.load import discover, is_test_file, project_files, test_files_under

    out: list[Path] = []
    if not paths:
        sources, root = discover(None, user=False)
        found = [Path(s.path) for s in sources]
        if found:
            found += [f for f in test_files_under(root) if not _skipped(f)]
        return _unique(found)
    for arg in paths:
        p = Path(arg)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            roots = sorted(
                {f.parent for f in p.rglob("warden.yaml")}
                | {f.parent.parent for f in p.rglob(".warden/*.yaml")}
            )
            policy = [f for r in roots for f in project_files(r)]
            if not policy:
                policy = sorted(f for f in p.glob("*.y*ml") if not is_test_file(f.name))
            tests = test_files_under(p)
            out.extend(f for f in [*policy, *tests] if not _skipped(f))
        else:
            from warden.errors import no_such_path

            raise no_such_path(arg)
    return _unique(out)


def _skipped(path: Path) -> bool:
    return bool({".git", "node_modules"} & set(path.parts))


def _unique(files: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    out = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


# ------------------------------------------------------------- pre-commit config edit


def add_precommit_repo(text: str, repo: dict[str, Any], hook_ids: list[str]) -> str | None:
    """``text`` (a .pre-commit-config.yaml) with ``repo`` appended to ``repos:``, comments
    kept; None when one of ``hook_ids`` is already configured."""
    y = _yaml()
    data = y.load(text) if text.strip() else None
    if data is None:
        from ruamel.yaml.comments import CommentedMap

        data = CommentedMap()
    if not isinstance(data, dict):
        raise PolicyError(Problem("expected a mapping at the top", ".pre-commit-config.yaml"))
    repos = data.get("repos")
    if repos is None:
        data["repos"] = repos = []
    for existing in repos or []:
        for hook in (existing or {}).get("hooks") or []:
            if isinstance(hook, dict) and hook.get("id") in hook_ids:
                return None
    repos.append(repo)
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()
