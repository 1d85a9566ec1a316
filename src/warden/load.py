"""Stage 1: find policy files and read YAML (1.2 scalars) with source positions.

PyYAML's C parser composes the node graph (keeps line/column marks, 5-10x faster than the
pure-Python loaders); this module turns nodes into plain data itself so that it can
resolve scalars by the YAML 1.2 core schema (only ``true``/``false`` are booleans, ``on``
and ``yes`` stay strings), refuse duplicate keys, bound alias expansion and nesting depth,
and record where every value came from.

PyYAML is imported lazily: the hook hot path (discovery + cached plan) never pays for it.
"""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

from warden._record import dataclass, field
from warden.errors import InputError, PolicyError, Problem, UsageError, no_such_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

Pos = tuple[int, int]
FieldPath = tuple[str | int, ...]

MAX_DEPTH = 256
MAX_NODES = 2_000_000
MAX_ALIAS_EXPANSION = 100_000
MAX_FILE_BYTES = 16 * 1024 * 1024  # policy, test, data and params files (as inputs: §8)


class FileTooLarge(Exception):
    """A file longer than ``MAX_FILE_BYTES`` (reading stopped one byte past the limit)."""


def read_limited(path: str | os.PathLike[str] | BinaryIO, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a file (a path, or an open binary stream such as stdin), reading at most
    ``limit + 1`` of them: an endless file (``/dev/zero``, a FIFO fed by ``yes``) is refused
    instead of filling the memory."""
    if isinstance(path, (str, os.PathLike)):
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    else:
        data = path.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"larger than {limit // (1024 * 1024)} MiB")
    return data


# Patterns as strings: compiled (and cached by re) on first use, not at import.
_INT = r"[-+]?[0-9]+\Z"
_OCT = r"0o[0-7]+\Z"
_HEX = r"0x[0-9a-fA-F]+\Z"
_FLOAT = r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z"
_INF = r"[-+]?\.(inf|Inf|INF)\Z"
_NAN = r"\.(nan|NaN|NAN)\Z"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})

TEST_SUFFIX = ".warden-test.yaml"
TEST_SUFFIXES = (TEST_SUFFIX, ".warden-test.yml")  # test files, never policies


def is_test_file(name: str) -> bool:
    return name.endswith(TEST_SUFFIXES)


def test_files_under(root: Path) -> list[Path]:
    """Every ``*.warden-test.yaml`` / ``*.warden-test.yml`` below ``root``, sorted."""
    return sorted(p for p in root.rglob("*.warden-test.y*ml") if is_test_file(p.name))


PLAIN = "tag:warden,2024:plain"


@dataclass
class Document:
    """One YAML document: its data and the source position of every value and key."""

    file: str
    data: Any
    positions: dict[FieldPath, Pos] = field(default_factory=dict)
    key_positions: dict[FieldPath, Pos] = field(default_factory=dict)
    line: int = 1

    def pos(self, path: FieldPath, *, key: bool = False) -> Pos:
        """Best position for ``path``: the exact node, else its nearest ancestor."""
        table = self.key_positions if key else self.positions
        p = tuple(path)
        while True:
            if p in table:
                return table[p]
            if p in self.positions:
                return self.positions[p]
            if not p:
                return (self.line, 1)
            p = p[:-1]

    def where(self, path: FieldPath, *, key: bool = False) -> str:
        line, col = self.pos(path, key=key)
        return f"{self.file}:{line}:{col}"


@dataclass(frozen=True)
class Source:
    """A policy file to load: where it is and which scope it belongs to."""

    path: str
    scope: str  # "project" | "user"
    display: str


# --------------------------------------------------------------------------- YAML


def _loader_class() -> Any:
    import yaml

    base = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader

    class Loader(base):  # type: ignore[misc,valid-type]
        # No implicit resolution: every untagged plain scalar comes back tagged PLAIN and
        # _scalar() applies the YAML 1.2 core schema itself; an explicit ``!!str`` stays a
        # string.
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode and implicit and implicit[0]:
                return PLAIN
            return super().resolve(kind, value, implicit)

    Loader.yaml_implicit_resolvers = {}
    return Loader


_LOADER: Any = None


def _loader() -> Any:
    global _LOADER
    if _LOADER is None:
        _LOADER = _loader_class()
    return _LOADER


def _scalar(node: Any) -> Any:
    value: str = node.value
    tag: str = node.tag
    if tag == PLAIN:
        return _core_scalar(value, "")
    if tag.startswith("tag:yaml.org,2002:") and tag.endswith((":int", ":float", ":bool", ":null")):
        return _core_scalar(value, tag)
    return value


def _core_scalar(value: str, tag: str) -> Any:
    if value in _NULLS and not tag.endswith((":int", ":float", ":bool")):
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if re.match(_INT, value):
        return int(value)
    if re.match(_OCT, value):
        return int(value[2:], 8)
    if re.match(_HEX, value):
        return int(value[2:], 16)
    if re.match(_FLOAT, value):
        return float(value)
    if re.match(_INF, value):
        return float("-inf") if value.startswith("-") else float("inf")
    if re.match(_NAN, value):
        return float("nan")
    return value


def _mark(node: Any) -> Pos:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed node graph into plain data, iteratively, with limits."""

    def __init__(self, file: str, *, string_keys: bool) -> None:
        self.file = file
        self.string_keys = string_keys
        self.positions: dict[FieldPath, Pos] = {}
        self.key_positions: dict[FieldPath, Pos] = {}
        self.budget = MAX_NODES

    def fail(self, node: Any, message: str) -> PolicyError:
        line, col = _mark(node)
        return PolicyError(Problem(message, self.file, line, col))

    def build(self, root: Any) -> Any:
        import yaml

        result: list[Any] = [None]
        # work items: (node, path, container, slot)
        stack: list[tuple[Any, FieldPath, Any, Any]] = [(root, (), result, 0)]
        while stack:
            node, path, container, slot = stack.pop()
            self.budget -= 1
            if self.budget < 0:
                raise self.fail(node, "document too large (alias expansion or size limit)")
            if len(path) > MAX_DEPTH:
                raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels")
            self.positions[path] = _mark(node)
            if isinstance(node, yaml.ScalarNode):
                container[slot] = self._value(node)
            elif isinstance(node, yaml.SequenceNode):
                items: list[Any] = [None] * len(node.value)
                container[slot] = items
                for i in range(len(node.value) - 1, -1, -1):
                    stack.append((node.value[i], (*path, i), items, i))
            else:
                mapping: dict[Any, Any] = {}
                container[slot] = mapping
                pending = []
                for key_node, value_node in node.value:
                    key = self._key(key_node)
                    if key in mapping:
                        first = self.key_positions.get((*path, key))
                        at = f" (first at line {first[0]})" if first else ""
                        raise self.fail(key_node, f"duplicate key {key!r}{at}")
                    mapping[key] = None
                    self.key_positions[(*path, key)] = _mark(key_node)
                    pending.append((value_node, (*path, key), mapping, key))
                stack.extend(reversed(pending))
        return result[0]

    def _value(self, node: Any) -> Any:
        try:
            return _scalar(node)
        except ValueError:  # an integer beyond Python's digit limit
            raise self.fail(node, f"number too large ({len(node.value):,} characters)") from None

    def _key(self, node: Any) -> Any:
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, "mapping keys must be plain strings, not collections")
        key = self._value(node)
        if isinstance(key, str):
            return key
        if self.string_keys:
            raise self.fail(node, f"mapping key {node.value!r} must be a string")
        if key is None:
            return "null"
        if isinstance(key, bool):
            return "true" if key else "false"
        return str(node.value)


