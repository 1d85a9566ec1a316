"""``then:`` side effects of rules: ``run`` (a command) and ``record`` (a session state entry).

They run after the decision is fixed (DESIGN §4 step 3) and never change it: every outcome,
failures included, is reported as one entry of ``decision.side_effects``::

    {"policy", "kind", "ok", "detail", "exit_code", "stdout", "stderr", "background"}

``run`` items render their argv from the input (a missing or empty field refuses the
command, so ``rm -rf /{x}`` never becomes ``rm -rf /``), never go through a shell, see a
minimal environment (PATH, HOME, LANG, LC_*, TZ, TMPDIR) and run in the project root. A
foreground run is waited for (up to its timeout; the whole process group is killed after)
and the last 4 KB of its output are captured; ``background: true`` detaches the command in
its own session, with its output discarded, and returns at once (a tiny watchdog process
still enforces the timeout). In observe mode ``run`` items do not run; ``record`` items do.

``record`` items append ``{event: record, key, value}`` to the session of the input's
``session_id``, so later ``state:`` conditions can count them (``state: {event: record}``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from warden import paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TAIL_BYTES = 4096
SAFE_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR")

# The background watchdog: runs argv (already in its own session) and, after the timeout,
# kills the whole process group, itself included. Only the stdlib, started with -I -S.
_WATCHDOG = """\
import os, signal, subprocess, sys

limit = float(sys.argv[1])
try:
    subprocess.run(sys.argv[2:], timeout=limit if limit > 0 else None,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
except subprocess.TimeoutExpired:
    os.killpg(0, signal.SIGKILL)
except OSError:
    pass
"""


def run(engine: Any, rules: list[Any], env: Any, decision: Any) -> list[dict[str, Any]]:
    """Run the ``then:`` items of ``rules`` (matched and warn rules) in order.

    Never raises: a failure becomes an entry with ``ok: false``.
    """
    observe = not getattr(decision, "enforced", True)
    out: list[dict[str, Any]] = []
    for rule in rules:
        for item in rule.spec.get("then") or []:
            kind = item.get("kind")
            try:
                if kind == "run":
                    out.append(_run(engine, rule.name, item, env, observe))
                elif kind == "record":
                    out.append(_record(engine, rule.name, item, env))
            except Exception as exc:
                out.append(
                    {
                        "policy": rule.name,
                        "kind": str(kind),
                        "ok": False,
                        "detail": f"internal error: {type(exc).__name__}: {exc}",
                    }
                )
    return out


# ---------------------------------------------------------------------------------- run


def minimal_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a side-effect command sees: PATH, HOME, LANG, LC_*, TZ, TMPDIR."""
    env = {k: v for k, v in environ.items() if k in SAFE_ENV or k.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    return env


def render_argv(parts_list: list[Any], data: Any) -> tuple[list[str] | None, str]:
    """The argv of a ``run`` item, or (None, why) when a field is missing or empty."""
    argv: list[str] = []
    for i, parts in enumerate(parts_list):
        value = paths.render(parts, data, "strict")
        if value is paths.MISSING:
            missing = [paths.join_path(p) for p in paths.template_paths(parts)]
            names = ", ".join(missing) or "?"
            return None, f"not run: argv element {i} needs {names}, missing or empty in the input"
        argv.append(paths.to_text(value))
    return argv, ""


def _which(program: str, env: Mapping[str, str], cwd: str) -> str | None:
    if "/" in program:
        full = os.path.join(cwd, program)
        return full if os.access(full, os.X_OK) and not os.path.isdir(full) else None
    for d in env.get("PATH", os.defpath).split(os.pathsep):
        full = os.path.join(d or ".", program)
        if os.access(full, os.X_OK) and not os.path.isdir(full):
            return full
    return None


def _tail(fh: Any) -> str:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - TAIL_BYTES))
    data: bytes = fh.read()
    text = data.decode("utf-8", "replace")
    return ("..." + text) if size > TAIL_BYTES else text


def _run(engine: Any, policy: str, item: dict[str, Any], env: Any, observe: bool) -> dict[str, Any]:
    background = bool(item.get("background"))
    entry: dict[str, Any] = {
        "policy": policy,
        "kind": "run",
        "ok": False,
        "detail": "",
        "exit_code": None,
        "stdout": "",
        "stderr": "",
        "background": background,
    }
    argv, why = render_argv(item.get("run") or [], env.input)
    if argv is None or not argv:
        entry["detail"] = why or "not run: empty argv"
        return entry
    if observe:
        entry.update(ok=True, detail="not run: observe mode")
        return entry
    timeout = float(item.get("timeout") or 0)
    cwd = str(getattr(engine, "root", None) or env.root or ".")
    child_env = minimal_env(env.environ)
    if _which(argv[0], child_env, cwd) is None:
        entry["detail"] = f"could not start {argv[0]!r}: not found or not executable"
        return entry
    import subprocess

    if background:
        try:
            subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(timeout), *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=cwd,
                env=child_env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            entry["detail"] = f"could not start {argv[0]!r}: {exc.strerror}"
            return entry
        entry.update(ok=True, detail=f"started {argv[0]!r} in the background")
        return entry
    return _foreground(entry, argv, timeout, cwd, child_env)


def _foreground(
    entry: dict[str, Any], argv: list[str], timeout: float, cwd: str, child_env: dict[str, str]
) -> dict[str, Any]:
    import subprocess
    import tempfile

    from warden.runtime import kill_group

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=child_env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            entry["detail"] = f"could not start {argv[0]!r}: {exc.strerror}"
            return entry
        try:
            code = proc.wait(timeout=timeout if timeout > 0 else None)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            entry["detail"] = f"{argv[0]!r} timed out after {timeout:g}s (killed)"
            entry["stdout"], entry["stderr"] = _tail(out), _tail(err)
            return entry
        entry["stdout"], entry["stderr"] = _tail(out), _tail(err)
    entry["exit_code"] = code
    entry["ok"] = code == 0
    entry["detail"] = (
        f"{argv[0]!r} exited {code}" if code >= 0 else f"{argv[0]!r} killed by signal {-code}"
    )
    return entry


# ------------------------------------------------------------------------------- record


def _record_key(raw: str, data: Any) -> str | None:
    if "{" not in raw and "}" not in raw:
        return raw
    try:
        parts = paths.parse_template(raw)
    except paths.TemplateSyntaxError:
        return raw
    value = paths.render(parts, data, "strict")
    return None if value is paths.MISSING else paths.to_text(value)


def _record(engine: Any, policy: str, item: dict[str, Any], env: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"policy": policy, "kind": "record", "ok": False, "detail": ""}
    session = env.input.get("session_id")
    if not isinstance(session, str) or not session:
        entry["detail"] = "not recorded: the input has no session_id"
        return entry
    key = _record_key(str(item.get("key", "")), env.input)
    if not key:
        entry["detail"] = (
            f"not recorded: key {item.get('key')!r} needs a field missing or empty in the input"
        )
        return entry
    if "tpl" in item:
        value = paths.render(item["tpl"], env.input, "condition")
        if value is paths.MISSING:
            names = ", ".join(paths.join_path(p) for p in paths.template_paths(item["tpl"]))
            entry["detail"] = f"not recorded: value needs {names}, missing in the input"
            return entry
    else:
        value = item.get("value")
    store = engine.store()
    store.record_event(
        session, "record", None, {"event": "record", "key": key, "value": value}, ts=env.now
    )
    entry.update(ok=True, detail=f"recorded {key}")
    return entry
