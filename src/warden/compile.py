"""Stage 3: normalise validated policy documents into an evaluation plan.

Everything that can be decided once is decided here: names resolved, field paths and
templates pre-split, durations in seconds, globs translated to RE2, rules indexed by event
and tool. Semantic problems (bad regex, bad template, unknown gate, duplicate name...) are
collected with their source positions rather than raised one at a time, so ``warden
validate`` reports every error at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from warden import durations, paths
from warden.errors import Problem
from warden.load import Document, FieldPath, Source

PLAN_FORMAT = 1
FIELD_OPS = (
    "equals",
    "in",
    "matches",
    "glob",
    "contains",
    "starts_with",
    "ends_with",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
)
HARD = ("deny", "ask", "allow")
STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}
DEFAULT_SETTINGS: dict[str, Any] = {
    "mode": "enforce",
    "default": "allow",
    "combine": "first-match",
    "on_error": "deny",
    "state": ".warden/state.db",
    "redact": [],
    "state_retention": "30d",
}


@dataclass
class Ctx:
    """Where we are while compiling one document, and the problems found so far."""

    doc: Document
    scope: str
    problems: list[Problem] = field(default_factory=list)

    def at(self, path: FieldPath) -> str:
        return self.doc.where(path)

    def problem(self, path: FieldPath, message: str, *, key: bool = False) -> None:
        line, col = self.doc.pos(path, key=key)
        self.problems.append(Problem(message, self.doc.file, line, col, _dotted(path)))


def _dotted(path: FieldPath) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# ------------------------------------------------------------------ small parsers


def regex_problem(pattern: str) -> str | None:
    """None if ``pattern`` is valid RE2, else the reason."""
    import re2

    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(pattern, options)
    except re2.error as exc:
        msg = exc.args[0] if exc.args else str(exc)
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        return f"invalid RE2 regex {pattern!r}: {msg}"
    except (TypeError, ValueError) as exc:  # pragma: no cover - defensive
        return f"invalid RE2 regex {pattern!r}: {exc}"
    return None


def glob_to_regex(pattern: str) -> str:
    """A gitignore-style glob as an RE2 full-match pattern (DESIGN §8).

    A pattern without ``/`` matches the basename; ``**/`` matches any leading directories
    (also of an absolute path); ``/**`` anything below; ``*`` and ``?`` stay within one
    segment; a trailing ``/`` also matches everything below the directory.
    """
    pat = pattern
    below = False
    if pat.endswith("/") and len(pat) > 1:
        pat, below = pat.rstrip("/"), True
    basename_only = "/" not in pat
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "[":
            end = pat.find("]", i + 2)
            if end < 0:
                out.append(re.escape("["))
                i += 1
                continue
            body = pat[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    core = "".join(out)
    if basename_only:
        core = "(?:.*/)?" + core
    if below:
        core += "(?:/.*)?"
    return core


def _template(value: str, ctx: Ctx, path: FieldPath) -> paths.TemplateParts | None:
    try:
        return paths.parse_template(value)
    except paths.TemplateSyntaxError as exc:
        ctx.problem(path, f"bad template {value!r}: {exc}")
        return None