def _check_aliases(root: Any, file: str) -> None:
    """Refuse alias bombs and recursive aliases before expanding anything.

    Aliases share node objects, so the expanded size of every node is computed once per
    distinct node (linear in the text, however many aliases): a "billion laughs" document
    is refused in milliseconds instead of being expanded until a budget runs out. A scalar
    weighs one value per started 100 characters, so a long string aliased many times
    counts like the text it expands to.
    """
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()
    distinct = 0
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if isinstance(node, yaml.ScalarNode):
            if key not in sizes:
                sizes[key] = 1 + len(node.value) // 100
                distinct += sizes[key]
            continue
        if isinstance(node, yaml.MappingNode):
            children = [c for pair in node.value for c in pair]
        else:
            children = list(node.value)
        if done:
            active.discard(key)
            size = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = size
            distinct += 1
            if size > MAX_NODES or (size > MAX_ALIAS_EXPANSION and size > 10 * distinct):
                line, col = _mark(node)
                raise PolicyError(
                    Problem(
                        "document too large: aliases expand to more than "
                        f"{min(size, MAX_NODES):,} values (alias bomb?)",
                        file,
                        line,
                        col,
                    )
                )
            continue
        if key in sizes:
            continue
        if key in active:
            line, col = _mark(node)
            raise PolicyError(Problem("recursive alias: a node contains itself", file, line, col))
        active.add(key)
        stack.append((node, True))
        for c in children:
            if id(c) in active and not isinstance(c, yaml.ScalarNode):
                line, col = _mark(c)
                raise PolicyError(
                    Problem("recursive alias: a node contains itself", file, line, col)
                )
            if id(c) not in sizes:
                stack.append((c, False))


def _yaml_error(file: str, exc: Exception, text: str = "") -> PolicyError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        problem = "tab character: YAML indents with spaces, never tabs"
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    if mark is None:
        return PolicyError(Problem(message, file))
    return PolicyError(Problem(message, file, mark.line + 1, mark.column + 1))


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n", line + 1)
    if line >= len(lines) or column >= len(lines[line]):
        return ""
    return lines[line][column]


