"""Agent hooks: the Claude Code protocol adapter, the generic adapter, install, session state.

``run_claude`` answers one Claude Code hook event (JSON on stdin) in that protocol:

* exit 0 with JSON on stdout, or exit 2 with the reason on stderr; never anything else;
* ``PreToolUse``: ``hookSpecificOutput.permissionDecision`` allow/deny/ask with
  ``permissionDecisionReason``; ``PermissionRequest``: ``hookSpecificOutput.decision.behavior``
  allow/deny (ask: no decision, the dialog is shown); events with a top-level
  ``decision: "block"`` (UserPromptSubmit, PostToolUse, Stop, SubagentStop, PreCompact,
  ConfigChange) get that for deny and ask; events that only understand exit codes
  (TaskCreated, TaskCompleted, TeammateIdle, Elicitation, ElicitationResult, WorktreeCreate)
  and events warden does not know get exit 2; events that cannot be blocked get the reason
  as a ``systemMessage``;
* warn feedback as ``hookSpecificOutput.additionalContext`` where the event takes it, else
  as ``systemMessage`` (each capped at 10,000 characters);
* nothing decided: ``{}`` (only an explicit ``effect: allow`` rule sends "allow", so the
  agent's own permission prompt is not skipped by accident);
* observe mode never blocks; a Stop/SubagentStop never blocks while ``stop_hook_active``;
* any failure (bad stdin, broken policy, internal error): one line on stderr, then
  ``on_error`` of the last valid plan for this project (a pointer file in the cache), else
  ``$WARDEN_ON_ERROR``, else deny (exit 2).

After its own evaluation every PostToolUse, PostToolUseFailure and UserPromptSubmit is
recorded into the session state (``session_id``) for later ``state:`` conditions.

This module is on the hook hot path: only json, os and sys at import time.
"""

from __future__ import annotations

import os
import sys

from warden import _json as json  # the hot path: no `json`/`re` import

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CONTEXT_LIMIT = 10_000
RECORDED_EVENTS = frozenset({"PostToolUse", "PostToolUseFailure", "UserPromptSubmit"})
STOP_EVENTS = frozenset({"Stop", "SubagentStop"})
PRUNE_KEY = "hooks.last_prune"
MAX_RECORDED_STRING = 16 * 1024  # longer strings keep their first and last 8 KiB
PRUNE_EVERY_S = 3600.0

# How a Claude Code event can be answered.
PERMISSION = "permission"  # hookSpecificOutput.permissionDecision
PERMISSION_REQUEST = "permission-request"  # hookSpecificOutput.decision.behavior
BLOCK = "block"  # top-level {"decision": "block", "reason": ...}
EXIT = "exit"  # exit 2 + stderr only
NONE = "none"  # cannot be blocked
UNKNOWN = "unknown"  # not in this table: exit 2 blocks wherever the event can be blocked

CLAUDE_EVENTS: dict[str, str] = {
    "PreToolUse": PERMISSION,
    "PermissionRequest": PERMISSION_REQUEST,
    "UserPromptSubmit": BLOCK,
    "PostToolUse": BLOCK,
    "Stop": BLOCK,
    "SubagentStop": BLOCK,
    "PreCompact": BLOCK,
    "ConfigChange": BLOCK,
    "TaskCreated": EXIT,
    "TaskCompleted": EXIT,
    "TeammateIdle": EXIT,
    "Elicitation": EXIT,
    "ElicitationResult": EXIT,
    "WorktreeCreate": EXIT,
    "SessionStart": NONE,
    "Setup": NONE,
    "SessionEnd": NONE,
    "PostToolUseFailure": NONE,
    "PermissionDenied": NONE,
    "Notification": NONE,
    "SubagentStart": NONE,
    "StopFailure": NONE,
    "PostCompact": NONE,
    "InstructionsLoaded": NONE,
    "CwdChanged": NONE,
    "FileChanged": NONE,
    "WorktreeRemove": NONE,
}
# Events whose hookSpecificOutput takes additionalContext (the rest get systemMessage).
CONTEXT_EVENTS = frozenset(
    {
        "PreToolUse",
        "UserPromptSubmit",
        "PostToolUse",
        "PostToolUseFailure",
        "SessionStart",
        "Setup",
        "Notification",
        "SubagentStart",
    }
)
# Events whose stdout means something else (the worktree path): never print JSON there.
NO_JSON_EVENTS = frozenset({"WorktreeCreate"})