def _templated(value: Any, ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    """A condition value: ``{"value": v}`` for a literal, ``{"tpl": parts}`` when templated."""
    if isinstance(value, str) and ("{" in value or "}" in value):
        parts = _template(value, ctx, path)
        if parts is None:
            return {"value": value}
        if paths.is_literal(parts):
            return {"value": "".join(p for p in parts if isinstance(p, str))}
        return {"tpl": parts}
    return {"value": value}


def _duration(value: Any, ctx: Ctx, path: FieldPath) -> float:
    try:
        return durations.parse_duration(value)
    except (ValueError, TypeError) as exc:
        ctx.problem(path, str(exc))
        return 0.0


def _argv(value: Any, ctx: Ctx, path: FieldPath) -> list[paths.TemplateParts]:
    if not isinstance(value, list) or not value:
        ctx.problem(path, 'expected an argv list of strings, e.g. ["make", "test"]')
        return []
    out: list[paths.TemplateParts] = []
    for i, arg in enumerate(value):
        if not isinstance(arg, str):
            ctx.problem((*path, i), "argv elements must be strings")
            continue
        out.append(_template(arg, ctx, (*path, i)) or [arg])
    return out


def _field_path(value: Any, ctx: Ctx, path: FieldPath) -> list[str]:
    if not isinstance(value, str):
        ctx.problem(path, "a field path must be a string")
        return ["?"]
    try:
        return paths.split_path(value)
    except paths.TemplateSyntaxError as exc:
        ctx.problem(path, str(exc))
        return ["?"]


def _names(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return None


def _tool_filter(value: Any, ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    if isinstance(value, dict):
        pattern = value.get("matches")
        if isinstance(pattern, str):
            bad = regex_problem(pattern)
            if bad:
                ctx.problem((*path, "matches"), bad)
            return {"tool_re": pattern}
        return {}
    return {"tools": _names(value)}


# ------------------------------------------------------------------- conditions


def compile_condition(cond: Any, ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    """One condition of DESIGN §3 in its plan form (``op`` + arguments + ``at``)."""
    at = ctx.at(path)
    if not isinstance(cond, dict) or not cond:
        ctx.problem(path, "a condition must be a non-empty mapping")
        return {"op": "false", "at": at}
    forms = [
        k
        for k in ("all", "any", "not", "field", "file", "env", "time", "state", "command")
        if k in cond
    ]
    if len(forms) != 1:
        what = ", ".join(forms) if forms else "none"
        ctx.problem(
            path,
            "a condition needs exactly one of all, any, not, field, file, env, "
            f"time, state, command (found: {what}); combine several with all: [...]",
        )
        return {"op": "false", "at": at}
    form = forms[0]
    if form in ("all", "any"):
        items = cond[form]
        if not isinstance(items, list) or not items:
            ctx.problem((*path, form), f"{form} needs a non-empty list of conditions")
            return {"op": "false", "at": at}
        args = [compile_condition(c, ctx, (*path, form, i)) for i, c in enumerate(items)]
        return {"op": form, "args": args, "at": at}
    if form == "not":
        return {"op": "not", "arg": compile_condition(cond["not"], ctx, (*path, "not")), "at": at}
    builder = _FORMS[form]
    out = builder(cond, ctx, path)
    out["at"] = at
    return out


def _field_condition(cond: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    ops = [k for k in FIELD_OPS if k in cond]
    if len(ops) != 1:
        found = ", ".join(ops) if ops else "none"
        ctx.problem(
            path,
            f"a field condition needs exactly one operator of {', '.join(FIELD_OPS)}"
            f" (found: {found})",
        )
        return {"op": "false"}
    op = ops[0]
    out: dict[str, Any] = {
        "op": "field",
        "field": cond["field"],
        "path": _field_path(cond["field"], ctx, (*path, "field")),
        "cmp": op,
    }
    if cond.get("ignore_case"):
        out["ic"] = True
    value = cond[op]
    vpath = (*path, op)
    if op == "matches":
        if not isinstance(value, str):
            ctx.problem(vpath, "matches takes one regex string (join alternatives with |)")
        else:
            bad = regex_problem(value)
            if bad:
                ctx.problem(vpath, bad)
        out["regex"] = value
    elif op == "glob":
        globs = [value] if isinstance(value, str) else value
        if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs):
            ctx.problem(vpath, "glob takes a pattern string or a list of them")
            globs = []
        out["glob"] = globs
        for i, g in enumerate(globs):
            if regex_problem(f"(?:{glob_to_regex(g)})\\z"):
                where = (*vpath, i) if isinstance(value, list) else vpath
                ctx.problem(where, f"invalid glob {g!r} (check its [...] classes)")
        out["regex"] = "|".join(f"(?:{glob_to_regex(g)})" for g in globs) or "(?!)"
    elif op == "exists":
        if not isinstance(value, bool):
            ctx.problem(vpath, "exists takes true or false")
        out["value"] = bool(value)
    elif op == "in":
        if not isinstance(value, list):
            ctx.problem(vpath, "in takes a list of values")
            value = []
        out["items"] = [_templated(v, ctx, (*vpath, i)) for i, v in enumerate(value)]
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            ctx.problem(vpath, f"{op} takes a number")
        out.update(_templated(value, ctx, vpath))
    elif op in ("starts_with", "ends_with"):
        if not isinstance(value, str):
            ctx.problem(vpath, f"{op} takes a string")
        out.update(_templated(value, ctx, vpath))
    else:
        out.update(_templated(value, ctx, vpath))
    return out


def _at_most_one(
    spec: dict[str, Any], keys: tuple[str, ...], ctx: Ctx, p: FieldPath, what: str
) -> None:
    if sum(k in spec for k in keys) > 1:
        ctx.problem(p, f"{what} takes one of {', '.join(keys)}")


def _file_condition(cond: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    spec = cond["file"]
    p = (*path, "file")
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
        ctx.problem(p, "file needs a path")
        return {"op": "false"}
    _at_most_one(spec, ("exists", "modified_within", "larger_than"), ctx, p, "file")
    out: dict[str, Any] = {"op": "file", "path": _template(spec["path"], ctx, (*p, "path")) or []}
    if "modified_within" in spec:
        out["modified_within"] = _duration(spec["modified_within"], ctx, (*p, "modified_within"))
    elif "larger_than" in spec:
        try:
            out["larger_than"] = durations.parse_size(spec["larger_than"])
        except ValueError as exc:
            ctx.problem((*p, "larger_than"), str(exc))
    else:
        out["exists"] = bool(spec.get("exists", True))
    return out


def _env_condition(cond: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    spec = cond["env"]
    p = (*path, "env")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        ctx.problem(p, "env needs a name")
        return {"op": "false"}
    _at_most_one(spec, ("equals", "matches", "exists"), ctx, p, "env")
    out: dict[str, Any] = {"op": "env", "name": spec["name"]}
    if "equals" in spec:
        equals = _templated(str(spec["equals"]), ctx, (*p, "equals"))
        if "tpl" in equals:
            out["equals_tpl"] = equals["tpl"]
        else:
            out["equals"] = equals["value"]
    elif "matches" in spec:
        bad = regex_problem(str(spec["matches"]))
        if bad:
            ctx.problem((*p, "matches"), bad)
        out["matches"] = str(spec["matches"])
    else:
        out["exists"] = bool(spec.get("exists", True))
    return out


def compile_clock(spec: dict[str, Any], ctx: Ctx, p: FieldPath) -> dict[str, Any]:
    """``days``/``after``/``before``/``tz`` (time conditions and time_window gates)."""
    out: dict[str, Any] = {"tz": spec.get("tz", "UTC")}
    try:
        durations.check_timezone(str(out["tz"]))
    except ValueError as exc:
        ctx.problem((*p, "tz"), str(exc))
    if "days" in spec:
        days = spec["days"] if isinstance(spec["days"], list) else [spec["days"]]
        idx = []
        for i, d in enumerate(days):
            if isinstance(d, str) and d.lower()[:3] in durations.DAYS:
                idx.append(durations.DAYS.index(d.lower()[:3]))
            else:
                ctx.problem((*p, "days", i), f"unknown day {d!r} (use mon, tue, ... sun)")
        out["days"] = sorted(set(idx))
    for key in ("after", "before"):
        if key in spec:
            try:
                out[key] = durations.parse_clock(str(spec[key]))
            except ValueError as exc:
                ctx.problem((*p, key), str(exc))
    return out


def _time_condition(cond: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    spec = cond["time"]
    if not isinstance(spec, dict):
        ctx.problem((*path, "time"), "time takes a mapping of days/after/before/tz")
        return {"op": "false"}
    return {"op": "time", **compile_clock(spec, ctx, (*path, "time"))}


def _state_condition(cond: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    spec = cond["state"]
    p = (*path, "state")
    if not isinstance(spec, dict):
        ctx.problem(p, "state takes a mapping")
        return {"op": "false"}
    out: dict[str, Any] = {"op": "state", "events": _names(spec.get("event"))}
    if "tool" in spec:
        out.update(_tool_filter(spec["tool"], ctx, (*p, "tool")))
    if "where" in spec:
        out["where"] = compile_condition(spec["where"], ctx, (*p, "where"))
    if "since" in spec:
        out["since"] = compile_condition(spec["since"], ctx, (*p, "since"))
    if "within" in spec:
        out["within"] = _duration(spec["within"], ctx, (*p, "within"))
    count = spec.get("count", {"gte": 1})
    if isinstance(count, int) and not isinstance(count, bool):
        count = {"gte": count}
    if not isinstance(count, dict) or not count:
        ctx.problem((*p, "count"), "count takes e.g. {gte: 3}")
        count = {"gte": 1}
    out["count"] = count
    return out


def _command_condition(cond: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    spec = cond["command"]
    p = (*path, "command")
    if not isinstance(spec, dict):
        ctx.problem(p, "command takes a mapping with run")
        return {"op": "false"}
    return {
        "op": "command",
        "run": _argv(spec.get("run"), ctx, (*p, "run")),
        "exit_code": spec.get("exit_code", 0),
        "timeout": _duration(spec.get("timeout", "5s"), ctx, (*p, "timeout")),
    }


_FORMS = {
    "field": _field_condition,
    "file": _file_condition,
    "env": _env_condition,
    "time": _time_condition,
    "state": _state_condition,
    "command": _command_condition,
}


# ------------------------------------------------------------------------- rules


def compile_rule(rule: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    name = rule.get("name", "?")
    effect = rule.get("effect", "deny")
    out: dict[str, Any] = {
        "name": name,
        "effect": effect,
        "scope": ctx.scope,
        "source": ctx.at(path),
        "events": _names(rule.get("event")),
    }
    if rule.get("description"):
        out["description"] = rule["description"]
    if "tool" in rule:
        out.update(_tool_filter(rule["tool"], ctx, (*path, "tool")))
    if "when" in rule:
        out["when"] = compile_condition(rule["when"], ctx, (*path, "when"))
    message = rule.get("message")
    if not isinstance(message, str):
        message = f"{effect} by {name}"
    out["message"] = _template(message, ctx, (*path, "message")) or [message]
    out["then"] = [
        _side_effect(item, ctx, (*path, "then", i)) for i, item in enumerate(rule.get("then") or [])
    ]
    return out


def _side_effect(item: Any, ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    if not isinstance(item, dict):
        ctx.problem(path, "a then: item is a mapping with run or record")
        return {"kind": "none"}
    if "run" in item and "record" not in item:
        return {
            "kind": "run",
            "run": _argv(item["run"], ctx, (*path, "run")),
            "timeout": _duration(item.get("timeout", "5s"), ctx, (*path, "timeout")),
            "background": bool(item.get("background", False)),
        }
    if "record" in item and "run" not in item:
        rec = item["record"]
        if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
            ctx.problem((*path, "record"), "record needs a key")
            return {"kind": "none"}
        value = rec.get("value")
        compiled = _templated(value, ctx, (*path, "record", "value"))
        return {"kind": "record", "key": rec["key"], **compiled}
    ctx.problem(path, "a then: item has exactly one of run or record")
    return {"kind": "none"}


# -------------------------------------------------------------- actions and gates

GATE_KINDS = (
    "kill_switch",
    "approval",
    "rate_limit",
    "dry_run",
    "idempotent",
    "time_window",
    "command",
    "condition",
)
STEP_KINDS = ("run", "write_file", "delete_file", "mkdir")


def compile_gate(name: str, gate: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    kind = gate.get("kind")
    out: dict[str, Any] = {"name": name, "kind": kind, "source": ctx.at(path)}
    if kind not in GATE_KINDS:
        ctx.problem((*path, "kind"), f"unknown gate kind {kind!r}")
        return out
    if "description" in gate:
        out["description"] = gate["description"]
    if "when" in gate:
        out["when"] = compile_condition(gate["when"], ctx, (*path, "when"))
    elif kind == "condition":
        ctx.problem(path, "a condition gate needs when: (the condition that must hold)")
    if kind == "approval":
        out["approvals"] = int(gate.get("approvals", 1))
        if "approvers" in gate:
            out["approvers"] = list(gate["approvers"])
    elif kind == "rate_limit":
        key = gate.get("key", "{action}")
        out["key"] = _template(str(key), ctx, (*path, "key")) or [str(key)]
        if "max" not in gate or "per" not in gate:
            ctx.problem(path, "a rate_limit gate needs max and per")
        out["max"] = int(gate.get("max", 1))
        out["per"] = _duration(gate.get("per", "1d"), ctx, (*path, "per"))
    elif kind == "dry_run":
        out["max_age"] = _duration(gate.get("max_age", "1h"), ctx, (*path, "max_age"))
    elif kind == "idempotent":
        if "window" in gate:
            out["window"] = _duration(gate["window"], ctx, (*path, "window"))
        if "key" in gate:
            out["key"] = _template(str(gate["key"]), ctx, (*path, "key")) or [str(gate["key"])]
    elif kind == "time_window":
        out.update(compile_clock(gate, ctx, path))
    elif kind == "command":
        out["run"] = _argv(gate.get("run"), ctx, (*path, "run"))
        out["timeout"] = _duration(gate.get("timeout", "10m"), ctx, (*path, "timeout"))
        out["exit_code"] = gate.get("exit_code", 0)
    return out


def compile_action(name: str, action: dict[str, Any], ctx: Ctx, path: FieldPath) -> dict[str, Any]:
    steps = action.get("steps") or []
    out: dict[str, Any] = {
        "name": name,
        "description": action.get("description", ""),
        "risk": action.get("risk", "medium"),
        "params": action.get("params") or {"type": "object"},
        "gates": list(action.get("gates") or []),
        "on_failure": action.get("on_failure", "rollback"),
        "allowed_roots": list(action.get("allowed_roots") or []),
        "source": ctx.at(path),
        "steps": [],
    }
    if "idempotency_key" in action:
        key = str(action["idempotency_key"])
        out["idempotency_key"] = _template(key, ctx, (*path, "idempotency_key")) or [key]
    _check_params_schema(out["params"], ctx, (*path, "params"))
    seen: set[str] = set()
    for i, step in enumerate(steps):
        sp = (*path, "steps", i)
        if not isinstance(step, dict):
            ctx.problem(sp, "a step is a mapping")
            continue
        sname = str(step.get("name", f"step-{i + 1}"))
        if sname in seen:
            ctx.problem((*sp, "name"), f"duplicate step name {sname!r} in action {name!r}")
        seen.add(sname)
        out["steps"].append(compile_step(sname, step, ctx, sp))
    return out


def _check_params_schema(schema: Any, ctx: Ctx, path: FieldPath) -> None:
    try:
        from jsonschema import Draft7Validator
        from jsonschema.exceptions import SchemaError
    except ImportError:  # pragma: no cover - jsonschema is a dependency
        return
    try:
        Draft7Validator.check_schema(schema)
    except SchemaError as exc:
        ctx.problem(path, f"params is not a valid JSON Schema: {exc.message}")


def compile_step(name: str, step: dict[str, Any], ctx: Ctx, sp: FieldPath) -> dict[str, Any]:
    kinds = [k for k in STEP_KINDS if k in step]
    if len(kinds) != 1:
        ctx.problem(
            sp,
            "a step needs exactly one of run, write_file, delete_file, mkdir"
            f" (found: {', '.join(kinds) or 'none'})",
        )
        return {"name": name, "kind": "none"}
    kind = kinds[0]
    out: dict[str, Any] = {"name": name, "kind": kind}
    if "description" in step:
        out["description"] = step["description"]
    if kind == "run":
        out["run"] = _argv(step["run"], ctx, (*sp, "run"))
    else:
        spec = step[kind]
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
            ctx.problem((*sp, kind), f"{kind} needs a path")
            spec = {"path": "?"}
        out["path"] = _template(spec["path"], ctx, (*sp, kind, "path")) or [spec["path"]]
        if kind == "write_file":
            content = spec.get("content", "")
            out["content"] = _template(str(content), ctx, (*sp, kind, "content")) or [content]
            if "mode" in spec:
                mode = spec["mode"]
                out["mode"] = int(mode, 8) if isinstance(mode, str) else int(mode)
    for key in ("precondition", "verify", "dry_run", "rollback"):
        if key in step:
            out[key] = _argv(step[key], ctx, (*sp, key))
    out["timeout"] = _duration(step.get("timeout", "10m"), ctx, (*sp, "timeout"))
    out["env"] = list(step.get("env") or [])
    if "cwd" in step:
        out["cwd"] = _template(str(step["cwd"]), ctx, (*sp, "cwd")) or [str(step["cwd"])]
    return out


# ------------------------------------------------------------------------ index


def build_index(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Rule numbers by event and tool, so evaluation skips rules that cannot apply.

    ``{"events": {ev: bucket}, "any": bucket}`` where a bucket is
    ``{"tools": {tool: [i...]}, "any": [i...]}``; rules with a tool regex sit in "any"
    and are filtered at run time.
    """
    index: dict[str, Any] = {"events": {}, "any": {"tools": {}, "any": []}}
    for i, rule in enumerate(rules):
        events = rule.get("events")
        buckets = (
            [index["events"].setdefault(e, {"tools": {}, "any": []}) for e in events]
            if events
            else [index["any"]]
        )
        tools = rule.get("tools")
        for bucket in buckets:
            if tools:
                for t in tools:
                    bucket["tools"].setdefault(t, []).append(i)
            else:
                bucket["any"].append(i)
    return index


# ------------------------------------------------------------------------- plan


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_hash(plan: dict[str, Any]) -> str:
    body = {k: v for k, v in plan.items() if k != "hash"}
    return "sha256:" + hashlib.sha256(canonical(body).encode()).hexdigest()


def _strip_sources(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_sources(v) for k, v in obj.items() if k not in ("source", "at")}
    if isinstance(obj, list):
        return [_strip_sources(v) for v in obj]
    return obj


def action_hash(action: dict[str, Any], gates: dict[str, Any], rules: list[Any]) -> str:
    """DESIGN §8: what the action does, its gates and the event:action rules, no positions."""
    body = {
        "action": action,
        "gates": {g: gates.get(g) for g in action.get("gates", [])},
        "rules": [r for r in rules if r.get("events") and "action" in r["events"]],
    }
    return "sha256:" + hashlib.sha256(canonical(_strip_sources(body)).encode()).hexdigest()


def merge_settings(per_scope: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Effective settings: where both scopes set one, the stricter wins (DESIGN §8)."""
    project, user = per_scope.get("project", {}), per_scope.get("user", {})
    both = [s for s in (project, user) if s]
    merged = dict(DEFAULT_SETTINGS)
    modes = [s["mode"] for s in both if "mode" in s]
    if modes:
        merged["mode"] = "enforce" if "enforce" in modes else "observe"
    defaults = [s["default"] for s in both if "default" in s]
    if defaults:
        merged["default"] = max(defaults, key=lambda d: STRICTNESS.get(d, 0))
    errs = [s["on_error"] for s in both if "on_error" in s]
    if errs:
        merged["on_error"] = "deny" if "deny" in errs else "allow"
    for key in ("state", "state_retention"):
        for s in both:
            if key in s:
                merged[key] = s[key]
                break
    merged["redact"] = sorted({p for s in both for p in s.get("redact", [])})
    merged.pop("combine", None)
    return merged


def compile_documents(
    docs: list[tuple[Source, Document]], *, version: str
) -> tuple[dict[str, Any], list[Problem]]:
    """Validated documents -> (plan, problems). The plan is meaningful only without problems."""
    problems: list[Problem] = []
    scopes: dict[str, dict[str, Any]] = {}
    settings_by_scope: dict[str, dict[str, Any]] = {}
    actions: dict[str, Any] = {}
    gates: dict[str, Any] = {}
    names: dict[tuple[str, str, str], str] = {}
    action_refs: list[tuple[Ctx, FieldPath, str]] = []
    sources = []
    for src, doc in docs:
        ctx = Ctx(doc, src.scope, problems)
        data = doc.data if isinstance(doc.data, dict) else {}
        sources.append({"path": src.display, "scope": src.scope, "sha256": _sha(src.path)})
        scope = scopes.setdefault(src.scope, {"name": src.scope, "rules": []})
        if isinstance(data.get("settings"), dict):
            _merge_scope_settings(
                settings_by_scope.setdefault(src.scope, {}), data["settings"], ctx
            )
        for i, rule in enumerate(data.get("policies") or []):
            path: FieldPath = ("policies", i)
            if not isinstance(rule, dict):
                continue
            _unique(
                names, ("rule", src.scope, str(rule.get("name"))), ctx, (*path, "name"), "policy"
            )
            scope["rules"].append(compile_rule(rule, ctx, path))
        for gname, gate in (data.get("gates") or {}).items():
            if isinstance(gate, dict):
                _unique(names, ("gate", src.scope, gname), ctx, ("gates", gname), "gate")
                gates.setdefault(gname, compile_gate(gname, gate, ctx, ("gates", gname)))
        for aname, action in (data.get("actions") or {}).items():
            if isinstance(action, dict):
                _unique(names, ("action", src.scope, aname), ctx, ("actions", aname), "action")
                actions.setdefault(aname, compile_action(aname, action, ctx, ("actions", aname)))
                for gi, gref in enumerate(action.get("gates") or []):
                    action_refs.append((ctx, ("actions", aname, "gates", gi), str(gref)))
    for ctx, path, gref in action_refs:
        if gref not in gates:
            ctx.problem(path, f"unknown gate {gref!r}" + _hint(gref, list(gates)))
    scope_list = []
    for name in ("project", "user"):
        if name in scopes:
            sc = scopes[name]
            own = settings_by_scope.get(name, {})
            sc["combine"] = own.get("combine", "first-match")
            sc["default"] = own.get("default")
            sc["index"] = build_index(sc["rules"])
            scope_list.append(sc)
    all_rules = [r for sc in scope_list for r in sc["rules"]]
    for action in actions.values():
        action["hash"] = action_hash(action, gates, all_rules)
    plan: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "warden_version": version,
        "sources": sources,
        "settings": merge_settings(settings_by_scope),
        "scopes": scope_list,
        "actions": dict(sorted(actions.items())),
        "gates": dict(sorted(gates.items())),
    }
    plan["hash"] = plan_hash(plan)
    return plan, problems


def _merge_scope_settings(target: dict[str, Any], settings: dict[str, Any], ctx: Ctx) -> None:
    for key, value in settings.items():
        if key in target and target[key] != value and key != "redact":
            ctx.problem(
                ("settings", key),
                f"settings.{key} is set twice in this scope ({target[key]!r} and {value!r})",
                key=True,
            )
        if key == "state_retention":
            _duration(value, ctx, ("settings", key))
        if key == "redact":
            target[key] = [*target.get(key, []), *value]
        else:
            target[key] = value


def _unique(
    names: dict[tuple[str, str, str], str],
    key: tuple[str, str, str],
    ctx: Ctx,
    path: FieldPath,
    what: str,
) -> None:
    if key in names:
        ctx.problem(path, f"duplicate {what} name {key[2]!r} (first defined at {names[key]})")
    else:
        names[key] = ctx.at(path)


def _hint(name: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _sha(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return ""
