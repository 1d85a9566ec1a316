"""The pipeline end to end, and the in-process ``Engine`` of DESIGN §9.

``build_plan`` runs load -> validate -> compile (or reads the cache); ``Engine`` wraps a
plan's ``Runtime`` and turns results into ``Decision`` documents. The CLI and the Python API
both go through here, so they share one runtime.
"""

from __future__ import annotations

import os
import time
from time import monotonic, perf_counter_ns

from warden import __version__
from warden._record import dataclass, field
from warden.decision import Decision, new_decision
from warden.durations import now as clock
from warden.errors import InputError, PolicyError, Problem
from warden.runtime import Env, Outcome, Result, Runtime, message, new_env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path
    from typing import Any

    from warden.load import Source

MAX_INPUT_BYTES = 16 * 1024 * 1024
MAX_INPUT_DEPTH = 256
DEFAULT_STATE = ".warden/state.db"  # under the project root (settings.state's default)


@dataclass
class Loaded:
    """The outcome of loading a policy set: a plan and any warnings (validation problems
    below error level)."""

    plan: dict[str, Any]
    root: Path
    sources: list[Source]
    warnings: list[Problem] = field(default_factory=list)
    cached: bool = False
    key: str = ""  # the plan cache key (sha256 of the sources)


def _read_sources(sources: list[Source]) -> list[tuple[str, str, bytes]]:
    entries = []
    for s in sources:
        try:
            with open(s.path, "rb") as fh:
                entries.append((s.scope, s.display, fh.read()))
        except OSError as exc:
            raise PolicyError(Problem(f"cannot read: {exc.strerror}", s.display)) from None
    return entries