def parse_yaml(
    text: str | bytes, file: str, *, string_keys: bool = True, multi: bool = False
) -> list[Document]:
    """Parse YAML text into documents with positions. Raises PolicyError with file:line:col."""
    import yaml

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PolicyError(Problem(f"not valid UTF-8 (byte {exc.start})", file)) from None
    if "\x00" in text:
        raise PolicyError(Problem("contains a NUL byte", file))
    docs: list[Document] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_loader()))
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc, text) from None
    except RecursionError:
        raise PolicyError(Problem(f"nesting deeper than {MAX_DEPTH} levels", file)) from None
    if not multi and len(nodes) > 1:
        line, col = _mark(nodes[1])
        raise PolicyError(Problem("expected one YAML document, found several", file, line, col))
    for node in nodes:
        if node is None:
            continue
        _check_aliases(node, file)
        builder = _Builder(file, string_keys=string_keys)
        data = builder.build(node)
        docs.append(Document(file, data, builder.positions, builder.key_positions, _mark(node)[0]))
    return docs


def load_document(path: str | os.PathLike[str], display: str | None = None) -> Document:
    """Load one policy (or test) file: exactly one YAML document that is a mapping."""
    name = display or str(path)
    try:
        raw = read_limited(path)
    except OSError as exc:
        raise PolicyError(Problem(f"cannot read: {exc.strerror}", name)) from None
    except FileTooLarge as exc:
        raise PolicyError(Problem(str(exc), name)) from None
    docs = parse_yaml(raw, name)
    if not docs:
        raise PolicyError(Problem("empty file: expected a mapping with 'version: 1'", name, 1, 1))
    doc = docs[0]
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else "a scalar"
        raise PolicyError(Problem(f"expected a mapping at the top, found {kind}", name, 1, 1))
    return doc


def load_data_file(path: str, fmt: str, display: str | None = None) -> list[Document]:
    """Load a data file for ``warden check``: YAML (multi-document), JSON or TOML."""
    name = display or path
    try:
        raw = read_limited(path)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None
    except FileTooLarge as exc:
        raise InputError(f"{name}: {exc}") from None
    if fmt == "yaml":
        return parse_yaml(raw, name, string_keys=False, multi=True)
    if fmt == "json":
        return [_json_document(raw, name)]
    if fmt == "toml":
        return [_toml_document(raw, name)]
    raise UsageError(f"{name}: unknown format {fmt!r}")


def _json_document(raw: bytes, name: str) -> Document:
    # Strict JSON first (a trailing comma or a comment is not JSON, even though YAML flow
    # syntax would take it); then the YAML path for source positions (JSON is YAML 1.2),
    # which also refuses duplicate keys. Documents libyaml rejects or reads differently
    # (very long keys, unusual escapes) keep the json data without positions.
    import json

    try:
        text = raw.decode("utf-8-sig")
        data = json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise PolicyError(Problem(f"not valid UTF-8 (byte {exc.start})", name)) from None
    except json.JSONDecodeError as exc:
        raise PolicyError(
            Problem(f"invalid JSON: {exc.msg}", name, exc.lineno, exc.colno)
        ) from None
    except (ValueError, RecursionError) as exc:
        raise PolicyError(Problem(f"invalid JSON: {exc}", name)) from None
    try:
        docs = parse_yaml(text, name, string_keys=False)
    except PolicyError as exc:
        if any("duplicate key" in p.message for p in exc.problems):
            raise
        docs = []
    if docs and docs[0].data == data:
        return docs[0]
    return Document(name, data)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _toml_document(raw: bytes, name: str) -> Document:
    import tomllib

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        message = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if m:
            return _raise_toml(name, message, int(m.group(1)), int(m.group(2)))
        raise PolicyError(Problem(f"invalid TOML: {message}", name)) from None
    doc = Document(name, _jsonable(data))
    _toml_positions(raw.decode("utf-8", "replace"), doc)
    return doc


def _raise_toml(name: str, message: str, line: int, col: int) -> Document:
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    raise PolicyError(Problem(f"invalid TOML: {message}", name, line, col))


def _toml_positions(text: str, doc: Document) -> None:
    """Approximate key positions for TOML: ``[table]`` headers and ``key =`` lines."""
    table: FieldPath = ()
    header = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    keyline = re.compile(r"(\s*)([A-Za-z0-9_.\"'-]+)\s*=")
    for lineno, line in enumerate(text.splitlines(), 1):
        m = header.match(line)
        if m:
            table = tuple(p.strip().strip("\"'") for p in m.group(1).split("."))
            doc.positions.setdefault(table, (lineno, 1))
            continue
        m = keyline.match(line)
        if m:
            path = table + tuple(p.strip().strip("\"'") for p in m.group(2).split("."))
            doc.positions.setdefault(path, (lineno, len(m.group(1)) + 1))
            doc.key_positions.setdefault(path, (lineno, len(m.group(1)) + 1))


