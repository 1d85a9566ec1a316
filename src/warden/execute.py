"""The guarded executor: prepared steps, the journal, rollback, recovery (DESIGN §6, §8).

Everything a run will do is rendered and checked by ``prepare`` *before* any side effect: argv
elements, file paths, file contents and working directories are filled from the action input
in strict mode (a missing or empty field raises ``InputError``, exit 65), and every file path
must stay inside the project root or one of the action's ``allowed_roots``.

``Executor`` then runs the steps of one journalled execution. Each step's row is written
*before* it acts (with what is needed to undo it: the backup of a file it overwrites or
deletes, the directories it creates, the rendered rollback argv of a ``run`` step), so a run
killed at any point can be rolled back later by ``recover`` from the journal alone. Rollback
(``rollback_steps``) works only from journalled rows, never from the current plan, so editing
the policy after a run does not change how it is undone.

Child processes run in their own session (``start_new_session=True``): a timeout, a signal to
warden, or ``warden recover`` kills the whole process group (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden import paths
from warden.errors import InputError
from warden.paths import MISSING

BASE_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR")
TAIL_BYTES = 4096
KILL_GRACE_S = 3.0
BACKUPS = Path(".warden") / "backups"
FILE_KINDS = ("write_file", "delete_file", "mkdir")
# statuses of an execution that hold its idempotency key / are still in progress
LIVE = ("started", "rolling_back")
OUTCOME_EXIT = {"succeeded": 0, "aborted": 2, "rolled_back": 5, "partial": 6, "interrupted": 6}


class Interrupted(Exception):
    """warden received SIGINT/SIGTERM/SIGHUP while a step ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


# --------------------------------------------------------------------------- processes


def proc_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux /proc), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2 :].split()
    return rest[0] if rest else None


def pid_alive(pid: int | None, start: str | None = None) -> bool:
    """Whether the process that had ``pid`` (and kernel start time ``start``) still runs."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _proc_state(pid) == "Z":
        return False
    if start is not None:
        now_start = proc_start(pid)
        if now_start is not None and now_start != start:
            return False
    return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(
    pgid: int, *, grace: float = KILL_GRACE_S, reap: Callable[[], object] | None = None
) -> bool:
    """SIGTERM the process group, wait up to ``grace`` seconds, then SIGKILL what is left.

    ``reap`` (e.g. ``Popen.poll``) is called while waiting so an exited leader does not keep
    the group alive as a zombie. Returns whether a signal was delivered at all.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not group_alive(pgid):
            return True
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    if reap is not None:
        reap()
    return True


def kill_recorded_group(child: dict[str, Any]) -> bool:
    """Kill the process group a journalled child left behind (``warden recover``).

    The child was a session leader, so its pgid is its pid. If the leader still exists with a
    different start time, the pid was reused and nothing is killed; if it is gone, the group id
    cannot have been reused while members remain, so the remaining members are killed.
    """
    pgid = child.get("pgid")
    if not isinstance(pgid, int) or pgid <= 1:
        return False
    start = child.get("start")
    now_start = proc_start(pgid)
    if now_start is not None and start is not None and now_start != start:
        return False
    if not group_alive(pgid):
        return False
    return kill_group(pgid)


def step_env(
    names: Sequence[str], environ: dict[str, str] | os._Environ[str] | None = None
) -> dict[str, str]:
    """PATH, HOME, LANG, LC_*, TZ, TMPDIR and the step's ``env`` names, from warden's env."""
    source = os.environ if environ is None else environ
    extra = set(names)
    return {k: v for k, v in source.items() if k in BASE_ENV or k.startswith("LC_") or k in extra}


@dataclass
class ProcResult:
    """One finished (or killed, or unstartable) child process."""

    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    error: str = ""
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.error

    def why(self, what: str, timeout: float) -> str:
        if self.error:
            return f"{what}: {self.error}"
        if self.timed_out:
            return f"{what} timed out after {_secs(timeout)} (process group killed)"
        if self.exit_code is not None and self.exit_code < 0:
            return f"{what} killed by signal {-self.exit_code}"
        return f"{what} exited {self.exit_code}"


def _tail(fh: Any) -> str:
    fh.flush()
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - TAIL_BYTES))
    data: bytes = fh.read()
    return data.decode("utf-8", "replace")


_interruptible = threading.local()