def check_sources(
    sources: list[Source], *, strict: bool = False
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Full validation: every schema and semantic problem (and warnings), sorted.

    Returns the plan when there is no error. ``strict`` turns warnings into errors.
    """
    from warden.compile import compile_documents
    from warden.load import load_document
    from warden.validate import field_warnings, schema_problems

    problems: list[Problem] = []
    good = []
    for s in sources:
        try:
            doc = load_document(s.path, s.display)
        except PolicyError as exc:
            problems.extend(exc.problems)
            continue
        found = schema_problems(doc)
        problems.extend(found)
        if not found:
            good.append((s, doc))
        else:
            problems.extend(_semantic_extra(s, doc, found))
    plan, semantic = compile_documents(good, version=__version__)
    problems.extend(semantic)
    if not any(p.severity == "error" for p in problems):
        problems.extend(field_warnings(plan))
    if strict:
        for p in problems:
            p.severity = "error"
    problems.sort(key=lambda p: p.sort_key())
    has_error = any(p.severity == "error" for p in problems)
    return (None if has_error else plan), problems


def _semantic_extra(source: Source, doc: Any, found: list[Problem]) -> list[Problem]:
    """Semantic problems (bad regex, template, time zone...) of a document that also has
    schema errors, so that ``validate`` reports every error at once. Problems on the same
    branch of the document as a schema error are left out (they would repeat it)."""
    from warden.compile import compile_documents

    try:
        _, semantic = compile_documents([(source, doc)], version=__version__)
    except Exception:
        return []

    def related(a: str, b: str) -> bool:
        if a == b:
            return True
        if not a or not b:
            return False
        return any(
            x.startswith(y) and x[len(y)] in ".[" for x, y in ((a, b), (b, a)) if len(x) > len(y)
        )

    return [
        p
        for p in semantic
        if p.severity == "error" and not any(related(p.path, f.path) for f in found)
    ]


def build_plan(sources: list[Source], root: Path, *, use_cache: bool = True) -> Loaded:
    """The plan for these sources: from the cache when their bytes are unchanged."""
    from warden import plan as plan_mod

    entries = _read_sources(sources)
    key = plan_mod.source_key(entries, __version__)
    if use_cache:
        cached = plan_mod.read_cached(key)
        if cached is not None:
            return Loaded(cached, root, sources, cached=True, key=key)
    plan, problems = check_sources(sources)
    if plan is None:
        raise PolicyError([p for p in problems if p.severity == "error"])
    if use_cache:
        plan_mod.write_cached(key, plan)
    return Loaded(plan, root, sources, [p for p in problems if p.severity != "error"], key=key)


def check_input(data: Any) -> dict[str, Any]:
    """An evaluation input must be one JSON object, nested at most 256 levels.

    Strings holding lone surrogates (JSON ``"\\ud800"`` escapes) cannot be matched by RE2
    nor printed as UTF-8; such an input is returned as a copy with them replaced by U+FFFD,
    so that it is still evaluated (never turned into an internal error).
    """
    if type(data) is dict and _plain(data, _FAST_DEPTH):
        return data  # the common case: shallow, every key and string ASCII
    if not isinstance(data, dict):
        raise InputError("input must be a JSON object")
    unencodable = False
    stack: list[tuple[Any, int]] = [(data, 1)]  # containers only: they count for depth
    push, pop = stack.append, stack.pop
    while stack:
        value, depth = pop()
        if depth > MAX_INPUT_DEPTH:
            raise InputError(f"input nested deeper than {MAX_INPUT_DEPTH} levels")
        if isinstance(value, dict):
            if not unencodable:
                for k in value:
                    if not (isinstance(k, str) and k.isascii()) and _bad_text(k):
                        unencodable = True
                        break
            children = value.values()
        else:
            children = value
        for v in children:
            if isinstance(v, str):
                if not unencodable and not v.isascii() and _bad_text(v):
                    unencodable = True
            elif isinstance(v, (dict, list)):
                push((v, depth + 1))
    return _clean(data) if unencodable else data


# Inputs nested at most this deep are first screened by ``_plain`` (recursion, exact types:
# the cheapest walk for the usual agent event); anything else takes the full walk.
_FAST_DEPTH = 16


def _plain(value: dict[Any, Any], budget: int) -> bool:
    """True when ``value`` holds nothing ``check_input`` must act on or look at closely:
    nested less than ``budget`` more levels, built of exact dicts with ASCII string keys,
    lists and scalars, every string ASCII. False means "take the full walk", not "bad"."""
    for k in value:
        if type(k) is not str or not k.isascii():
            return False
    return _plain_values(value.values(), budget)


def _plain_values(values: Iterable[Any], budget: int) -> bool:
    """``_plain`` for the values of a dict or the items of a list."""
    for v in values:
        t = type(v)
        if t is str:
            if not v.isascii():
                return False
        elif t is dict:
            if budget <= 1 or not _plain(v, budget - 1):
                return False
        elif t is list:
            if budget <= 1 or not _plain_values(v, budget - 1):
                return False
        elif isinstance(v, (str, dict, list)):  # a subclass: the full walk decides
            return False
    return True


def _bad_text(s: Any) -> bool:
    if not isinstance(s, str) or s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_input(raw: bytes | str) -> dict[str, Any]:
    """Decode input JSON with the size and depth limits of DESIGN §8 (exit 65 otherwise)."""
    from warden import _json as json

    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(f"input larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"input is not valid UTF-8 (byte {exc.start})") from None
    if not raw.strip():
        raise InputError("empty input: expected one JSON object")
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(f"input nested deeper than {MAX_INPUT_DEPTH} levels") from None
    except ValueError as exc:
        raise InputError(f"invalid JSON input: {exc}") from None
    return check_input(data)


class Engine:
    """A loaded policy set, ready to evaluate inputs (the Python API of DESIGN §9)."""

    def __init__(
        self, plan: dict[str, Any], root: Path | str = ".", warnings: list[Problem] | None = None
    ) -> None:
        self._plan = plan  # a plan read from the cache keeps its rules as blobs (plan.py)
        self.root_dir = os.fspath(root)
        self.runtime = Runtime(plan)
        self.warnings = warnings or []
        self._store: Any = None
        self._location: tuple[tuple[Any, ...], str] | None = None  # (inputs, where)
        self._mode_cache: tuple[str, float] | None = None  # (mode, valid until)

    @property
    def plan(self) -> dict[str, Any]:
        """The plan document (every rule decoded, if it came lazily from the cache)."""
        from warden.plan import is_lazy, materialize

        if is_lazy(self._plan):
            self._plan = materialize(self._plan)
        return self._plan

    @property
    def root(self) -> Path:
        """The project root (pathlib is imported only when someone asks for it)."""
        from pathlib import Path

        return Path(self.root_dir)

    @property
    def plan_hash(self) -> str:
        return self.runtime.hash

    @property
    def settings(self) -> dict[str, Any]:
        return self.runtime.settings

    # ------------------------------------------------------------------ state

    def state_location(self) -> str:
        """``$WARDEN_STATE``, else ``settings.state``, else ``.warden/state.db`` under the
        project root; a policy set with no project files (user policies only) keeps its
        state under ``$XDG_STATE_HOME/warden/`` instead of creating ``.warden/`` in whatever
        directory the agent works in."""
        key = (os.environ.get("WARDEN_STATE"), self.root_dir, self.settings.get("state"))
        cached = self._location  # every evaluate asks (for the mode): skip pathlib then
        if cached is not None and cached[0] == key:
            return cached[1]
        loc = key[0] or str(key[2] or DEFAULT_STATE)
        if loc == DEFAULT_STATE and not key[0]:
            loc = self._default_state()
        if not ("://" in loc or os.path.isabs(loc)):
            loc = os.path.join(self.root_dir, loc)
        self._location = (key, loc)
        return loc

    def _default_state(self) -> str:
        if any(s.name != "user" for s in self.runtime.scopes):
            return DEFAULT_STATE
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "state"
        )
        return os.path.join(base, "warden", "state.db")

    def store(self, *, create: bool = True) -> Any:
        """The state store, opened on first use (None when absent and not ``create``)."""
        if self._store is None:
            loc = self.state_location()
            if not create and "://" not in loc and not os.path.exists(loc):
                return None
            from warden.state import open_store

            self._store = open_store(loc)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    MODE_TTL = 1.0  # seconds an in-process engine trusts the mode it read from the state

    def effective_mode(self) -> str:
        """``warden mode`` (stored in the state) overrides ``settings.mode``. Re-read at most
        once a second, so a long-lived engine sees `warden mode observe` within a second
        without a database query on every decision."""
        cached = self._mode_cache
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        mode = str(self.settings.get("mode", "enforce"))
        store = self.store(create=False)
        if store is not None:
            stored = store.get("mode")
            if stored in ("enforce", "observe"):
                mode = str(stored)
        self._mode_cache = (mode, now + self.MODE_TTL)
        return mode

    def _state_file_sane(self) -> bool:
        """Whether the SQLite state file is absent or looks like a database (header, whole
        pages), checked without importing sqlite3. A plain allow skips reading the stored
        mode only then: a broken state database still fails the call per ``on_error``."""
        loc = self.state_location()
        if "://" in loc:
            return False
        try:
            fd = os.open(loc, os.O_RDONLY)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            size, regular = st.st_size, st.st_mode & 0o170000 == 0o100000
            head = os.read(fd, 100) if regular else b""
        except OSError:
            return False
        finally:
            os.close(fd)
        if not regular:
            return False
        if size == 0:
            return True  # SQLite makes an empty file a database
        page = int.from_bytes(head[16:18], "big") if len(head) == 100 else 0
        page = 65536 if page == 1 else page
        return head.startswith(b"SQLite format 3\0") and page >= 512 and size % page == 0

    # ------------------------------------------------------------- evaluate

    def make_env(
        self,
        inp: dict[str, Any],
        *,
        now: float | None = None,
        environ: dict[str, str] | None = None,
        events: Any = None,
    ) -> Env:
        env = Env(
            inp,
            clock() if now is None else now,
            os.environ if environ is None else environ,
            self.root_dir,
            events,
        )
        if events is None:  # the input's session events, read on demand
            env.source = self
        return env

    def session_events_of(self, inp: dict[str, Any]) -> list[Any]:
        """The recorded events of the input's session (``state:`` conditions) for an ``Env``
        whose ``source`` is this engine: none without a string ``session_id`` or a state
        store."""
        session = inp.get("session_id")
        if not (isinstance(session, str) and self._uses_state()):
            return []
        store = self.store(create=False)
        return [] if store is None else store.session_events(session)

    def _uses_state(self) -> bool:
        return True

    def evaluate(
        self,
        inp: dict[str, Any],
        *,
        now: float | None = None,
        environ: dict[str, str] | None = None,
        events: Any = None,
        mode: str | None = None,
        side_effects: bool = True,
        quiet_allow: bool = False,
    ) -> Decision:
        """One decision for one input. ``then:`` items run unless ``side_effects=False``.

        ``quiet_allow``: for a caller that says nothing about a plain allow (no rule matched,
        no warning), in either mode: such a decision is made without reading the stored
        ``warden mode`` (a state database query), and reports ``settings.mode``."""
        start = perf_counter_ns()
        if not (type(inp) is dict and _plain(inp, _FAST_DEPTH)):
            inp = check_input(inp)
        if now is None and environ is None and events is None:
            # the usual call: the same Env as make_env(inp) gives, made directly
            env = new_env(inp, clock(), self.root_dir, self)
        else:
            env = self.make_env(inp, now=now, environ=environ, events=events)
        out = self.runtime.outcome(env)
        if mode is None:
            cached = self._mode_cache  # effective_mode(), its cache read inline
            mode = cached[0] if cached is not None and cached[1] > monotonic() else None
            if (
                mode is None
                and quiet_allow
                and out[0] == "allow"
                and not (out[4] or out[5])
                and self._state_file_sane()
            ):
                mode = str(self.settings.get("mode", "enforce"))
        decision = self._decision(out, env.notes, inp, mode or self.effective_mode())
        if side_effects and (out[4] or out[5]):
            result = Result(out[0], out[1], out[2], out[3], out[4], out[5], out[6], env.notes, inp)
            self.run_side_effects(result, decision, env)
        # milliseconds, rounded to the microsecond
        decision.duration_ms = (perf_counter_ns() - start + 500) // 1000 / 1000
        return decision

    def to_decision(self, result: Result, mode: str) -> Decision:
        out: Outcome = (
            result.decision,
            result.reason,
            result.event,
            result.tool,
            result.matched,
            result.warns,
            result.default_used,
        )
        return self._decision(out, result.notes, result.input, mode)

    def _decision(self, out: Outcome, notes: list[str], inp: dict[str, Any], mode: str) -> Decision:
        decision, reason, event, tool, rules, warns, default_used = out
        d = new_decision(
            decision,
            mode == "enforce",
            reason,
            [{"policy": r.name, "message": message(r, inp)} for r in warns] if warns else None,
            rules,
            self.runtime.hash,
            event,
            tool,
            mode,
            default_used,
        )
        if notes:  # else left to its (lazily made) empty default
            d.warnings = list(notes)
        return d

    def run_side_effects(self, result: Result, decision: Decision, env: Env) -> None:
        rules = [r for r in result.matched + result.warns if r.spec.get("then")]
        if not rules:
            return
        try:
            from warden import effects
        except ImportError:  # side effects arrive with the hooks module
            return
        decision.side_effects.extend(effects.run(self, rules, env, decision))

    def explain(
        self,
        inp: dict[str, Any],
        *,
        now: float | None = None,
        environ: dict[str, str] | None = None,
        events: Any = None,
    ) -> list[dict[str, Any]]:
        env = self.make_env(check_input(inp), now=now, environ=environ, events=events)
        return self.runtime.explain(env)


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    user_policies: bool = True,
    policies: list[str] | None = None,
    use_cache: bool = True,
) -> Engine:
    """Discover and load policies as the CLI does (from ``path`` or the cwd)."""
    start = str(path) if path is not None else None
    if start is not None and os.path.isfile(start) and not policies:
        # a policy file: load just that file (its directory is the project root)
        policies, start = [start], os.path.dirname(os.path.abspath(start))
    engine = find_engine(policies, cwd=start, start=start, user=user_policies, use_cache=use_cache)
    if engine is None:
        raise PolicyError(
            Problem(
                f"no policy files found (no warden.yaml or .warden/*.yaml at or above "
                f"{start or os.getcwd()})"
            )
        )
    return engine


def find_engine(
    policies: list[str] | None,
    *,
    cwd: str | None,
    start: str | None,
    user: bool,
    use_cache: bool = True,
) -> Engine | None:
    """Discover the policy set (DESIGN §2) and load it; None when there is no policy file.

    With the cache, an index entry (plan.py) whose recorded ``stat``s all still hold skips
    discovery and the reading and hashing of the sources: the cached plan is opened
    directly, its rules decoded only as evaluations need them.
    """
    from warden import plan as plan_mod

    ident = None
    if use_cache:
        user_dir = (os.environ.get("XDG_CONFIG_HOME"), os.path.expanduser("~")) if user else None
        ident = plan_mod.index_id(
            (__version__, os.getcwd(), cwd, start, tuple(policies or ()), user_dir)
        )
        hit = plan_mod.read_index(ident)
        if hit is not None:
            cached = plan_mod.read_cached(hit[0], lazy=True)
            if cached is not None:
                return Engine(cached, hit[1])
    from warden.load import discover

    deps: list[tuple[str, str]] = []
    sources, root = discover(policies, cwd=cwd, user=user, start=start, deps=deps)
    if not sources:
        return None
    loaded = build_plan(sources, root, use_cache=use_cache)
    if ident is not None and loaded.key:
        probes = deps + [("stat", s.path) for s in sources]
        seen = plan_mod.snapshot(probes)
        # Discovery again, after the snapshot: a file that appeared while the plan was
        # built shows here (and nothing is recorded), or in the next call's check.
        again: list[tuple[str, str]] = []
        sources2, root2 = discover(policies, cwd=cwd, user=user, start=start, deps=again)
        if again == deps and sources2 == sources and root2 == root:
            reals = [start or cwd or os.getcwd(), *(policies or ())]
            plan_mod.write_index(ident, loaded.key, str(loaded.root), reals, probes, seen)
    return Engine(loaded.plan, loaded.root, loaded.warnings)


def load_plan(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Engine:
    """An engine for a plan written by ``warden compile``."""
    from warden.plan import load_json

    plan = load_json(str(path))
    return Engine(plan, os.fspath(root) if root else os.getcwd())
