"""``warden serve``: the HTTP decision API of fleet mode.

Many agents and runners ask one long-lived process instead of each starting Python, finding
policy files and loading a plan. The server is the standard library's
``http.server.ThreadingHTTPServer`` (one thread per connection, HTTP/1.1 keep-alive): no
dependency to install or keep patched, and on loopback it answers a decision in a fraction of a
millisecond; ``bench/fleet_bench.py`` measures it and docs/fleet.md has the figures.

Endpoints (the OpenAPI document ``warden/openapi.json`` describes them, and is served at
``GET /v1/openapi.json``):

- ``POST /v1/decide``: one input object in, the decision document (DESIGN §4) out;
- ``POST /v1/hook/claude``: a Claude Code hook event in, the hook's reply out as
  ``{"exit_code", "stdout", "stderr"}`` (what ``warden hook claude`` would have done);
- ``GET /v1/health``: liveness, the plan served, and whether the last reload failed;
- ``GET /v1/plan``: the plan hash and the source files it was built from;
- ``GET /v1/openapi.json``.

Threads share one ``Engine`` (the compiled plan is read-only), but each thread opens its own
state store: sqlite3 connections belong to the thread that made them, and a PostgreSQL
connection serves one transaction at a time. A store is opened only when a request needs one
(``state:`` conditions, ``then: record``, ``warden mode``) and closed when its connection ends.

Hot reload: a watcher thread checks the policy files (the discovered set, their sizes and
modification times) once per ``reload_interval`` and rebuilds the plan with ``build_plan`` when
they changed. A new plan that fails validation is not served: the previous one stays, and
``/v1/health`` reports ``"status": "degraded"`` with the errors until the files are fixed.
Requests never wait for a reload, so the latency stays flat while files change.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from warden import __version__
from warden.engine import MAX_INPUT_BYTES, Engine, build_plan, parse_input
from warden.errors import InputError, PolicyError, Problem, UsageError, WardenError
from warden.load import Source, discover

__all__ = [
    "App",
    "HookReply",
    "ServerEngine",
    "StorePool",
    "WardenHTTPServer",
    "is_loopback",
    "make_server",
    "openapi_document",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8181
DEFAULT_RELOAD_INTERVAL = 1.0
#: Bodies larger than this (but still announced) are read and discarded so that the client
#: sees the 413 reply instead of a reset connection; anything larger just closes the socket.
_DRAIN_LIMIT = 4 * MAX_INPUT_BYTES
#: Idle keep-alive connections are closed after this many seconds.
IDLE_TIMEOUT_S = 30.0


# ----------------------------------------------------------------------------- state stores


class StorePool:
    """One state store per (thread, location), opened on first use.

    A store is closed by ``close_thread()``, which the server calls when the thread's
    connection ends (``ThreadingHTTPServer`` runs one thread per connection).
    """

    def __init__(self, opener: Callable[[str], Any] | None = None) -> None:
        self._local = threading.local()
        self._opener = opener
        self._lock = threading.Lock()
        self.opened = 0

    def _open(self, location: str) -> Any:
        if self._opener is not None:
            return self._opener(location)
        from warden.state import open_store

        return open_store(location)

    def get(self, location: str) -> Any:
        stores: dict[str, Any] | None = getattr(self._local, "stores", None)
        if stores is None:
            stores = self._local.stores = {}
        store = stores.get(location)
        if store is not None and _broken(store):
            # the database went away (restart, failover): reconnect instead of failing every
            # later request of this keep-alive connection
            with contextlib.suppress(Exception):
                store.close()
            store = None
        if store is None:
            store = stores[location] = self._open(location)
            with self._lock:
                self.opened += 1
        return store

    def close_thread(self) -> None:
        stores: dict[str, Any] | None = getattr(self._local, "stores", None)
        if not stores:
            return
        self._local.stores = {}
        for store in stores.values():
            with contextlib.suppress(Exception):  # closing never takes a request thread down
                store.close()


def _broken(store: Any) -> bool:
    """True when a store's PostgreSQL connection is closed or broken (sqlite3: never)."""
    conn = getattr(store, "_conn", None)
    return bool(getattr(conn, "broken", False) is True or getattr(conn, "closed", False) is True)