# What `warden hook install claude` adds: (event, matcher or None when it takes none).
INSTALL_EVENTS: list[tuple[str, str | None]] = [
    ("PreToolUse", "*"),
    ("PostToolUse", "*"),
    ("PostToolUseFailure", "*"),
    ("UserPromptSubmit", None),
    ("Stop", None),
    ("SubagentStop", "*"),
    ("SessionStart", "*"),
    ("PreCompact", "*"),
]
HOOK_COMMAND = "warden hook claude"


class Reply:
    """What the hook process prints and how it exits."""

    __slots__ = ("code", "stderr", "stdout")

    def __init__(self, stdout: str = "", stderr: str = "", code: int = 0) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.code = code

    def emit(self) -> int:
        """Print the reply (stdout, then stderr); the exit code."""
        if self.stdout:
            sys.stdout.write(self.stdout)
            sys.stdout.flush()
        if self.stderr:
            sys.stderr.write(self.stderr)
            sys.stderr.flush()
        return self.code

    def __repr__(self) -> str:
        return f"Reply(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


# ---------------------------------------------------------------------------- loading


def project_start(environ: Any = None) -> str:
    """Where policy discovery starts for a hook: ``$CLAUDE_PROJECT_DIR``, else the cwd."""
    environ = os.environ if environ is None else environ
    start = environ.get("CLAUDE_PROJECT_DIR") or ""
    if start and os.path.isdir(start):
        return os.path.abspath(start)
    return os.getcwd()


def load_engine(start: str, policies: list[str] | None = None, user: bool = True) -> Any:
    """The engine for a hook call, or None when there is no policy file at all."""
    from warden.engine import find_engine

    return find_engine(policies, cwd=start, start=start, user=user)


def _pointer_path(start: str) -> str:
    from warden.plan import sha256_hex  # no hashlib/OpenSSL import on the hot path

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = sha256_hex(os.path.abspath(start).encode("utf-8", "replace"))
    return os.path.join(base, "warden", "hooks", digest[:32] + ".json")


def read_pointer(start: str) -> dict[str, Any] | None:
    """The last good plan of this project as the hook remembers it (hash, on_error)."""
    try:
        with open(_pointer_path(start), encoding="utf-8") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_pointer(start: str, engine: Any) -> None:
    """Remember this valid plan's hash and on_error (written only when they change)."""
    record = {
        "start": os.path.abspath(start),
        "root": engine.root_dir,
        "plan": engine.plan_hash,
        "on_error": _on_error_value(engine.settings),
    }
    if read_pointer(start) == record:
        return
    path = _pointer_path(start)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(record))
        os.replace(tmp, path)
    except OSError:
        from warden.plan import discard

        discard(tmp)


def _on_error_value(settings: Any) -> str:
    value = settings.get("on_error") if isinstance(settings, dict) else None
    return "allow" if value == "allow" else "deny"


def on_error_mode(engine: Any, start: str, environ: Any = None) -> str:
    """``on_error`` of the current valid plan, else of the last valid one (pointer), else
    ``$WARDEN_ON_ERROR``, else deny."""
    if engine is not None:
        return _on_error_value(engine.settings)
    pointer = read_pointer(start)
    if pointer is not None and pointer.get("on_error") in ("allow", "deny"):
        return str(pointer["on_error"])
    environ = os.environ if environ is None else environ
    env_value = (environ.get("WARDEN_ON_ERROR") or "").strip().lower()
    return "allow" if env_value == "allow" else "deny"


# ------------------------------------------------------------------------- evaluation


