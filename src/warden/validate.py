"""Stage 2: JSON Schema validation plus semantic checks, every problem at once.

Schema errors are turned into one readable line each, at the ``file:line:col`` of the key
or value at fault, with a "did you mean" for unknown keys and names. Semantic checks
(regexes, templates, durations, names, references) come from the compiler, which reports
instead of raising. Also warns when a rule reads a ``tool_input`` field its tool does not
have (DESIGN §8).
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

from warden.errors import Problem
from warden.load import Document, FieldPath

SCHEMAS = ("warden", "warden-test", "decision", "plan")

# Claude Code tool inputs (the fields rules commonly read), for the field-path warnings.
TOOL_INPUT_FIELDS: dict[str, set[str]] = {
    "Bash": {"command", "description", "timeout", "run_in_background"},
    "Read": {"file_path", "offset", "limit"},
    "Write": {"file_path", "content"},
    "Edit": {"file_path", "old_string", "new_string", "replace_all"},
    "MultiEdit": {"file_path", "edits"},
    "NotebookEdit": {"notebook_path", "new_source", "cell_id", "cell_type", "edit_mode"},
    "Glob": {"pattern", "path"},
    "Grep": {
        "pattern",
        "path",
        "glob",
        "type",
        "output_mode",
        "head_limit",
        "multiline",
        "-i",
        "-n",
        "-A",
        "-B",
        "-C",
    },
    "WebFetch": {"url", "prompt"},
    "WebSearch": {"query", "allowed_domains", "blocked_domains"},
    "Task": {"description", "prompt", "subagent_type"},
    "TodoWrite": {"todos"},
    "BashOutput": {"bash_id", "filter"},
    "KillShell": {"shell_id"},
    "ExitPlanMode": {"plan"},
}


@cache
def schema(name: str) -> dict[str, Any]:
    """A shipped schema by name: warden, warden-test, decision, plan."""
    text = resources.files("warden").joinpath("schema", f"{name}.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft7Validator

    return Draft7Validator(schema(name))


def schema_problems(doc: Document, name: str = "warden") -> list[Problem]:
    """Every schema error of one document, one readable Problem each."""
    problems = []
    for error in _validator(name).iter_errors(doc.data):
        problems.extend(_explain(error, doc))
    return _merge_misspelt_required(_dedupe(problems))


def _merge_misspelt_required(problems: list[Problem]) -> list[Problem]:
    """``efect: deny`` is one mistake, not two: drop "missing required key 'effect'" when
    the same object has "unknown key 'efect' (did you mean 'effect'?)"."""
    hinted = {
        (p.path.rpartition(".")[0] if "." in p.path else "", p.message.rsplit("'", 2)[-2])
        for p in problems
        if p.message.startswith("unknown key ") and "(did you mean '" in p.message
    }
    out = []
    for p in problems:
        if p.message.startswith("missing required key '"):
            missing = p.message.split("'")[1]
            if (p.path, missing) in hinted:
                continue
        out.append(p)
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        key = (p.line, p.column, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _at(doc: Document, path: FieldPath, message: str, *, key: bool = False) -> Problem:
    line, col = doc.pos(path, key=key)
    return Problem(message, doc.file, line, col, _dotted(path))


def _dotted(path: FieldPath) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        target: Any = root
        for part in ref.lstrip("#/").split("/"):
            if part:
                target = target[part]
        node = target
    return node


def _allowed_keys(error: Any) -> list[str]:
    sub = error.schema
    keys = set(sub.get("properties", {}))
    names = sub.get("propertyNames", {})
    if isinstance(names, dict) and "enum" in names:
        keys |= set(names["enum"])
    return sorted(keys)


def _hint(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _consts(options: Any, root: dict[str, Any]) -> list[Any] | None:
    if not isinstance(options, list):
        return None
    values = []
    for opt in options:
        opt = _resolve(opt, root)
        if not isinstance(opt, dict) or "const" not in opt:
            return None
        values.append(opt["const"])
    return values


def _explain(error: Any, doc: Document) -> list[Problem]:
    path: FieldPath = tuple(error.absolute_path)
    v = error.validator
    root = _root_schema(error)
    if v == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed]
        return [
            _at(doc, (*path, k), f"unknown key {k!r}{_hint(str(k), allowed)}", key=True)
            for k in extras
        ]
    if v == "propertyNames":
        bad = error.instance if isinstance(error.instance, str) else None
        parent = path
        if bad is None and isinstance(error.instance, dict):
            return []
        return [_at(doc, (*parent, bad) if bad else parent, _name_message(error), key=True)]
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        # At the key that holds the object (`deploy:`), or at a list item's first line.
        keyed = bool(path) and isinstance(path[-1], str)
        return [_at(doc, path, f"missing required key {missing!r}", key=keyed)]
    if v in ("oneOf", "anyOf", "enum", "const"):
        options = error.validator_value if v != "enum" else None
        consts = _consts(options, root) if v != "enum" else list(error.validator_value)
        if v == "const":
            consts = [error.validator_value]
        if consts is not None:
            shown = ", ".join(json.dumps(c) for c in consts)
            got = (
                json.dumps(error.instance)
                if _scalarish(error.instance)
                else _type_name(error.instance)
            )
            hint = (
                _hint(str(error.instance), [str(c) for c in consts])
                if isinstance(error.instance, str)
                else ""
            )
            return [_at(doc, path, f"{got} is not allowed here; expected one of: {shown}{hint}")]
        if error.context:
            from jsonschema.exceptions import best_match

            best = best_match(error.context)
            if best is not None:
                return _explain(best, doc)
    if v == "type":
        want = error.validator_value
        want_text = " or ".join(want) if isinstance(want, list) else want
        return [_at(doc, path, f"expected {want_text}, got {_type_name(error.instance)}")]
    if v == "pattern":
        friendly = _PATTERN_HINTS.get(error.validator_value)
        if friendly is not None:
            return [_at(doc, path, friendly.format(json.dumps(error.instance)))]
        return [
            _at(
                doc,
                path,
                f"{json.dumps(error.instance)} does not match the required "
                f"pattern {error.validator_value}",
            )
        ]
    if v == "dependencies":
        return [_at(doc, path, error.message.replace("is a dependency of", "is required by"))]
    if v == "not" and isinstance(error.validator_value, dict):
        return [_at(doc, path, f"invalid combination: {error.message}")]
    return [_at(doc, path, error.message)]


_PATTERN_HINTS = {
    "^([0-9]+(ms|s|m|h|d|w))+$": "not a duration: {} (use e.g. 30s, 10m, 1h30m, 7d)",
    "^([01][0-9]|2[0-3]):[0-5][0-9]$": 'not a time of day: {} (use HH:MM, 24-hour, e.g. "09:00")',
    "^[a-z0-9][a-z0-9_.-]*$": "invalid name {}: names use lowercase letters, digits, '_', "
    "'.', '-' and start with a letter or digit",
}


def _scalarish(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _name_message(error: Any) -> str:
    inst = error.instance
    if isinstance(inst, str):
        return (
            f"invalid name {inst!r}: names use lowercase letters, digits, '_', '.', '-' "
            "and start with a letter or digit"
        )
    return str(error.message)


def _root_schema(error: Any) -> dict[str, Any]:
    for name in SCHEMAS:
        try:
            s = schema(name)
        except (FileNotFoundError, OSError):
            continue
        if error.schema is s or _contains_schema(s, error.schema):
            return s
    return schema("warden")


def _contains_schema(root: dict[str, Any], sub: Any) -> bool:
    return any(d is sub for d in root.get("definitions", {}).values())


# --------------------------------------------------------------- field warnings


def field_warnings(plan: dict[str, Any]) -> list[Problem]:
    """Rules that read a ``tool_input`` field their tool is not known to have."""
    problems: list[Problem] = []
    for scope in plan.get("scopes", []):
        for rule in scope.get("rules", []):
            tools = rule.get("tools")
            if not tools or not all(t in TOOL_INPUT_FIELDS for t in tools) or not rule.get("when"):
                continue
            known = set.union(*(TOOL_INPUT_FIELDS[t] for t in tools))
            for node in _field_nodes(rule["when"]):
                seg = node["path"]
                if (
                    len(seg) >= 2
                    and seg[0] == "tool_input"
                    and seg[1] not in known
                    and seg[1] != "*"
                ):
                    hint = _hint(seg[1], sorted(known))
                    hint = hint.replace("(did you mean '", "(did you mean 'tool_input.")
                    problems.append(
                        _problem_at(
                            node["at"],
                            f"{'/'.join(tools)} has no field tool_input.{seg[1]}{hint}",
                        )
                    )
    return problems + event_field_warnings(plan) + event_warnings(plan)


# Top-level fields of the inputs of known events (Claude Code hook events; `file` for
# `warden check`; `action` for `warden run`).
_COMMON_FIELDS = {
    "session_id",
    "transcript_path",
    "cwd",
    "hook_event_name",
    "permission_mode",
    "event",
}
EVENT_FIELDS: dict[str, set[str]] = {
    "PreToolUse": {"tool_name", "tool_input", "tool_use_id"},
    "PostToolUse": {"tool_name", "tool_input", "tool_response", "tool_use_id"},
    "UserPromptSubmit": {"prompt"},
    "Notification": {"message", "title", "notification_type"},
    "Stop": {"stop_hook_active"},
    "SubagentStop": {"stop_hook_active"},
    "PreCompact": {"trigger", "custom_instructions"},
    "SessionStart": {"source"},
    "SessionEnd": {"reason"},
    "file": {"path", "format", "document"},
    "action": {"action", "params", "risk", "actor"},
}


def event_field_warnings(plan: dict[str, Any]) -> list[Problem]:
    """Rules that read a top-level field their event's input does not have but that is
    close to one it has (``promt`` for ``prompt``): a likely typo. Fields far from every
    known one are left alone, so inputs with extra fields of their own stay warning-free."""
    problems: list[Problem] = []
    for scope in plan.get("scopes", []):
        for rule in scope.get("rules", []):
            events = rule.get("events")
            if not events or not all(e in EVENT_FIELDS for e in events) or not rule.get("when"):
                continue
            known = sorted(set.union(_COMMON_FIELDS, *(EVENT_FIELDS[e] for e in events)))
            for node in _field_nodes(rule["when"]):
                first = node["path"][0]
                if first in known or first == "*":
                    continue
                close = difflib.get_close_matches(first, known, n=1, cutoff=0.75)
                if close:
                    problems.append(
                        _problem_at(
                            node["at"],
                            f"{'/'.join(events)} input has no field {first!r} "
                            f"(did you mean {close[0]!r}?)",
                        )
                    )
    return problems


# Event names warden knows (Claude Code hook events, `file`, `action`, `record`): a rule
# naming an event close to one of these, but not one of them, gets a "did you mean" warning
# (custom event names stay allowed).
KNOWN_EVENTS = (
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "UserPromptSubmit",
    "Notification",
    "Stop",
    "SubagentStop",
    "PreCompact",
    "SessionStart",
    "SessionEnd",
    "file",
    "action",
    "record",
)


def event_warnings(plan: dict[str, Any]) -> list[Problem]:
    """Rules whose ``event`` looks like a misspelt known event (``PreToolUsee``)."""
    problems: list[Problem] = []
    docs: dict[str, Any] = {}
    for scope in plan.get("scopes", []):
        for rule in scope.get("rules", []):
            for event in rule.get("events") or []:
                if event in KNOWN_EVENTS:
                    continue
                close = difflib.get_close_matches(event, KNOWN_EVENTS, n=1, cutoff=0.75)
                if not close:
                    continue
                at = _event_position(rule["source"], docs) or rule["source"]
                problems.append(
                    _problem_at(
                        at,
                        f"unknown event {event!r} (did you mean {close[0]!r}?); "
                        "the rule never applies to it",
                    )
                )
    return problems


def _event_position(source: str, docs: dict[str, Any]) -> str | None:
    """``file:line:col`` of the ``event:`` value of the rule defined at ``source``."""
    from warden.errors import PolicyError
    from warden.load import load_document

    file, line, col = source.rsplit(":", 2)
    if file not in docs:
        try:
            docs[file] = load_document(file)
        except (PolicyError, OSError):
            docs[file] = None
    doc = docs[file]
    if doc is None:
        return None
    for i, _ in enumerate(doc.data.get("policies") or []):
        if doc.positions.get(("policies", i)) == (int(line), int(col)):
            return str(doc.where(("policies", i, "event")))
    return None


def _problem_at(at: str, message: str) -> Problem:
    file, line, col = at.rsplit(":", 2)
    return Problem(message, file, int(line), int(col), severity="warning")


def _field_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    op = node.get("op")
    if op in ("all", "any"):
        return [n for a in node["args"] for n in _field_nodes(a)]
    if op == "not":
        return _field_nodes(node["arg"])
    return [node] if op == "field" else []