class ServerEngine(Engine):
    """An ``Engine`` whose state store comes from a per-thread ``StorePool``."""

    def __init__(
        self,
        plan: dict[str, Any],
        root: Path | str,
        warnings: list[Problem] | None,
        pool: StorePool,
    ) -> None:
        super().__init__(plan, root, warnings)
        self.pool = pool

    def store(self, *, create: bool = True) -> Any:
        loc = self.state_location()
        if not create and "://" not in loc and not os.path.exists(loc):
            return None
        return self.pool.get(loc)

    def close(self) -> None:
        """Stores belong to the pool's threads; nothing to close here."""


# ------------------------------------------------------------------------------- the plan


@dataclass
class LoadedPlan:
    """What is being served: an engine and where its plan came from."""

    engine: ServerEngine
    sources: list[dict[str, str]]
    signature: tuple[Any, ...]
    content_key: str
    loaded_at: float
    cached: bool


@dataclass
class ReloadStatus:
    ok: bool = True
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    checked_at: float = 0.0
    failed_at: float | None = None
    reloads: int = 0


def _signature(sources: list[Source]) -> tuple[Any, ...]:
    """A cheap fingerprint of the policy set: paths, scopes, sizes, mtimes, inodes."""
    parts: list[Any] = []
    for s in sources:
        try:
            st = os.stat(s.path)
            parts.append((s.path, s.scope, st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            parts.append((s.path, s.scope, None))
    return tuple(parts)


def _digest_sources(sources: list[Source]) -> tuple[str, list[dict[str, str]]]:
    whole = hashlib.sha256()
    listed = []
    for s in sources:
        try:
            with open(s.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise PolicyError(Problem(f"cannot read: {exc.strerror}", s.display)) from None
        digest = hashlib.sha256(data).hexdigest()
        whole.update(f"{s.scope}\0{s.path}\0{digest}\0".encode())
        listed.append({"path": s.display, "scope": s.scope, "sha256": "sha256:" + digest})
    return whole.hexdigest(), listed


class App:
    """The server's state: the plan being served, its reload watcher, auth and stores."""

    def __init__(
        self,
        *,
        policies: list[str] | None = None,
        user_policies: bool = True,
        cwd: str | None = None,
        token: str | None = None,
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
        use_cache: bool = True,
        pool: StorePool | None = None,
    ) -> None:
        self.policies = policies
        self.user_policies = user_policies
        self.cwd = cwd or os.getcwd()
        self.token = token or None
        self.reload_interval = reload_interval
        self.use_cache = use_cache
        self.pool = pool or StorePool()
        self.started = time.time()
        self.status = ReloadStatus()
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.current = self._load()  # raises PolicyError/UsageError: refuse to start
        self.status.checked_at = time.time()
        self._openapi: bytes | None = None

    # -- loading -----------------------------------------------------------------------------

    def _discover(self) -> tuple[list[Source], Path]:
        sources, root = discover(
            self.policies, cwd=self.cwd, user=self.user_policies, start=self.cwd
        )
        if not sources:
            raise PolicyError(
                Problem(
                    "no policy files found (no warden.yaml or .warden/*.yaml at or above "
                    f"{self.cwd})"
                )
            )
        return sources, root

    def _load(self, sources: list[Source] | None = None, root: Path | None = None) -> LoadedPlan:
        if sources is None or root is None:
            sources, root = self._discover()
        signature = _signature(sources)
        key, listed = _digest_sources(sources)
        loaded = build_plan(sources, root, use_cache=self.use_cache)
        engine = ServerEngine(loaded.plan, loaded.root, loaded.warnings, self.pool)
        return LoadedPlan(engine, listed, signature, key, time.time(), loaded.cached)

    @property
    def engine(self) -> ServerEngine:
        return self.current.engine

    def check_reload(self) -> bool:
        """Rebuild the plan if the policy files changed. Returns True when a new plan is
        served. A failing rebuild keeps the current plan and records the error."""
        if not self._reload_lock.acquire(blocking=False):
            return False
        try:
            return self._check_reload()
        finally:
            self._reload_lock.release()

    def _check_reload(self) -> bool:
        self.status.checked_at = time.time()
        signature: tuple[Any, ...] | None = None
        try:
            sources, root = self._discover()
            signature = _signature(sources)
            if signature == self.current.signature and self.status.ok:
                return False
            if not self.status.ok and signature == self._failed_signature:
                return False  # still the same broken files: do not re-validate every second
            key, _ = _digest_sources(sources)
            if key == self.current.content_key:
                # touched, or put back to what is served: nothing to rebuild
                self.current.signature = signature
                self._mark_ok()
                return False
            fresh = self._load(sources, root)
        except Exception as exc:  # WardenError or anything else: the watcher never dies
            self._mark_failed(exc, signature)
            return False
        self.current = fresh
        self.status.reloads += 1
        self._mark_ok()
        return True

    _failed_signature: tuple[Any, ...] | None = None

    def _mark_ok(self) -> None:
        self.status.ok = True
        self.status.error = None
        self.status.problems = []
        self.status.failed_at = None
        self._failed_signature = None

    def _mark_failed(self, exc: Exception, signature: tuple[Any, ...] | None) -> None:
        self.status.ok = False
        if isinstance(exc, PolicyError):
            self.status.problems = [str(p) for p in exc.problems]
            errors = sum(1 for p in exc.problems if p.severity == "error")
            self.status.error = f"new policy files are invalid ({errors} error(s))"
        else:
            self.status.problems = [str(exc)]
            self.status.error = f"reload failed: {exc}"
        self.status.failed_at = time.time()
        self._failed_signature = signature

    def start_watcher(self) -> None:
        if self.reload_interval <= 0 or self._watcher is not None:
            return

        def watch() -> None:
            while not self._stop.wait(self.reload_interval):
                self.check_reload()

        self._watcher = threading.Thread(target=watch, name="warden-reload", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()

    # -- documents ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        cur = self.current
        return {
            "status": "ok" if self.status.ok else "degraded",
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 3),
            "plan": {
                "hash": cur.engine.plan_hash,
                "loaded_at": cur.loaded_at,
                "sources": len(cur.sources),
            },
            "reload": {
                "ok": self.status.ok,
                "error": self.status.error,
                "problems": list(self.status.problems),
                "checked_at": self.status.checked_at,
                "failed_at": self.status.failed_at,
                "reloads": self.status.reloads,
                "interval_s": self.reload_interval,
            },
        }

    def plan_info(self) -> dict[str, Any]:
        cur = self.current
        plan = cur.engine.plan
        return {
            "hash": cur.engine.plan_hash,
            "loaded_at": cur.loaded_at,
            "root": str(cur.engine.root),
            "cached": cur.cached,
            "sources": list(cur.sources),
            "rules": sum(len(s.get("rules", [])) for s in plan.get("scopes", [])),
            "actions": sorted(plan.get("actions", {}) or {}),
        }

    def openapi(self) -> bytes:
        if self._openapi is None:
            self._openapi = json.dumps(openapi_document()).encode("utf-8")
        return self._openapi

    # -- auth --------------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        if self.token is None:
            return True
        if not header:
            return False
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode("utf-8"), self.token.encode("utf-8"))


def openapi_document() -> dict[str, Any]:
    """The shipped OpenAPI document, with this warden's version filled in."""
    from importlib.resources import files

    doc: dict[str, Any] = json.loads(files("warden").joinpath("openapi.json").read_bytes())
    doc.setdefault("info", {})["version"] = __version__
    return doc


# ------------------------------------------------------------------------------ the hook


@dataclass
class HookReply:
    """What ``warden hook claude`` would do: exit code, JSON on stdout, text on stderr."""

    exit_code: int
    stdout: dict[str, Any] | None
    stderr: str

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr}


def _hooks() -> Any:
    """``warden.hooks`` when this build has the functions the server uses, else None."""
    try:
        from warden import hooks
    except ImportError:
        return None
    needed = (
        "evaluate_hook",
        "claude_reply",
        "error_reply",
        "_on_error_value",
        "failed_side_effects",
        "side_effect_failure_reply",
    )
    return hooks if all(callable(getattr(hooks, n, None)) for n in needed) else None


def _convert(reply: Any) -> HookReply:
    text = str(reply.stdout or "").strip()
    out: dict[str, Any] | None = None
    if text:
        parsed = json.loads(text)
        out = parsed if isinstance(parsed, dict) else None
    return HookReply(int(reply.code), out, str(reply.stderr or ""))


def _peek(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def claude_reply(engine: Engine, inp: dict[str, Any]) -> HookReply:
    """The reply of ``warden hook claude`` to one (parsed) Claude Code hook event.

    Uses the hooks module (``evaluate_hook``: evaluate, then record the event into its
    session; ``claude_reply``; ``error_reply`` per ``on_error``) when this build has it, so
    the server answers exactly as ``warden hook claude`` would. Without it, the PreToolUse
    subset is answered here: ``permissionDecision`` allow/deny/ask with the reason (sent when a
    rule matched or the default is not allow), warn feedback as ``additionalContext``.
    """
    hooks = _hooks()
    if hooks is not None:
        try:
            decision = hooks.evaluate_hook(engine, inp)
            failed = hooks.failed_side_effects(decision)
            if failed:  # a then: command could not start: on_error decides, as in the CLI
                mode = "allow" if engine.settings.get("on_error") == "allow" else "deny"
                return _convert(hooks.side_effect_failure_reply(decision, inp, failed, mode))
            return _convert(hooks.claude_reply(decision, inp))
        except Exception as exc:
            return hook_error(engine, exc, inp)
    name = inp.get("hook_event_name")
    try:
        decision = engine.evaluate(inp)
    except Exception as exc:
        return hook_error(engine, exc, inp)
    context = "\n".join(f"{f['policy']}: {f['message']}" for f in decision.feedback)
    if name != "PreToolUse":
        out: dict[str, Any] = {}
        if context and name in ("PostToolUse", "UserPromptSubmit", "SessionStart"):
            out["hookSpecificOutput"] = {"hookEventName": name, "additionalContext": context}
        return HookReply(0, out, "")
    specific: dict[str, Any] = {"hookEventName": "PreToolUse"}
    default = str(engine.settings.get("default", "allow"))
    if decision.enforced and (decision.matched or default != "allow"):
        specific["permissionDecision"] = decision.decision
        specific["permissionDecisionReason"] = decision.reason
    if context:
        specific["additionalContext"] = context
    return HookReply(0, {"hookSpecificOutput": specific}, "")


def hook_error(engine: Engine, exc: BaseException, inp: dict[str, Any] | None) -> HookReply:
    """The hook's answer when warden cannot evaluate the event: ``on_error`` of the plan."""
    hooks = _hooks()
    mode = "allow" if engine.settings.get("on_error") == "allow" else "deny"
    if hooks is not None:
        return _convert(hooks.error_reply(exc, mode, inp))
    message = f"warden: {exc}"
    if mode == "allow":
        return HookReply(0, {}, message)
    if (
        inp is not None
        and inp.get("hook_event_name") in ("Stop", "SubagentStop")
        and inp.get("stop_hook_active")
    ):
        return HookReply(0, {}, message)
    return HookReply(2, None, message + " (on_error: deny)")


# ----------------------------------------------------------------------------- HTTP layer


class WardenHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that closes a thread's state stores when its connection ends."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App, *, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log
        super().__init__(address, Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.app.pool.close_thread()


class _V6Server(WardenHTTPServer):
    address_family = socket.AF_INET6


_ROUTES: dict[str, str] = {
    "/v1/decide": "POST",
    "/v1/hook/claude": "POST",
    "/v1/health": "GET",
    "/v1/plan": "GET",
    "/v1/openapi.json": "GET",
}


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"warden/{__version__}"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: WardenHTTPServer

    # -- plumbing ----------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        # headers and body in one write: two small segments on a keep-alive connection meet
        # the client's delayed ACK (Nagle) and cost ~40 ms per request
        self._headers_buffer.append(b"\r\n" if self.command == "HEAD" else b"\r\n" + body)
        self.flush_headers()

    def _json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(status, body, headers=headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message, "status": status}, headers)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            raise _HTTPError(400, "invalid Content-Length", close=True) from None
        if length > MAX_INPUT_BYTES:
            if length <= _DRAIN_LIMIT:
                self._discard(length)
                raise _HTTPError(413, self._too_large())
            raise _HTTPError(413, self._too_large(), close=True)
        return self.rfile.read(length)

    @staticmethod
    def _too_large() -> str:
        return f"request body larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB"

    def _discard(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HTTPError(400, "invalid chunked encoding", close=True) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_INPUT_BYTES:
                raise _HTTPError(413, self._too_large(), close=True)
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    # -- dispatch ----------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()  # always, so that a keep-alive connection stays in step
            if path not in _ROUTES:
                raise _HTTPError(404, f"no such endpoint: {path}")
            if _ROUTES[path] != method:
                raise _HTTPError(405, f"{path} accepts {_ROUTES[path]} only")
            if not self.server.app.authorized(self.headers.get("Authorization")):
                self._error(
                    401,
                    "missing or wrong bearer token",
                    {"WWW-Authenticate": 'Bearer realm="warden"'},
                )
                return
            self._route(path, body)
        except _HTTPError as exc:
            if exc.close:
                self.close_connection = True
            headers = {"Allow": _ROUTES.get(path, "")} if exc.status == 405 else None
            self._error(exc.status, exc.message, headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._error(500, f"internal error: {type(exc).__name__}: {exc}")

    def _route(self, path: str, body: bytes) -> None:
        app = self.server.app
        if path == "/v1/decide":
            self._decide(app.engine, body)
        elif path == "/v1/hook/claude":
            self._hook(app.engine, body)
        elif path == "/v1/health":
            self._json(200, app.health())
        elif path == "/v1/plan":
            self._json(200, app.plan_info())
        else:
            self._send(200, app.openapi())

    def _hook(self, engine: Engine, body: bytes) -> None:
        try:
            inp = parse_input(body)
        except InputError as exc:
            # not an event at all: an HTTP error, carrying what the hook answers to it
            status = 413 if len(body) > MAX_INPUT_BYTES else 400
            reply = hook_error(engine, exc, _peek(body))
            self._json(
                status,
                {"error": str(exc), "status": status, "reply": reply.to_dict()},
                {"X-Warden-Exit-Code": str(reply.exit_code)},
            )
            return
        reply = claude_reply(engine, inp)
        self._json(200, reply.to_dict(), {"X-Warden-Exit-Code": str(reply.exit_code)})

    def _decide(self, engine: Engine, body: bytes) -> None:
        try:
            inp = parse_input(body)
        except InputError as exc:
            status = 413 if len(body) > MAX_INPUT_BYTES else 400
            raise _HTTPError(status, str(exc)) from None
        try:
            decision = engine.evaluate(inp)
        except InputError as exc:
            raise _HTTPError(400, str(exc)) from None
        except WardenError as exc:
            self._error(500, f"warden: {exc}", {"X-Warden-Exit-Code": str(exc.exit_code)})
            return
        self._json(
            200,
            decision.to_dict(),
            {
                "X-Warden-Exit-Code": str(decision.exit_code),
                "X-Warden-Plan-Hash": engine.plan_hash,
            },
        )

    def __getattr__(self, name: str) -> Any:
        # any other method (QUERY, PROPFIND...) gets a JSON 405, not http.server's HTML 501
        if name.startswith("do_") and name[3:].isupper():
            method = name[3:]
            return lambda: self._handle(method)
        raise AttributeError(name)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def do_TRACE(self) -> None:
        self._handle("TRACE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")


# --------------------------------------------------------------------------------- set-up


def is_loopback(host: str) -> bool:
    """True if every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    if host in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def make_server(
    app: App, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, access_log: bool = False
) -> WardenHTTPServer:
    """Bind (but do not start) a server. Beyond loopback a bearer token is required."""
    if not is_loopback(host) and not app.token:
        raise UsageError(
            f"refusing to listen on {host}: beyond loopback a bearer token is required "
            "(--token-file FILE, --token or $WARDEN_TOKEN)"
        )
    cls = _V6Server if ":" in host.strip("[]") else WardenHTTPServer
    try:
        return cls((host.strip("[]"), port), app, access_log=access_log)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