def _jsonable(value: Any) -> Any:
    """TOML dates and times become ISO strings so every input is plain JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# ---------------------------------------------------------------------- discovery


def find_project_root(
    start: str | os.PathLike[str], deps: list[tuple[str, str]] | None = None
) -> Path | None:
    """Nearest ancestor of ``start`` holding ``warden.yaml`` or a ``.warden/`` directory.

    ``deps`` collects what was looked at, for the plan index (plan.py): ("stat", file),
    ("list", directory: its policy file names) and ("yaml", directory: the same, a
    directory without any counting as absent)."""
    here = Path(start).resolve()
    for d in (here, *here.parents):
        if deps is not None:
            deps += [("stat", str(d / "warden.yaml")), ("yaml", str(d / ".warden"))]
        if (d / "warden.yaml").is_file() or _policy_files_in(d / ".warden"):
            return d
    return None


def _policy_files_in(d: Path) -> list[Path]:
    try:
        entries = sorted(d.iterdir())
    except OSError:
        return []
    return [
        p
        for p in entries
        if p.suffix in (".yaml", ".yml") and not is_test_file(p.name) and p.is_file()
    ]


def project_files(root: Path) -> list[Path]:
    files = [root / "warden.yaml"] if (root / "warden.yaml").is_file() else []
    return files + _policy_files_in(root / ".warden")


def user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "warden"


def _display(p: Path, cwd: Path) -> str:
    try:
        return str(p.relative_to(cwd))
    except ValueError:
        return str(p)


def expand_policy_path(path: str, deps: list[tuple[str, str]] | None = None) -> list[Path]:
    """A ``--policy`` argument: a file, or a directory (its project files if it has any,
    else every ``*.yaml``/``*.yml`` in it, test files excluded)."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        if deps is not None:
            deps += [("stat", str(p / "warden.yaml")), ("yaml", str(p / ".warden"))]
            deps.append(("list", str(p)))
        return project_files(p) or _policy_files_in(p)
    raise no_such_path(path, "--policy ")


def discover(
    policies: list[str] | None = None,
    *,
    cwd: str | None = None,
    user: bool = True,
    start: str | None = None,
    deps: list[tuple[str, str]] | None = None,
) -> tuple[list[Source], Path]:
    """Policy files in evaluation order (DESIGN §2) and the project root.

    ``policies``: explicit ``--policy`` paths (replace the project's files); ``user``:
    include ``$XDG_CONFIG_HOME/warden/*.yaml``; ``start``: where to look for the project
    (default ``cwd``; hooks pass ``$CLAUDE_PROJECT_DIR``); ``deps``: collects what
    discovery looked at (see ``find_project_root``).
    """
    here = Path(cwd or os.getcwd())
    root = find_project_root(start or here, deps)
    # Paths are shown relative to the project root (else the cwd), so the plan and its
    # hash do not depend on which subdirectory warden runs from.
    base = (root or here).resolve()
    sources: list[Source] = []
    seen: set[Path] = set()

    def add(p: Path, scope: str) -> None:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            sources.append(Source(str(p), scope, _display(rp, base)))

    if policies:
        for arg in policies:
            for p in expand_policy_path(arg, deps):
                add(p, "project")
    elif root is not None:
        for p in project_files(root):
            add(p, "project")
    if user:
        if deps is not None:
            deps.append(("yaml", str(user_config_dir())))
        for p in _policy_files_in(user_config_dir()):
            add(p, "user")
    return sources, (root or Path(start or here).resolve())


def iter_files(paths: list[str], suffixes: tuple[str, ...]) -> Iterator[Path]:
    """Files named directly, and files under directories (recursively) with a suffix."""
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            for sub in sorted(p.rglob("*")):
                if sub.is_file() and sub.name.endswith(suffixes) and ".git" not in sub.parts:
                    yield sub
        elif p.is_file():
            yield p
        else:
            raise no_such_path(arg)


# ------------------------------------------------------------- warden.load(...)


class _CallableModule(types.ModuleType):
    """``warden.load`` is both this module and the public ``warden.load()`` of DESIGN §9.

    Importing the submodule ``warden.load`` binds it as the package attribute ``load``,
    which would shadow the function; making the module callable keeps ``warden.load(...)``
    working however the package was imported.
    """

    def __call__(self, path: str | os.PathLike[str] | None = None, **kw: Any) -> Any:
        from warden.engine import load as load_engine

        return load_engine(path, **kw)


sys.modules[__name__].__class__ = _CallableModule