def run_process(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: str,
    timeout: float,
    on_start: Callable[[int], None] | None = None,
    interruptible: bool = True,
) -> ProcResult:
    """Run argv (never a shell) in its own session; kill its process group on timeout.

    stdout/stderr go to temporary files (a daemonised grandchild holding a pipe open cannot
    hang warden); the last 4 KiB of each are kept. ``Interrupted`` raised by warden's signal
    handler while waiting kills the group and propagates.
    """
    t0 = time.perf_counter()
    if not os.path.isdir(cwd):
        return ProcResult(
            None, error=f"working directory {cwd} does not exist", duration_ms=_ms(t0)
        )
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv
            reason = getattr(exc, "strerror", None) or str(exc)
            return ProcResult(
                None, error=f"cannot start {argv[0]!r}: {reason}", duration_ms=_ms(t0)
            )
        timed_out = False
        try:
            if on_start is not None:
                on_start(proc.pid)
            _interruptible.on = interruptible
            try:
                proc.wait(timeout=timeout if timeout > 0 else None)
            finally:
                _interruptible.on = False
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc.pid, reap=proc.poll)
            proc.wait()
        except BaseException:
            kill_group(proc.pid, reap=proc.poll)
            proc.wait()
            raise
        return ProcResult(proc.returncode, _tail(out), _tail(err), timed_out, "", _ms(t0))


@contextlib.contextmanager
def signals_interrupt() -> Iterator[list[int]]:
    """While active, SIGINT/SIGTERM/SIGHUP raise ``Interrupted`` inside a waiting child (and
    are remembered otherwise); the yielded list collects the signals received."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handler(signum: int, frame: Any) -> None:
        got.append(signum)
        if getattr(_interruptible, "on", False):
            raise Interrupted(signum)

    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ---------------------------------------------------------------------------- prepare


@dataclass
class Prepared:
    """One step with every template rendered and every path checked."""

    idx: int
    name: str
    kind: str
    timeout: float
    env_names: list[str]
    cwd: str
    argv: list[str] | None = None
    path: str | None = None
    display: str | None = None
    content: str | None = None
    mode: int | None = None
    precondition: list[str] | None = None
    verify: list[str] | None = None
    rollback: list[str] | None = None
    dry_run: list[str] | None = None
    description: str = ""

    def describe(self) -> str:
        if self.kind == "run":
            return "run: " + shlex.join(self.argv or [])
        if self.kind == "write_file":
            size = len((self.content or "").encode())
            mode = f", mode {self.mode:04o}" if self.mode is not None else ""
            return f"write {size} bytes to {self.display}{mode}"
        if self.kind == "delete_file":
            return f"delete {self.display} (backed up first)"
        return f"create directory {self.display}"


class Prepare:
    """Renders the steps of one action for one input; collects every problem."""

    def __init__(self, action: dict[str, Any], data: dict[str, Any], root: Path) -> None:
        self.action = action
        self.data = data
        self.root = Path(os.path.realpath(root))
        self.bases = [self.root] + [
            Path(os.path.realpath(self.root / os.path.expanduser(r)))
            for r in action.get("allowed_roots") or []
        ]
        self.problems: list[str] = []

    def text(self, parts: paths.TemplateParts, where: str) -> str | None:
        value = paths.render(parts, self.data, "strict")
        if value is MISSING:
            holes = [paths.join_path(p) for p in paths.template_paths(parts)]
            empty = [
                h for h in holes if paths.get(self.data, paths.split_path(h)) in (MISSING, None, "")
            ]
            what = ", ".join("{" + h + "}" for h in (empty or holes))
            self.problems.append(
                f"{where}: {what} is missing or empty (refusing to run with a hole in it)"
            )
            return None
        return paths.to_text(value)

    def argv(self, parts_list: list[paths.TemplateParts] | None, where: str) -> list[str] | None:
        if parts_list is None:
            return None
        out = [self.text(p, f"{where}[{i}]") for i, p in enumerate(parts_list)]
        for i, a in enumerate(out):
            if a is not None and "\0" in a:
                self.problems.append(
                    f"{where}[{i}]: contains a NUL byte (cannot be passed as an argument)"
                )
                out[i] = None
        if any(a is None for a in out):
            return None
        return [a for a in out if a is not None]

    def path(self, rendered: str, where: str, *, directory_ok: bool = True) -> str | None:
        if "\0" in rendered:
            self.problems.append(f"{where}: path contains a NUL byte")
            return None
        full = Path(rendered) if os.path.isabs(rendered) else self.root / rendered
        real = Path(os.path.realpath(full))
        if not any(real == b or b in real.parents for b in self.bases):
            hint = (
                " (add its directory to the action's allowed_roots)"
                if os.path.isabs(rendered)
                else ""
            )
            self.problems.append(
                f"{where}: path {rendered!r} leaves the project root ({real}){hint}"
            )
            return None
        own = self.root / ".warden"
        if (
            real == own / "backups"
            or own / "backups" in real.parents
            or (real.parent == own and real.name.startswith("state.db"))
        ):
            self.problems.append(f"{where}: path {rendered!r} is warden's own state")
            return None
        return str(real)

    def display(self, real: str) -> str:
        p = Path(real)
        return str(p.relative_to(self.root)) if self.root in p.parents else real

    def step(self, idx: int, spec: dict[str, Any]) -> Prepared | None:
        name = spec["name"]
        where = f"step {name!r}"
        cwd = str(self.root)
        if spec.get("cwd") is not None:
            rendered = self.text(spec["cwd"], f"{where}: cwd")
            checked = self.path(rendered, f"{where}: cwd") if rendered is not None else None
            cwd = checked or cwd
        step = Prepared(
            idx,
            name,
            spec["kind"],
            float(spec.get("timeout") or 600),
            list(spec.get("env") or []),
            cwd,
            description=str(spec.get("description", "")),
        )
        for key in ("precondition", "verify", "rollback", "dry_run"):
            setattr(step, key, self.argv(spec.get(key), f"{where}: {key}"))
        kind = spec["kind"]
        if kind == "run":
            step.argv = self.argv(spec["run"], f"{where}: run")
        elif kind in FILE_KINDS:
            rendered = self.text(spec["path"], f"{where}: {kind}.path")
            if rendered is not None:
                step.path = self.path(rendered, f"{where}: {kind}.path")
                if step.path is not None:
                    step.display = self.display(step.path)
            if kind == "write_file":
                step.content = self.text(spec.get("content") or [""], f"{where}: content")
                mode = spec.get("mode")
                step.mode = int(mode) if mode is not None else None
        else:
            self.problems.append(f"{where}: unknown step kind {kind!r}")
        return step


def prepare(action: dict[str, Any], data: dict[str, Any], root: Path) -> list[Prepared]:
    """Every step rendered and checked, or ``InputError`` (exit 65) listing every problem."""
    prep = Prepare(action, data, root)
    steps = [prep.step(i, s) for i, s in enumerate(action.get("steps") or [])]
    if prep.problems:
        raise InputError(
            f"action {action['name']!r}: cannot render its steps:\n  " + "\n  ".join(prep.problems)
        )
    return [s for s in steps if s is not None]


# --------------------------------------------------------------------------- snapshots


def snapshot(path: str) -> dict[str, Any] | None:
    """{size, sha256, mode} of a regular file, or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}
    if not stat.S_ISREG(st.st_mode):
        return {"type": "directory" if stat.S_ISDIR(st.st_mode) else "other"}
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"size": st.st_size, "sha256": h.hexdigest(), "mode": f"{stat.S_IMODE(st.st_mode):04o}"}


