"""Fuzz targets shared by the atheris entry points and the hypothesis fallback.

Each target takes arbitrary bytes. It returns normally when warden behaved (a value, or one of
warden's own reported errors) and raises anything else: an ``AssertionError`` for a broken
contract, or the unexpected exception itself (a crash).

- ``target_load``: ``load.parse_yaml`` on the bytes; a single mapping document then goes
  through schema validation and the compiler, and a clean plan is built into a runtime and
  evaluated on a few fixed inputs.
- ``target_eval``: ``engine.parse_input`` on the bytes, then evaluation against a fixed
  policy set that exercises every condition form; the decision must validate against
  schema/decision.schema.json.
- ``target_hook``: the Claude Code hook entry point (``hooks.run_claude``) on the bytes as
  its stdin: exit 0 or 2 only, stdout empty or one JSON object, a reason on stderr for 2.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NOW = 1_750_000_000.0

POLICY = r"""
version: 1
settings: {combine: first-match, default: allow, on_error: deny}
policies:
  - name: rm-root
    event: PreToolUse
    tool: Bash
    when: {field: tool_input.command, matches: '\brm\s+-\w*r\w*\s+/(\s|$)'}
    effect: deny
    message: "no: {tool_input.command}"
  - name: env-files
    tool: {matches: "Write|Edit|MultiEdit"}
    when: {field: tool_input.file_path, glob: ["**/.env", "**/.env.*", "secrets/**"]}
    effect: deny
  - name: big-n
    when: {any: [{field: n, gt: 10}, {field: n, lte: "{m}"}, {field: items.*.n, gte: 3}]}
    effect: ask
  - name: tags
    when: {all: [{field: tags.*, in: [a, b, "{s}"]}, {not: {field: s, exists: false}}]}
    effect: warn
    message: "tag {s} {tags} {missing}"
  - name: strings
    when:
      any:
        - {field: s, contains: "x", ignore_case: true}
        - {field: s, starts_with: "{t}"}
        - {field: s, ends_with: "!"}
        - {field: obj, contains: key}
        - {field: items, contains: 1}
        - {field: "a\\.b", equals: {k: [1, true, null]}}
    effect: warn
  - name: clock
    when:
      time: {days: [mon, tue, wed, thu, fri], after: "22:00", before: "06:00", tz: Asia/Tokyo}
    effect: warn
  - name: env
    when: {env: {name: WARDEN_FUZZ, matches: "^y"}}
    effect: warn
  - name: file
    when: {file: {path: "{tool_input.file_path}", larger_than: 10}}
    effect: warn
  - name: history
    when:
      state:
        event: PostToolUse
        tool: [Read]
        where: {field: tool_input.file_path, exists: true}
        since: {field: tool_name, in: [Write, Edit]}
        within: 1h
        count: {gte: 1, lt: 100}
    effect: warn
  - name: stop
    event: Stop
    effect: deny
"""

_STATE: dict[str, Any] = {}


def _setup() -> dict[str, Any]:
    if _STATE:
        return _STATE
    root = Path(tempfile.mkdtemp(prefix="warden-fuzz-"))
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")
    os.environ["XDG_CONFIG_HOME"] = str(root / "config")
    os.environ.setdefault("WARDEN_FUZZ", "yes")
    project = root / "project"
    project.mkdir()
    (project / "warden.yaml").write_text(POLICY, encoding="utf-8")
    (project / "big.txt").write_text("x" * 100, encoding="utf-8")
    from jsonschema import Draft7Validator

    import warden
    from warden.validate import schema

    _STATE.update(
        root=root,
        project=project,
        engine=warden.load(project, user_policies=False, use_cache=False),
        decision_schema=Draft7Validator(schema("decision")),
    )
    return _STATE


FIXED_INPUTS: list[dict[str, Any]] = [
    {},
    {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "rm -rf /"}},
    {"hook_event_name": "PreToolUse", "tool_name": "Write",
     "tool_input": {"file_path": "x/.env", "content": "A=1"}},
    {"event": "action", "action": "deploy", "params": {"env": "prod", "n": 3}},
    {"event": "file", "path": "a.yaml", "document": {"on": {"push": None}, "jobs": {"a": {}}}},
    {"s": "hello!", "n": 11, "m": 3, "tags": ["a", "c"], "items": [{"n": 5}, 1, None]},
]


def _check_decision(doc: dict[str, Any]) -> None:
    state = _setup()
    errors = list(state["decision_schema"].iter_errors(doc))
    assert not errors, f"decision fails its schema: {errors[0].message}: {doc}"
    json.dumps(doc, ensure_ascii=False).encode("utf-8")


def target_load(data: bytes) -> None:
    from warden import __version__
    from warden.compile import compile_documents
    from warden.engine import Engine
    from warden.errors import PolicyError
    from warden.load import Source, parse_yaml
    from warden.validate import schema_problems

    state = _setup()
    try:
        docs = parse_yaml(data, "f.yaml", multi=True)
    except PolicyError as exc:
        assert exc.problems, "PolicyError without problems"
        assert all(p.file == "f.yaml" for p in exc.problems)
        return
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        return
    doc = docs[0]
    if schema_problems(doc):  # as engine.check_sources: only schema-valid documents compile
        return
    source = Source("f.yaml", "project", "f.yaml")
    plan, semantic = compile_documents([(source, doc)], version=__version__)
    if any(p.severity == "error" for p in semantic):
        return
    engine = Engine(plan, state["project"])
    for inp in FIXED_INPUTS:
        decision = engine.evaluate(inp, now=NOW, events=lambda: [], side_effects=False)
        _check_decision(decision.to_dict())


def target_eval(data: bytes) -> None:
    from warden.engine import parse_input
    from warden.errors import InputError

    state = _setup()
    try:
        inp = parse_input(data)
    except InputError as exc:
        assert exc.exit_code == 65
        return
    assert isinstance(inp, dict)
    decision = state["engine"].evaluate(inp, now=NOW, events=lambda: [], side_effects=False)
    assert decision.exit_code in (0, 2, 3)
    _check_decision(decision.to_dict())
    state["engine"].explain(inp, now=NOW, events=lambda: [])


def target_hook(data: bytes) -> None:
    try:
        from warden import hooks
    except ImportError:  # the hooks module has not landed in this build
        return target_eval(data)
    state = _setup()
    environ = {"CLAUDE_PROJECT_DIR": str(state["project"])}
    cwd = os.getcwd()
    os.chdir(state["project"])
    try:
        reply = hooks.run_claude(data, environ=environ, user=False)
    finally:
        os.chdir(cwd)
    assert reply.code in (0, 2), reply
    if reply.stdout:
        assert isinstance(json.loads(reply.stdout), dict), reply
    if reply.code == 2:
        assert reply.stderr.strip(), reply
    assert "Traceback" not in reply.stderr
    assert "internal error" not in reply.stderr, reply.stderr
    return None


TARGETS = {"load": target_load, "eval": target_eval, "hook": target_hook}