def evaluate_hook(engine: Any, inp: dict[str, Any], *, quiet_allow: bool = False) -> Any:
    """Evaluate one agent event, run its side effects, then record it into its session.

    ``quiet_allow``: the caller answers a plain allow (no rule matched, no warning) the same
    in either mode (Claude Code: ``{}``), so the stored ``warden mode`` is not read for it.
    """
    from warden.durations import now as clock

    t = clock()
    decision = engine.evaluate(inp, now=t, quiet_allow=quiet_allow)
    record_input(engine, inp, t)
    return decision


def record_input(engine: Any, inp: dict[str, Any], ts: float) -> bool:
    """Record PostToolUse / PostToolUseFailure / UserPromptSubmit events (after their own
    evaluation) into the state of their ``session_id``; prune old sessions now and then."""
    from warden.runtime import event_and_tool

    event, tool = event_and_tool(inp)
    session = inp.get("session_id")
    if event not in RECORDED_EVENTS or not isinstance(session, str) or not session:
        return False
    store = engine.store()
    store.record_event(session, event, tool, compact(inp), ts=ts)
    maybe_prune(engine, store, ts)
    return True


def compact(value: Any, limit: int = MAX_RECORDED_STRING) -> Any:
    """The value as recorded: strings over ``limit`` characters keep their head and tail
    (a Read's tool_response holds the whole file; git prints its error at the end)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        half = limit // 2
        return (
            f"{value[:half]}\n[... {len(value) - 2 * half} characters not recorded by "
            f"warden ...]\n{value[-half:]}"
        )
    if isinstance(value, dict):
        return {k: compact(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v, limit) for v in value]
    return value


def maybe_prune(engine: Any, store: Any, now: float) -> int:
    """Prune sessions older than ``settings.state_retention``, at most once an hour."""
    last = store.get(PRUNE_KEY)
    if isinstance(last, (int, float)) and abs(now - float(last)) < PRUNE_EVERY_S:
        return 0
    retention = retention_seconds(engine.settings)
    removed = int(store.prune(retention, now=now))
    store.put(PRUNE_KEY, now, by="hook")
    return removed


def retention_seconds(settings: dict[str, Any]) -> float:
    from warden.durations import parse_duration

    try:
        return parse_duration(settings.get("state_retention") or "30d")
    except ValueError:
        return parse_duration("30d")


# --------------------------------------------------------------------- Claude Code reply


def _cap(text: str, limit: int = CONTEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    marker = "\n[truncated by warden]"
    return text[: limit - len(marker)] + marker


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def verdict_of(decision: Any, inp: dict[str, Any]) -> str | None:
    """What the hook tells the agent: allow/deny/ask, or None (say nothing).

    A decision is sent only when a rule matched or the effective default is not allow;
    never in observe mode; never a block of Stop/SubagentStop while stop_hook_active.
    """
    if not decision.enforced:
        return None
    if not decision.matched and decision.decision == "allow":
        return None
    verdict: str = decision.decision
    event = inp.get("hook_event_name")
    if verdict != "allow" and event in STOP_EVENTS and inp.get("stop_hook_active") is True:
        return None
    return verdict


def claude_reply(decision: Any, inp: dict[str, Any]) -> Reply:
    """The protocol answer for one decision."""
    event = inp.get("hook_event_name")
    name = event if isinstance(event, str) else ""
    style = CLAUDE_EVENTS.get(name, UNKNOWN)
    verdict = verdict_of(decision, inp)
    reason = decision.reason or f"{verdict} by warden"
    context = [f["message"] for f in decision.feedback if f.get("message")]
    system: list[str] = []
    if not decision.enforced and decision.decision != "allow":
        system.append(f"warden (observe mode) would {decision.decision}: {decision.reason}")
    out: dict[str, Any] = {}
    specific: dict[str, Any] = {}
    blocking = verdict in ("deny", "ask")
    if style == PERMISSION and verdict is not None:
        specific["permissionDecision"] = verdict
        specific["permissionDecisionReason"] = reason
    elif style == PERMISSION_REQUEST and verdict == "deny":
        specific["decision"] = {"behavior": "deny", "message": reason}
    elif style == PERMISSION_REQUEST and verdict == "allow":
        specific["decision"] = {"behavior": "allow"}
    elif style == BLOCK and blocking:
        out["decision"] = "block"
        out["reason"] = reason
    elif style in (EXIT, UNKNOWN) and blocking:
        lines = [reason, *context]
        return Reply("", _cap("\n".join(lines)) + "\n", 2)
    elif style == NONE and blocking:
        system.append(f"warden: {reason} ({name} cannot be blocked)")
        context.insert(0, reason)
    if context:
        text = _cap("\n".join(context))
        if name in CONTEXT_EVENTS:
            specific["additionalContext"] = text
        else:
            system.append(text)
    if specific:
        out["hookSpecificOutput"] = {"hookEventName": name, **specific}
    if system:
        out["systemMessage"] = _cap("\n".join(system))
    if name in NO_JSON_EVENTS and not out:
        return Reply("", "", 0)
    return Reply(_dump(out), "", 0)


def _one_line(exc: BaseException) -> str:
    from warden.errors import PolicyError, WardenError

    if isinstance(exc, PolicyError) and exc.problems:
        first = str(exc.problems[0]).replace("\n", " ")
        more = len(exc.problems) - 1
        return first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
    if isinstance(exc, WardenError):
        text = str(exc)
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def error_reply(exc: BaseException | str, mode: str, inp: dict[str, Any] | None = None) -> Reply:
    """One line on stderr; on_error decides: deny -> exit 2, allow -> exit 0."""
    message = exc if isinstance(exc, str) else _one_line(exc)
    line = f"warden: {message}"
    if mode == "allow":
        note = f"{line} (on_error: allow, so this call was not checked)"
        return Reply(_dump({"systemMessage": _cap(note)}), note + "\n", 0)
    if (
        inp is not None
        and inp.get("hook_event_name") in STOP_EVENTS
        and inp.get("stop_hook_active") is True
    ):
        return Reply("{}\n", f"{line} (not blocking: stop_hook_active)\n", 0)
    return Reply("", f"{line} (on_error: deny)\n", 2)


def failed_side_effects(decision: Any) -> list[str]:
    """``then: run`` commands that could not start (or failed inside warden), one line each.
    A command that ran and exited non-zero, or one refused for a missing field, is not a
    failure of warden."""
    out = []
    for e in getattr(decision, "side_effects", None) or []:
        detail = str(e.get("detail", ""))
        if (
            e.get("kind") == "run"
            and not e.get("ok")
            and detail.startswith(("could not start", "internal error"))
        ):
            out.append(f"then: of {e.get('policy')}: {detail}")
    return out


def side_effect_failure_reply(
    decision: Any, inp: dict[str, Any], failed: list[str], mode: str
) -> Reply:
    """A side effect failed: ``on_error`` decides, never more lenient than the decision
    itself (deny: a deny stays a deny, anything else becomes one; allow: the decision stands,
    and the failure is said on stderr and as a systemMessage)."""
    message = "; ".join(failed)
    if mode == "deny" and verdict_of(decision, inp) != "deny":
        return error_reply(message, "deny", inp)
    reply = claude_reply(decision, inp)
    note = f"warden: {message} (on_error: {mode})"
    reply.stderr += note + "\n"
    if mode == "allow" and reply.code == 0:
        try:
            doc = json.loads(reply.stdout) if reply.stdout.strip() else {}
        except ValueError:
            doc = {}
        if isinstance(doc, dict):
            doc["systemMessage"] = _cap("\n".join(filter(None, [doc.get("systemMessage"), note])))
            reply.stdout = _dump(doc)
    return reply


def read_stdin() -> bytes:
    from warden.engine import MAX_INPUT_BYTES

    data: bytes = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    return data


def run_claude(
    raw: bytes | None = None,
    *,
    environ: Any = None,
    policies: list[str] | None = None,
    user: bool = True,
    server: str | None = None,
) -> Reply:
    """Answer one Claude Code hook event. Never raises; exit code 0 or 2 only."""
    start = os.getcwd()
    engine: Any = None
    inp: dict[str, Any] | None = None
    try:
        start = project_start(environ)
        if server:
            raw = read_stdin() if raw is None else raw
            remote = ask_server(server, raw, environ)
            if remote is not None:
                return remote
            # the server did not answer in time: decide locally (on_error if that fails)
        try:
            engine = load_engine(start, policies, user)
        except Exception as exc:
            return error_reply(exc, on_error_mode(None, start, environ), _peek(raw))
        if engine is None:  # no policy file anywhere: nothing to enforce
            if raw is None:
                read_stdin()
            return Reply("{}\n", "", 0)
        write_pointer(start, engine)
        from warden.engine import parse_input

        inp = parse_input(read_stdin() if raw is None else raw)
        decision = evaluate_hook(engine, inp, quiet_allow=True)
        failed = failed_side_effects(decision)
        if failed:
            return side_effect_failure_reply(
                decision, inp, failed, on_error_mode(engine, start, environ)
            )
        return claude_reply(decision, inp)
    except Exception as exc:
        if os.environ.get("WARDEN_DEBUG"):
            import traceback

            traceback.print_exc()
        try:
            mode = on_error_mode(engine, start, environ)
        except Exception:
            mode = "deny"
        return error_reply(exc, mode, inp)
    finally:
        if engine is not None:
            try:  # noqa: SIM105 - contextlib costs an import on the hot path
                engine.close()
            except Exception:
                pass


def ask_server(url: str, raw: bytes, environ: Any = None) -> Reply | None:
    """Forward the event to ``warden serve`` (``POST /v1/hook/claude``). None when the server
    does not answer within ``$WARDEN_SERVER_TIMEOUT`` seconds (default 2) or answers with
    something that is not a hook reply; the caller then evaluates locally."""
    import urllib.error
    import urllib.request

    environ = os.environ if environ is None else environ
    try:
        timeout = float(environ.get("WARDEN_SERVER_TIMEOUT") or 2.0)
    except ValueError:
        timeout = 2.0
    headers = {"Content-Type": "application/json"}
    token = environ.get("WARDEN_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/hook/claude", data=raw, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read()).get("reply")
        except (ValueError, AttributeError, OSError):
            return None
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("exit_code") not in (0, 2):
        return None
    stdout = body.get("stdout")
    if isinstance(stdout, dict):  # the server sends the hook's JSON reply parsed
        stdout = json.dumps(stdout, ensure_ascii=False) + "\n"
    return Reply(str(stdout or ""), str(body.get("stderr") or ""), int(body["exit_code"]))


def _peek(raw: bytes | None) -> dict[str, Any] | None:
    """The input, if it parses, for the stop_hook_active guard of an error reply."""
    if raw is None:
        try:
            raw = read_stdin()
        except Exception:
            return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


# -------------------------------------------------------------------------- generic


def run_generic(
    raw: bytes, *, environ: Any = None, policies: list[str] | None = None, user: bool = True
) -> tuple[dict[str, Any], int]:
    """The generic adapter: plain input object in, decision document out, exit code from
    the table (errors raise WardenError: 65 bad input, 78 bad policy)."""
    from warden.engine import parse_input
    from warden.errors import PolicyError, Problem

    start = project_start(environ)
    inp = parse_input(raw)
    engine = load_engine(start, policies, user)
    if engine is None:
        raise PolicyError(
            Problem(f"no policy files found (no warden.yaml or .warden/*.yaml at or above {start})")
        )
    try:
        decision = evaluate_hook(engine, inp)
    finally:
        engine.close()
    code: int = decision.exit_code
    return decision.to_dict(), code


# -------------------------------------------------------------------------- install


def hook_entry(command: str = HOOK_COMMAND, matcher: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if matcher is not None:
        entry["matcher"] = matcher
    entry["hooks"] = [{"type": "command", "command": command}]
    return entry


def snippet(
    command: str = HOOK_COMMAND, events: list[tuple[str, str | None]] | None = None
) -> dict[str, Any]:
    """The ``hooks`` block warden adds to a Claude Code settings file."""
    return {"hooks": {ev: [hook_entry(command, m)] for ev, m in (events or INSTALL_EVENTS)}}


def _is_warden(hook: Any, command: str) -> bool:
    if not isinstance(hook, dict):
        return False
    cmd = hook.get("command")
    if not isinstance(cmd, str):
        return False
    words = cmd.split()
    return cmd.strip() == command.strip() or (
        len(words) >= 3
        and os.path.basename(words[0]) == "warden"
        and words[1:3] == ["hook", "claude"]
    )


def merge_settings(
    settings: dict[str, Any],
    command: str = HOOK_COMMAND,
    events: list[tuple[str, str | None]] | None = None,
) -> list[str]:
    """Add the warden hook for each event unless one is already there. Returns the events
    it was added to; every other key and hook is kept as it was."""
    from warden.errors import InputError

    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise InputError('the settings file\'s "hooks" is not an object')
    added = []
    for event, matcher in events or INSTALL_EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise InputError(f"the settings file's hooks.{event} is not a list")
        present = any(
            isinstance(g, dict)
            and isinstance(g.get("hooks"), list)
            and any(_is_warden(h, command) for h in g["hooks"])
            for g in groups
        )
        if not present:
            groups.append(hook_entry(command, matcher))
            added.append(event)
    return added


def settings_path(user: bool, environ: Any = None) -> str:
    """``~/.claude/settings.json`` (``--user``), else the project's ``.claude/settings.json``
    (the project root as warden finds it, else the current directory)."""
    environ = os.environ if environ is None else environ
    if user:
        home = environ.get("HOME") or os.path.expanduser("~")
        return os.path.join(home, ".claude", "settings.json")
    from warden.load import find_project_root

    start = project_start(environ)
    root = find_project_root(start)
    return os.path.join(str(root) if root is not None else start, ".claude", "settings.json")


def install_claude(
    path: str, command: str = HOOK_COMMAND, events: list[tuple[str, str | None]] | None = None
) -> list[str]:
    """Merge the warden hooks into the settings file at ``path`` (atomically)."""
    from warden.errors import InputError

    settings: Any = {}
    mode = 0o644
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if text.strip():
        try:
            settings = json.loads(text)
        except ValueError as exc:
            raise InputError(
                f"{path}: not valid JSON ({exc}); fix it, or use --print and "
                "merge the snippet by hand"
            ) from None
        if not isinstance(settings, dict):
            raise InputError(f"{path}: expected a JSON object at the top")
    added = merge_settings(settings, command, events)
    if not added and text.strip():
        return added
    atomic_write(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n", mode)
    return added


def atomic_write(path: str, text: str, mode: int = 0o644) -> None:
    from warden.errors import WardenError
    from warden.execute import write_atomic

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_atomic(path, text.encode("utf-8"), mode)
    except OSError as exc:
        raise WardenError(f"{path}: cannot write: {exc.strerror}") from None


# ----------------------------------------------------------------------------- state


def state_engine(policies: list[str] | None = None, user: bool = True) -> Any:
    """The engine whose settings say where the state store is (for ``warden state``).

    Without any policy file, the default location under the project root / cwd is used.
    """
    from warden.engine import Engine, build_plan
    from warden.load import discover

    start = project_start()
    sources, root = discover(policies, cwd=start, user=user, start=start)
    if sources:
        loaded = build_plan(sources, root)
        return Engine(loaded.plan, loaded.root, loaded.warnings)
    return Engine({"hash": "", "settings": {}, "scopes": []}, root)


def summarize(data: dict[str, Any]) -> str:
    """A one-line summary of a recorded event's data (for ``warden state show``)."""
    if data.get("event") == "record":
        return f"{data.get('key')} = {json.dumps(data.get('value'), ensure_ascii=False)}"
    ti = data.get("tool_input")
    if isinstance(ti, dict):
        for key in (
            "command",
            "file_path",
            "notebook_path",
            "url",
            "pattern",
            "query",
            "description",
        ):
            value = ti.get(key)
            if isinstance(value, str) and value:
                return _short(value)
    for key in ("prompt", "error", "message"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return _short(value)
    return ""


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