def _temp(parent: str, tmp: str | None) -> tuple[int, str]:
    """A new temporary file next to the target: ``tmp`` when given (a name the journal
    recorded, so that ``recover`` can remove it after a crash), else a random one."""
    if tmp is None:
        return tempfile.mkstemp(prefix=".warden-", dir=parent)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.open(tmp, flags, 0o600), tmp


def _copy_exact(src: str, dst: str, mode: int | None, tmp: str | None = None) -> None:
    """Copy bytes (and mtime) to ``dst`` atomically (temp file + rename), then set its mode."""
    parent = os.path.dirname(dst) or "."
    fd, tmp = _temp(parent, tmp)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(src, tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str, content: bytes, mode: int, tmp: str | None = None) -> None:
    """Replace ``path`` with ``content`` (written, fsynced, given ``mode``, renamed over it);
    a failure leaves the old file and no temporary file behind."""
    parent = os.path.dirname(path) or "."
    fd, tmp = _temp(parent, tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _missing_dirs(directory: str) -> list[str]:
    """The directories that ``makedirs(directory)`` would create, outermost first."""
    out: list[str] = []
    d = directory
    while d and not os.path.exists(d):
        out.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return list(reversed(out))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------- executor


@dataclass
class StepOutcome:
    ok: bool
    action_done: bool  # the step's action part completed (so its rollback makes sense)
    changed: bool  # it may have changed something


@dataclass
class Journal:
    """How the executor writes its journal: the store, the audit hook, the execution."""

    store: Any
    execution_id: str
    audit: Callable[[str, dict[str, Any]], None]  # (kind, record) inside a transaction
    backups: Path
    root: Path

    def step_started(self, row: dict[str, Any]) -> None:
        self.store.step_insert(row)

    def step_update(self, idx: int, **fields: Any) -> None:
        self.store.step_update(self.execution_id, idx, **fields)

    def step_finished(self, idx: int, record: dict[str, Any], **fields: Any) -> None:
        with self.store.transaction():
            self.store.step_update(self.execution_id, idx, **fields)
            self.audit("step", record)


@dataclass
class Executor:
    """Runs prepared steps of one journalled execution; rolls back on failure."""

    journal: Journal
    steps: list[Prepared]
    on_failure: str = "rollback"
    environ: dict[str, str] | None = None
    signals: list[int] = field(default_factory=list)
    failed_step: str | None = None
    failure: str = ""

    def run(self) -> str:
        """Run every step; returns the outcome: succeeded, rolled_back or partial."""
        outcomes: list[StepOutcome] = []
        with signals_interrupt() as got:
            self.signals = got
            for step in self.steps:
                if got:
                    self.failure = f"interrupted by signal {got[0]} before step {step.name!r}"
                    self.failed_step = step.name
                    break
                out = self.run_step(step)
                outcomes.append(out)
                if not out.ok:
                    self.failed_step = step.name
                    break
            else:
                return "succeeded"
            changed = any(o.changed for o in outcomes)
            if self.on_failure == "stop" and not got:
                return "partial" if changed else "rolled_back"
            if not changed:
                return "rolled_back"
            rows = self.journal.store.steps(self.journal.execution_id)
            ok = rollback_steps(self.journal, rows_to_undo(rows), environ=self.environ)
            return "rolled_back" if ok else "partial"

    # -- one step --------------------------------------------------------------------------

    def run_step(self, step: Prepared) -> StepOutcome:
        started = time.time()
        t0 = time.perf_counter()
        undo: dict[str, Any] = {"cwd": step.cwd, "env": step.env_names, "timeout": step.timeout}
        if step.kind == "run":
            undo["rollback"] = step.rollback
        self.journal.step_started(
            {
                "execution_id": self.journal.execution_id,
                "idx": step.idx,
                "name": step.name,
                "kind": step.kind,
                "status": "running",
                "started": started,
                "undo": undo,
            }
        )
        fields: dict[str, Any] = {}
        snapshots: list[dict[str, Any]] = []
        outcome = StepOutcome(False, False, False)
        detail = ""
        try:
            detail = self._step_body(step, undo, fields, snapshots, outcome)
        except Interrupted as exc:
            detail = f"{exc} (process group killed)"
        except OSError as exc:
            detail = f"{exc.strerror or exc}: {exc.filename or step.display or ''}".rstrip(": ")
        status = "ok" if outcome.ok else "failed"
        if not outcome.ok:
            self.failure = f"step {step.name!r}: {detail}"
        duration = round((time.perf_counter() - t0) * 1000, 3)
        fields.update(
            status=status,
            ended=time.time(),
            duration_ms=duration,
            detail=detail,
            snapshots=snapshots,
            undo=undo,
        )
        record = {
            "execution": self.journal.execution_id,
            "step": step.name,
            "idx": step.idx,
            "kind": step.kind,
            "status": status,
            "exit_code": fields.get("exit_code"),
            "duration_ms": duration,
            "snapshots": snapshots,
            "detail": detail,
        }
        self.journal.step_finished(step.idx, record, **fields)
        return outcome

    def _proc(self, step: Prepared, argv: list[str], fields: dict[str, Any]) -> ProcResult:
        def on_start(pid: int) -> None:
            self.journal.step_update(
                step.idx,
                child={
                    "pid": pid,
                    "pgid": pid,
                    "start": proc_start(pid),
                    "host": socket.gethostname(),
                },
            )

        result = run_process(
            argv,
            env=step_env(step.env_names, self.environ),
            cwd=step.cwd,
            timeout=step.timeout,
            on_start=on_start,
        )
        fields.update(exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr)
        return result

    def _step_body(
        self,
        step: Prepared,
        undo: dict[str, Any],
        fields: dict[str, Any],
        snapshots: list[dict[str, Any]],
        out: StepOutcome,
    ) -> str:
        if step.precondition:
            r = self._proc(step, step.precondition, fields)
            if not r.ok:
                return r.why("precondition", step.timeout)
        if step.kind == "run":
            assert step.argv is not None
            out.changed = True
            r = self._proc(step, step.argv, fields)
            if not r.ok:
                return r.why("command", step.timeout)
            detail = f"exit {r.exit_code}"
        else:
            detail = self._file_step(step, undo, snapshots, out)
        out.action_done = True
        if step.verify:
            r = self._proc(step, step.verify, fields)
            if not r.ok:
                return r.why("verify", step.timeout)
            detail += "; verified"
        out.ok = True
        return detail

    def _file_step(
        self,
        step: Prepared,
        undo: dict[str, Any],
        snapshots: list[dict[str, Any]],
        out: StepOutcome,
    ) -> str:
        assert step.path is not None
        path = step.path
        undo["path"] = path
        shown = step.display or path
        if step.kind == "mkdir":
            if os.path.isdir(path):
                return f"{shown} already exists"
            if os.path.exists(path):
                raise OSError(17, "exists and is not a directory", shown)
            created = _missing_dirs(path)
            undo["created_dirs"] = created
            self.journal.step_update(step.idx, undo=undo)
            out.changed = True
            for d in created:
                os.mkdir(d)
            return f"created {shown}"
        before = snapshot(path)
        snap: dict[str, Any] = {"path": shown, "before": before, "after": before}
        snapshots.append(snap)
        if before is not None and "sha256" not in before:
            raise OSError(21, "not a regular file", shown)
        existed = before is not None
        undo["existed"] = existed
        # The temporary file of the write (or of a restore), journalled before it exists: a
        # crash between writing it and renaming it over the target leaves a file that
        # `recover` knows to remove.
        undo["tmp"] = os.path.join(
            os.path.dirname(path), f".warden-{self.journal.execution_id}-{step.idx}.tmp"
        )
        if existed:
            backup = self.journal.backups / f"{step.idx}.bak"
            self.journal.backups.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.journal.backups, 0o700)
            _copy_exact(path, str(backup), 0o600)
            undo["backup"] = str(backup)
            undo["mode"] = stat.S_IMODE(os.stat(path).st_mode)
            undo["sha256"] = before["sha256"] if before else None
        if step.kind == "delete_file":
            if not existed:
                self.journal.step_update(step.idx, undo=undo)
                return f"{shown} did not exist (nothing to delete)"
            self.journal.step_update(step.idx, undo=undo)
            out.changed = True
            os.unlink(path)
            snap["after"] = None
            return f"deleted {shown} ({before['size'] if before else 0} bytes, backed up)"
        created = _missing_dirs(os.path.dirname(path))
        undo["created_dirs"] = created
        self.journal.step_update(step.idx, undo=undo)
        out.changed = True
        for d in created:
            os.mkdir(d)
        if step.mode is not None:
            mode = step.mode
        elif existed:
            mode = int(undo["mode"])
        else:
            mode = 0o666 & ~_umask()
        write_atomic(path, (step.content or "").encode("utf-8"), mode, undo["tmp"])
        snap["after"] = snapshot(path)
        made = f", created {', '.join(self._shown(d) for d in created)}" if created else ""
        return f"wrote {shown} ({len((step.content or '').encode())} bytes{made})"

    def _shown(self, d: str) -> str:
        root = self.journal.root
        p = Path(d)
        return str(p.relative_to(root)) if root in p.parents else d


# ---------------------------------------------------------------------------- rollback


def rows_to_undo(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The journalled steps a rollback must undo, last first.

    Completed steps (status ok), plus file steps in any state (their undo checks what is
    there), plus a run step whose command finished but whose verify failed. A run step whose
    command failed, timed out or was killed is not rolled back: its rollback command assumes it
    ran. Steps already rolled back are skipped.
    """
    chosen = []
    for row in rows:
        rb = row.get("rollback") or {}
        if rb.get("status") == "ok":
            continue
        undo = row.get("undo") or {}
        completed = row["status"] == "ok"
        file_change = row["kind"] in FILE_KINDS and bool(undo.get("path"))
        verify_failed = (
            row["kind"] == "run"
            and row["status"] == "failed"
            and str(row.get("detail", "")).startswith("verify")
        )
        if completed or file_change or verify_failed:
            chosen.append(row)
    return sorted(chosen, key=lambda r: -int(r["idx"]))


def rollback_steps(
    journal: Journal, rows: list[dict[str, Any]], *, environ: dict[str, str] | None = None
) -> bool:
    """Undo journalled steps in the order given; every one is attempted. True if all undone."""
    all_ok = True
    for row in rows:
        started = time.time()
        t0 = time.perf_counter()
        rb: dict[str, Any] = {"started": started}
        try:
            status, detail = _undo(row, rb, environ)
        except OSError as exc:
            status, detail = "failed", f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        rb.update(
            status=status,
            detail=detail,
            ended=time.time(),
            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
        )
        if status == "failed":
            all_ok = False
        record = {
            "execution": journal.execution_id,
            "step": row["name"],
            "idx": row["idx"],
            "kind": row["kind"],
            "status": status,
            "detail": detail,
        }
        with journal.store.transaction():
            journal.step_update(int(row["idx"]), rollback=rb)
            journal.audit("rollback.step", record)
    return all_ok


def _undo(
    row: dict[str, Any], rb: dict[str, Any], environ: dict[str, str] | None
) -> tuple[str, str]:
    undo = row.get("undo") or {}
    kind = row["kind"]
    if kind == "run":
        argv = undo.get("rollback")
        if not argv:
            return "skipped", "no rollback command (nothing to undo)"
        timeout = float(undo.get("timeout") or 600)
        r = run_process(
            argv,
            env=step_env(undo.get("env") or [], environ),
            cwd=undo.get("cwd") or ".",
            timeout=timeout,
            interruptible=False,
        )
        rb.update(exit_code=r.exit_code, stdout=r.stdout, stderr=r.stderr)
        return (
            ("ok", f"rollback command exited {r.exit_code}")
            if r.ok
            else ("failed", r.why("rollback command", timeout))
        )
    path = undo.get("path")
    notes: list[str] = []
    ok = True
    tmp = undo.get("tmp")
    if tmp:  # left by a write (or a restore) that was killed before its rename
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(tmp)
    if kind in ("write_file", "delete_file") and path and "existed" in undo:
        backup = undo.get("backup")
        if undo.get("existed") and backup:
            if not os.path.exists(backup):
                return "failed", f"backup {backup} is missing: cannot restore {path}"
            os.makedirs(os.path.dirname(path), exist_ok=True)
            _copy_exact(backup, path, int(undo.get("mode", 0o644)), tmp)
            after = snapshot(path)
            if undo.get("sha256") and (after or {}).get("sha256") != undo["sha256"]:
                return "failed", f"restored {path} but its sha256 differs from the original"
            notes.append(f"restored {path}")
        elif kind == "write_file" and not undo.get("existed"):
            try:
                os.unlink(path)
                notes.append(f"removed {path}")
            except FileNotFoundError:
                notes.append(f"{path} already absent")
    for d in reversed(undo.get("created_dirs") or []):
        try:
            os.rmdir(d)
            notes.append(f"removed directory {d}")
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                notes.append(
                    f"left directory {d} in place (it now holds files this step did not write)"
                )
            else:
                ok = False
                notes.append(f"cannot remove directory {d}: {exc.strerror}")
    if not notes:
        notes.append("nothing to undo")
    return ("ok" if ok else "failed"), "; ".join(notes)


# --------------------------------------------------------------------------- utilities


def effective_status(row: dict[str, Any]) -> str:
    """The status to report: a ``started`` (or ``rolling_back``) run whose warden process
    is gone is ``interrupted``."""
    status = str(row.get("status"))
    if status not in LIVE:
        return status
    detail = row.get("detail") or {}
    host = detail.get("host") if isinstance(detail, dict) else None
    if host and host != socket.gethostname():
        return status  # another machine's process: cannot tell
    return status if pid_alive(row.get("pid"), row.get("pid_start")) else "interrupted"


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"


def dry_run_step(step: Prepared, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a step's ``dry_run`` argv (or only describe the step). Changes nothing else."""
    out: dict[str, Any] = {
        "idx": step.idx,
        "name": step.name,
        "kind": step.kind,
        "would": step.describe(),
    }
    if step.dry_run:
        r = run_process(
            step.dry_run, env=step_env(step.env_names, environ), cwd=step.cwd, timeout=step.timeout
        )
        out.update(
            status="ok" if r.ok else "failed",
            exit_code=r.exit_code,
            stdout=r.stdout,
            stderr=r.stderr,
            duration_ms=r.duration_ms,
            detail=f"dry_run exited {r.exit_code}" if r.ok else r.why("dry_run", step.timeout),
        )
    else:
        out.update(status="described", detail="no dry_run command: " + step.describe())
        if step.kind in FILE_KINDS and step.path:
            out["snapshot"] = {"path": step.display, "now": snapshot(step.path)}
    return out
