"""Tests of the JSON Schemas in schema/ themselves (not of the Python validator).

- every schema is valid draft-07;
- every `examples`, `default` and `defaultSnippets[*].body` validates against the sub-schema
  it sits in, so editor completions never insert something the schema then rejects;
- a realistic full policy file, test file and decision document validate;
- typical mistakes are rejected, and jsonschema's best_match points at (or inside) the object
  that holds the mistake, so `warden validate` and editors can report a precise position.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
SCHEMA_FILES = ["warden.schema.json", "warden-test.schema.json", "decision.schema.json"]


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def validator(name: str) -> Draft7Validator:
    return Draft7Validator(load_schema(name))


POLICY = validator("warden.schema.json")
GATE_KINDS = {
    alt["const"] for alt in POLICY.schema["definitions"]["gate"]["properties"]["kind"]["oneOf"]
}
TESTFILE = validator("warden-test.schema.json")
DECISION = validator("decision.schema.json")


def y(text: str) -> Any:
    """Parse a YAML snippet. (Tests quote every scalar YAML 1.1 would misread, e.g. "09:00".)"""
    return yaml.safe_load(text)


# ----------------------------------------------------------------------------- schema walking

# keywords whose value is one subschema / a list of subschemas / a map of subschemas
_ONE = (
    "additionalProperties",
    "additionalItems",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "contains",
)
_LIST = ("allOf", "anyOf", "oneOf")
_MAP = ("properties", "patternProperties", "definitions")


def walk(schema: Any, pointer: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (json-pointer, subschema) for every subschema, following keywords only (so data
    such as examples, defaults and snippet bodies is never mistaken for a schema)."""
    if not isinstance(schema, dict):
        return
    yield pointer, schema
    for kw in _ONE:
        if kw in schema:
            yield from walk(schema[kw], f"{pointer}/{kw}")
    for kw in _LIST:
        for i, sub in enumerate(schema.get(kw, [])):
            yield from walk(sub, f"{pointer}/{kw}/{i}")
    for kw in _MAP:
        for key, sub in schema.get(kw, {}).items():
            yield from walk(sub, f"{pointer}/{kw}/{key}")
    items = schema.get("items")
    if isinstance(items, list):
        for i, sub in enumerate(items):
            yield from walk(sub, f"{pointer}/items/{i}")
    elif items is not None:
        yield from walk(items, f"{pointer}/items")
    for key, dep in schema.get("dependencies", {}).items():
        if isinstance(dep, dict):
            yield from walk(dep, f"{pointer}/dependencies/{key}")


def annotated_values(name: str) -> list[tuple[str, Any]]:
    """Every example, default and snippet body of a schema, with where it sits."""
    out: list[tuple[str, Any]] = []
    for pointer, sub in walk(load_schema(name)):
        for i, example in enumerate(sub.get("examples", [])):
            out.append((f"{pointer}/examples/{i}", example))
        if "default" in sub:
            out.append((f"{pointer}/default", sub["default"]))
        for i, snippet in enumerate(sub.get("defaultSnippets", [])):
            out.append((f"{pointer}/defaultSnippets/{i}", snippet["body"]))
    return out


def subschema_validator(root: Draft7Validator, pointer: str) -> Draft7Validator:
    """A validator for the subschema at `pointer` that resolves $ref against the root."""
    node: Any = root.schema
    for part in pointer.lstrip("#").strip("/").split("/"):
        if part:
            node = node[int(part)] if isinstance(node, list) else node[part]
    return root.evolve(schema=node)


def owner_pointer(value_pointer: str) -> str:
    for marker in ("/examples/", "/defaultSnippets/", "/default"):
        if marker in value_pointer:
            return value_pointer[: value_pointer.rindex(marker)]
    raise AssertionError(value_pointer)


# ---------------------------------------------------------------------- the schemas themselves


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_is_valid_draft7(name: str) -> None:
    schema = load_schema(name)
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"] == f"https://warden.dev/schema/{name}"
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_property_and_definition_is_described(name: str) -> None:
    missing = []
    for pointer, sub in walk(load_schema(name)):
        if "/if" in pointer:  # `if: {properties: {kind: {const: ...}}}` only selects a branch
            continue
        for key, prop in sub.get("properties", {}).items():
            if "description" not in prop:
                missing.append(f"{pointer}/properties/{key}")
        for key, definition in sub.get("definitions", {}).items():
            if "description" not in definition:
                missing.append(f"{pointer}/definitions/{key}")
    assert missing == []


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_ref_resolves(name: str) -> None:
    schema = load_schema(name)
    for pointer, sub in walk(schema):
        target = sub.get("$ref")
        if target is None:
            continue
        assert target.startswith("#/definitions/"), (pointer, target)
        assert target.split("/")[-1] in schema["definitions"], (pointer, target)


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_enums_use_documented_const_alternatives(name: str) -> None:
    """Enumerations are written as `oneOf: [{const, description}]` (hover and completion docs
    in every editor), never as a bare `enum` (which would also double the editor's error)."""
    found = 0
    for pointer, sub in walk(load_schema(name)):
        assert "enum" not in sub or "/propertyNames" in pointer, pointer
        alternatives = sub.get("oneOf", [])
        if alternatives and all("const" in alt for alt in alternatives):
            found += 1
            assert sub.get("type") == "string", pointer
            assert all(alt.get("description") for alt in alternatives), pointer
            consts = [alt["const"] for alt in alternatives]
            assert len(set(consts)) == len(consts), pointer
    assert found


def _annotated_cases() -> list[Any]:
    cases = []
    for name, root in [
        ("warden.schema.json", POLICY),
        ("warden-test.schema.json", TESTFILE),
        ("decision.schema.json", DECISION),
    ]:
        for pointer, value in annotated_values(name):
            cases.append(pytest.param(root, pointer, value, id=f"{name}:{pointer}"))
    return cases


@pytest.mark.parametrize(("root", "pointer", "value"), _annotated_cases())
def test_examples_defaults_and_snippets_validate(
    root: Draft7Validator, pointer: str, value: Any
) -> None:
    errors = list(subschema_validator(root, owner_pointer(pointer)).iter_errors(value))
    assert errors == [], [e.message for e in errors]


def test_annotated_values_were_found() -> None:
    values = annotated_values("warden.schema.json")
    assert sum("/defaultSnippets/" in p for p, _ in values) >= 20
    assert sum("/examples/" in p for p, _ in values) >= 50


def _snippet_bodies(definition: str) -> list[dict[str, Any]]:
    return [s["body"] for s in POLICY.schema["definitions"][definition]["defaultSnippets"]]


def test_snippets_cover_rule_action_step_and_every_gate_kind() -> None:
    assert _snippet_bodies("rule")
    assert _snippet_bodies("action")
    step_kinds = {
        k
        for body in _snippet_bodies("step")
        for k in ("run", "write_file", "delete_file", "mkdir")
        if k in body
    }
    assert step_kinds == {"run", "write_file", "delete_file", "mkdir"}
    gate_kinds = {body["kind"] for body in _snippet_bodies("gate")}
    assert gate_kinds == GATE_KINDS
    for definition in ("rule", "action", "step", "gate"):
        for snippet in POLICY.schema["definitions"][definition]["defaultSnippets"]:
            assert snippet["label"] and snippet["description"]


def test_main_blocks_have_markdown_examples() -> None:
    defs = POLICY.schema["definitions"]
    for definition in ("rule", "condition", "sideEffect", "action", "step", "gate", "settings"):
        assert "```yaml" in defs[definition]["markdownDescription"], definition


def test_gate_kind_keys_are_all_declared() -> None:
    """Each per-kind `propertyNames` list only names properties the gate declares."""
    gate = POLICY.schema["definitions"]["gate"]
    declared = set(gate["properties"])
    kinds = set()
    for rule in gate["allOf"]:
        kinds.add(rule["if"]["properties"]["kind"]["const"])
        allowed = set(rule["then"]["propertyNames"]["enum"])
        assert allowed <= declared
        assert {"kind", "description", "when"} <= allowed
    assert kinds == GATE_KINDS
    # every declared key is allowed for at least one kind
    assert declared == set().union(*(r["then"]["propertyNames"]["enum"] for r in gate["allOf"]))


# ------------------------------------------------------------------------- full valid documents

FULL_POLICY = """
version: 1
settings:
  mode: enforce
  default: allow
  combine: first-match
  on_error: deny
  state: .warden/state.db
  redact: [params.password, tool_input.content]
  state_retention: 30d

policies:
  - name: no-rm-rf-root
    description: Never delete the filesystem root.
    event: PreToolUse
    tool: Bash
    when:
      field: tool_input.command
      matches: '\\brm\\s+-\\w*r\\w*\\s+/(\\s|$)'
    effect: deny
    message: "Refusing to delete /: {tool_input.command}"
    then:
      - run: ["logger", "-t", "warden", "blocked {tool_name}"]
        timeout: 5s
        background: true
      - record: {key: blocked_commands, value: "{tool_input.command}"}
      - record: {key: seen}

  - name: protect-secrets
    event: [PreToolUse]
    tool: {matches: "Write|Edit|MultiEdit"}
    when:
      any:
        - {field: tool_input.file_path, glob: ["**/.env", "**/.env.*"]}
        - {field: tool_input.file_path, glob: "*.pem", ignore_case: true}
        - {field: tool_input.file_path, ends_with: .key}
        - {field: tool_input.file_path, starts_with: /etc/}
    effect: ask

  - name: read-before-edit
    event: PreToolUse
    tool: [Edit, MultiEdit]
    when:
      not:
        state:
          event: PostToolUse
          tool: Read
          where: {field: tool_input.file_path, equals: "{tool_input.file_path}"}
    effect: deny
    message: Read {tool_input.file_path} before editing it.

  - name: tests-before-stop
    event: Stop
    when:
      all:
        - state:
            event: [PostToolUse]
            tool: {matches: "Write|Edit"}
            within: 2h
            count: {gte: 1}
        - not:
            state:
              event: PostToolUse
              tool: Bash
              where: {field: tool_input.command, matches: '\\bpytest\\b'}
              since: {field: tool_name, in: [Write, Edit]}
              count: {equals: 0, lt: 5}
    effect: warn
    message: Run the tests before stopping.

  - name: big-files
    event: PreToolUse
    tool: Write
    when:
      any:
        - file: {path: "{tool_input.file_path}", exists: true, larger_than: 10MB}
        - file: {path: "{tool_input.file_path}", modified_within: 10m}
        - file: {path: package-lock.json, larger_than: 1048576}
        - file: {path: .lock}
    effect: warn
    message: That file is big or was just changed.

  - name: ci-only-allow
    when:
      all:
        - env: {name: CI, equals: "true"}
        - env: {name: BRANCH, matches: "^release/"}
        - env: {name: WARDEN_SKIP, exists: false}
        - env: {name: HOME}
    effect: allow

  - name: office-hours-prompts
    event: UserPromptSubmit
    when:
      all:
        - time: {days: [mon, tue, wed, thu, fri], after: "09:00", before: "17:00",
                 tz: Europe/Berlin}
        - field: prompt
          contains: deploy
    effect: warn
    message: It is office hours; deploys go through warden run.

  - name: clean-tree-for-push
    event: PreToolUse
    tool: Bash
    when:
      all:
        - {field: tool_input.command, matches: "git\\\\s+push"}
        - not: {command: {run: ["git", "diff", "--quiet"], exit_code: 0, timeout: 5s}}
    effect: ask

  - name: workflow-permissions
    event: file
    when:
      all:
        - {field: path, glob: ".github/workflows/*.yml"}
        - {field: document.permissions, exists: false}
        - {field: document.jobs.*.timeout-minutes, gt: 60}
        - {field: document.jobs.*.steps.0.name, equals: checkout}
        - {field: metadata.labels.app\\.kubernetes\\.io/name, in: [web, api]}
        - {field: document.replicas, gte: 1}
        - {field: document.replicas, lte: "{params.limit}"}
        - {field: document.replicas, lt: 10.5}
    effect: deny
    message: Workflows need explicit permissions.

  - name: prod-deploys-need-approval
    event: action
    when:
      all:
        - {field: action, equals: deploy}
        - {field: params.env, equals: prod}
        - {field: risk, in: [high, critical]}
    effect: ask

actions:
  deploy:
    description: Deploy one service.
    risk: high
    params:
      type: object
      required: [service, env]
      additionalProperties: false
      properties:
        service: {type: string, pattern: "^[a-z-]+$"}
        env: {enum: [staging, prod]}
    gates: [kill-switch, prod-approval, deploy-rate, dry-run-first, once, office-hours,
            tests-green, not-friday]
    idempotency_key: "deploy:{params.service}:{params.env}"
    on_failure: rollback
    allowed_roots: [/var/lib/myapp]
    steps:
      - name: check
        precondition: ["git", "diff", "--quiet"]
        run: ["make", "check"]
      - name: build
        description: Build the artefact.
        run: ["make", "build", "SERVICE={params.service}"]
        dry_run: ["make", "-n", "build"]
        verify: ["test", "-f", "dist/{params.service}.tar"]
        rollback: ["rm", "-f", "dist/{params.service}.tar"]
        timeout: 10m
        env: [KUBECONFIG, AWS_PROFILE]
        cwd: services/{params.service}
      - name: make-dir
        mkdir: {path: deployed}
      - name: write-marker
        write_file: {path: "deployed/{params.service}", content: "{params.env}\\n", mode: "0644"}
      - name: write-secret
        write_file: {path: /var/lib/myapp/token, content: "x", mode: 384}
      - name: drop-old
        delete_file: {path: "deployed/{params.service}.old"}
  cleanup.tmp:
    on_failure: stop
    risk: low
    steps:
      - {name: rm, run: ["rm", "-rf", "tmp/cache"]}

gates:
  kill-switch:   {kind: kill_switch, description: Emergency stop.}
  prod-approval: {kind: approval, approvals: 2, approvers: [alice, bob],
                  when: {field: params.env, equals: prod}}
  deploy-rate:   {kind: rate_limit, key: "deploy:{params.env}", max: 3, per: 1d}
  dry-run-first: {kind: dry_run, max_age: 1h}
  once:          {kind: idempotent, window: 7d}
  office-hours:  {kind: time_window, days: [mon, tue, wed, thu, fri], after: "09:00",
                  before: "17:00", tz: UTC}
  late-only:     {kind: time_window, after: "22:00"}
  tests-green:   {kind: command, run: ["make", "test"], timeout: 10m, exit_code: 0}
  not-friday:    {kind: condition, when: {not: {time: {days: [fri]}}}}
"""


def test_full_policy_document_validates() -> None:
    doc = y(FULL_POLICY)
    errors = [f"{e.json_path}: {e.message}" for e in POLICY.iter_errors(doc)]
    assert errors == []
    # the document really exercises every form
    kinds = {g["kind"] for g in doc["gates"].values()}
    assert kinds == GATE_KINDS
    text = json.dumps(doc)
    for key in (
        "all",
        "any",
        "not",
        "field",
        "file",
        "env",
        "time",
        "state",
        "command",
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
        "ignore_case",
        "write_file",
        "delete_file",
        "mkdir",
        "precondition",
        "verify",
        "dry_run",
        "rollback",
        "since",
        "within",
    ):
        assert f'"{key}":' in text, key


def test_minimal_documents_validate() -> None:
    for doc in (
        {"version": 1},
        {"version": 1, "policies": []},
        {"version": 1, "policies": [{"name": "x", "effect": "warn"}]},
        {"version": 1, "actions": {}, "gates": {}, "settings": {}},
    ):
        assert list(POLICY.iter_errors(doc)) == []


# ------------------------------------------------------------------------------- mistakes

RULE = "version: 1\npolicies:\n  - name: r\n    effect: deny\n"


def rule_with(extra: str) -> str:
    """A one-rule document; `extra` are more keys of the rule, indented by the caller."""
    return RULE + extra


def action_with(step: str, extra: str = "") -> str:
    return "version: 1\nactions:\n  a:\n" + extra + "    steps:\n      - " + step + "\n"


def gate(body: str) -> str:
    return "version: 1\ngates:\n  g: " + body + "\n"


P0 = ("policies", 0)
WHEN = (*P0, "when")
STEP0 = ("actions", "a", "steps", 0)
G = ("gates", "g")

MISTAKES: list[tuple[str, str, tuple[Any, ...]]] = [
    ("typo key efect", "version: 1\npolicies:\n  - name: r\n    efect: deny\n", P0),
    ("effect block", "version: 1\npolicies:\n  - name: r\n    effect: block\n", (*P0, "effect")),
    ("missing rule name", "version: 1\npolicies:\n  - effect: deny\n", P0),
    (
        "rule name with spaces",
        "version: 1\npolicies:\n  - {name: No Spaces, effect: deny}\n",
        (*P0, "name"),
    ),
    (
        "matches given as a list",
        rule_with("    when: {field: x, matches: [a, b]}\n"),
        (*WHEN, "matches"),
    ),
    ("equals misspelt", rule_with("    when: {field: x, equal: 1}\n"), WHEN),
    ("operator without field", rule_with("    when: {matches: rm}\n"), WHEN),
    ("empty condition", rule_with("    when: {}\n"), WHEN),
    ("tool match instead of matches", rule_with("    tool: {match: Write}\n"), (*P0, "tool")),
    ("tool as a number", rule_with("    tool: 3\n"), (*P0, "tool")),
    ("empty event list", rule_with("    event: []\n"), (*P0, "event")),
    ("all is empty", rule_with("    when: {all: []}\n"), (*WHEN, "all")),
    (
        "nested typo inside all",
        rule_with("    when: {all: [{not: {fild: x, exists: true}}]}\n"),
        (*WHEN, "all", 0, "not"),
    ),
    ("time.after 9am", rule_with("    when: {time: {after: 9am}}\n"), (*WHEN, "time", "after")),
    (
        "time.before 25:00",
        rule_with("    when: {time: {before: '25:00'}}\n"),
        (*WHEN, "time", "before"),
    ),
    (
        "time day monday",
        rule_with("    when: {time: {days: [monday]}}\n"),
        (*WHEN, "time", "days", 0),
    ),
    ("time without a window", rule_with("    when: {time: {tz: UTC}}\n"), (*WHEN, "time")),
    ("gt given a word", rule_with("    when: {field: n, gt: ten}\n"), (*WHEN, "gt")),
    ("file without path", rule_with("    when: {file: {exists: true}}\n"), (*WHEN, "file")),
    (
        "larger_than in words",
        rule_with("    when: {file: {path: a, larger_than: 10 megabytes}}\n"),
        (*WHEN, "file", "larger_than"),
    ),
    (
        "env with value key",
        rule_with("    when: {env: {name: CI, value: 'true'}}\n"),
        (*WHEN, "env"),
    ),
    (
        "state count typo",
        rule_with("    when: {state: {event: PostToolUse, count: {at_least: 1}}}\n"),
        (*WHEN, "state", "count"),
    ),
    (
        "state within 5 minutes",
        rule_with("    when: {state: {within: 5 minutes}}\n"),
        (*WHEN, "state", "within"),
    ),
    (
        "command run as a string",
        rule_with("    when: {command: {run: make test}}\n"),
        (*WHEN, "command", "run"),
    ),
    (
        "then with run and record",
        rule_with("    then: [{run: [echo], record: {key: k}}]\n"),
        (*P0, "then", 0),
    ),
    ("then run as a string", rule_with("    then: [{run: logger hi}]\n"), (*P0, "then", 0, "run")),
    (
        "then timeout on record",
        rule_with("    then: [{record: {key: k}, timeout: 5s}]\n"),
        (*P0, "then", 0),
    ),
    ("unknown top-level key", "version: 1\nrules: []\n", ()),
    ("version 2", "version: 2\n", ("version",)),
    ("missing version", "policies: []\n", ()),
    ("policies as a mapping", "version: 1\npolicies: {r: {effect: deny}}\n", ("policies",)),
    ("settings mode enforcing", "version: 1\nsettings: {mode: enforcing}\n", ("settings", "mode")),
    ("settings typo defaults", "version: 1\nsettings: {defaults: deny}\n", ("settings",)),
    (
        "state_retention 30 days",
        "version: 1\nsettings: {state_retention: 30 days}\n",
        ("settings", "state_retention"),
    ),
    (
        "duration 5 minutes",
        action_with("{name: s, run: [x], timeout: 5 minutes}"),
        (*STEP0, "timeout"),
    ),
    (
        "step with run and write_file",
        action_with("{name: s, run: [x], write_file: {path: a, content: b}}"),
        STEP0,
    ),
    ("step without a kind", action_with("{name: s, verify: [x]}"), STEP0),
    ("step without name", action_with("{run: [x]}"), STEP0),
    ("step run empty argv", action_with("{name: s, run: []}"), (*STEP0, "run")),
    (
        "write_file without content",
        action_with("{name: s, write_file: {path: a}}"),
        (*STEP0, "write_file"),
    ),
    (
        "write_file mode 0644 unquoted",
        action_with("{name: s, write_file: {path: a, content: b, mode: 644}}"),
        (*STEP0, "write_file", "mode"),
    ),
    ("step env with a value", action_with("{name: s, run: [x], env: ['A=1']}"), (*STEP0, "env", 0)),
    ("action without steps", "version: 1\nactions:\n  a: {risk: high}\n", ("actions", "a")),
    (
        "action risk severe",
        action_with("{name: s, run: [x]}", "    risk: severe\n"),
        ("actions", "a", "risk"),
    ),
    (
        "action name with capitals",
        "version: 1\nactions:\n  Deploy: {steps: [{name: s, run: [x]}]}\n",
        ("actions",),
    ),
    (
        "action gates duplicated",
        action_with("{name: s, run: [x]}", "    gates: [g, g]\n"),
        ("actions", "a", "gates"),
    ),
    ("gate kind approvel", gate("{kind: approvel}"), (*G, "kind")),
    ("gate without kind", gate("{max: 3}"), G),
    ("rate_limit without max", gate("{kind: rate_limit, per: 1h}"), G),
    ("rate_limit per 1 hour", gate("{kind: rate_limit, max: 3, per: 1 hour}"), (*G, "per")),
    ("kill_switch with max", gate("{kind: kill_switch, max: 3}"), G),
    ("approval with max_age", gate("{kind: approval, max_age: 1h}"), G),
    ("approval approvals 0", gate("{kind: approval, approvals: 0}"), (*G, "approvals")),
    ("command gate without run", gate("{kind: command, timeout: 5s}"), G),
    ("condition gate without when", gate("{kind: condition}"), G),
    ("time_window without window", gate("{kind: time_window, tz: UTC}"), G),
    ("time_window after 9am", gate("{kind: time_window, after: 9am}"), (*G, "after")),
    ("gate typo whenn", gate("{kind: dry_run, whenn: {field: a, exists: true}}"), G),
    ("gate name with space", "version: 1\ngates:\n  my gate: {kind: kill_switch}\n", ("gates",)),
]


@pytest.mark.parametrize(("doc", "where"), [pytest.param(d, w, id=i) for i, d, w in MISTAKES])
def test_typical_mistake_is_rejected_precisely(doc: str, where: tuple[Any, ...]) -> None:
    instance = y(doc)
    errors = list(POLICY.iter_errors(instance))
    assert errors, "expected at least one schema error"
    best = best_match(errors)
    assert best is not None
    path = tuple(best.absolute_path)
    assert path[: len(where)] == where, (best.json_path, best.message)
    # and no error at all lands outside the offending object
    for error in errors:
        assert tuple(error.absolute_path)[: len(where)] == where, (error.json_path, error.message)


def test_there_are_at_least_twenty_mistakes() -> None:
    assert len(MISTAKES) >= 20
    assert len({m[0] for m in MISTAKES}) == len(MISTAKES)


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (gate("{kind: approvel}"), "'approvel' is not valid under any of the given schemas"),
        (gate("{kind: kill_switch, max: 3}"), "'max' is not one of"),
        (gate("{kind: rate_limit, per: 1h}"), "'max' is a required property"),
        ("version: 1\npolicies:\n  - name: r\n    efect: deny\n", "'effect' is a required"),
        (rule_with("    when: {matches: rm}\n"), "'field' is a dependency of 'matches'"),
        (rule_with("    when: {field: x, equal: 1}\n"), "equal"),
        ("version: 1\npolicies:\n  - name: r\n    effect: block\n", "'block' is not valid"),
    ],
)
def test_best_error_message_is_clear(doc: str, fragment: str) -> None:
    best = best_match(POLICY.iter_errors(y(doc)))
    assert best is not None
    assert fragment in best.message


def test_typo_key_is_named_in_an_error() -> None:
    errors = POLICY.iter_errors(y("version: 1\npolicies:\n  - name: r\n    efect: deny\n"))
    assert any("'efect' was unexpected" in e.message for e in errors)


# ------------------------------------------------------------------------------ test files

TEST_FILE = """
version: 1
policies: [../warden.yaml, policies/]
tests:
  - name: blocks rm -rf /
    description: The root is never deleted.
    input: {hook_event_name: PreToolUse, tool_name: Bash, tool_input: {command: "rm -rf /"}}
    expect: {decision: deny, matched: [no-rm-rf-root], exit_code: 2}
  - name: warns outside office hours
    now: "2024-05-10T16:59:00+02:00"
    env: {CI: "true", HOME: /home/me}
    state:
      - input: {hook_event_name: PostToolUse, tool_name: Edit, tool_input: {file_path: a.py}}
        ago: 10m
      - input: {hook_event_name: PostToolUse, tool_name: Read, tool_input: {file_path: a.py}}
    input: {hook_event_name: Stop, stop_hook_active: false}
    expect: {feedback: [Run the tests], matched: []}
  - name: file input
    now: "2024-05-06"
    input: {event: file, path: .github/workflows/ci.yml, format: yaml, document: {name: ci}}
    expect: {decision: allow}
"""


def test_valid_test_file_validates() -> None:
    errors = [f"{e.json_path}: {e.message}" for e in TESTFILE.iter_errors(y(TEST_FILE))]
    assert errors == []


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ("version: 1\n", ()),
        ("version: 1\ntests: [{name: t, input: {}}]\n", ("tests", 0)),
        ("version: 1\ntests: [{name: t, input: {}, expect: {}}]\n", ("tests", 0, "expect")),
        (
            "version: 1\ntests: [{name: t, input: {}, expect: {decision: block}}]\n",
            ("tests", 0, "expect", "decision"),
        ),
        (
            "version: 1\ntests: [{name: t, input: {}, expect: {decison: deny}}]\n",
            ("tests", 0, "expect"),
        ),
        (
            "version: 1\ntests: [{name: t, input: {}, expect: {decision: deny}, now: yesterday}]\n",
            ("tests", 0, "now"),
        ),
        (
            "version: 1\ntests: [{name: t, input: {}, expect: {decision: deny}, env: {CI: 1}}]\n",
            ("tests", 0, "env", "CI"),
        ),
        (
            "version: 1\ntests: [{name: t, input: {}, expect: {decision: deny},"
            " state: [{input: {}, ago: 5 min}]}]\n",
            ("tests", 0, "state", 0, "ago"),
        ),
        (
            "version: 1\ntests: [{name: t, input: {}, expect: {decision: deny}, inputs: {}}]\n",
            ("tests", 0),
        ),
        ("version: 2\ntests: []\n", ("version",)),
    ],
)
def test_bad_test_files_are_rejected(doc: str, where: tuple[Any, ...]) -> None:
    errors = list(TESTFILE.iter_errors(y(doc)))
    assert errors
    best = best_match(errors)
    assert best is not None
    assert tuple(best.absolute_path)[: len(where)] == where, (best.json_path, best.message)


# ------------------------------------------------------------------------------- decisions

DECISION_DOC: dict[str, Any] = {
    "decision": "deny",
    "enforced": True,
    "reason": "Refusing to delete /: rm -rf /",
    "feedback": [{"policy": "prefer-trash", "message": "consider trash-put"}],
    "matched": [{"policy": "no-rm-rf-root", "effect": "deny", "source": "warden.yaml:4:5"}],
    "gates": [],
    "plan": {"hash": "sha256:" + "0123456789abcdef" * 4},
    "input": {"event": "PreToolUse", "tool": "Bash"},
    "duration_ms": 0.08,
}


def test_decision_document_validates() -> None:
    assert list(DECISION.iter_errors(DECISION_DOC)) == []
    full = {
        **DECISION_DOC,
        "mode": "enforce",
        "gates": [
            {
                "name": "kill-switch",
                "kind": "kill_switch",
                "passed": True,
                "detail": "kill switch is off",
            }
        ],
        "side_effects": [
            {
                "policy": "no-rm-rf-root",
                "kind": "run",
                "ok": True,
                "detail": "exited 0",
                "exit_code": 0,
                "stdout": "",
                "stderr": "",
                "background": False,
            },
            {
                "policy": "no-rm-rf-root",
                "kind": "run",
                "ok": True,
                "exit_code": None,
                "background": True,
            },
            {"policy": "no-rm-rf-root", "kind": "record", "ok": True},
        ],
        "execution": {"id": "x", "outcome": "succeeded", "steps": []},
        "proposal": {"id": "p1"},
        "warnings": ["no state store"],
        "input": {"event": None, "tool": None},
    }
    assert list(DECISION.iter_errors(full)) == []


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"decision": "block"}, ("decision",)),
        ({"decision": "warn"}, ("decision",)),
        ({"enforced": "yes"}, ("enforced",)),
        ({"plan": {"hash": "md5:abc"}}, ("plan", "hash")),
        ({"duration_ms": -1}, ("duration_ms",)),
        ({"matched": [{"policy": "p", "effect": "deny"}]}, ("matched", 0)),
        (
            {"matched": [{"policy": "p", "effect": "block", "source": "a:1:1"}]},
            ("matched", 0, "effect"),
        ),
        (
            {"gates": [{"name": "g", "kind": "approval", "passed": "no", "detail": ""}]},
            ("gates", 0, "passed"),
        ),
        ({"input": {"event": "Stop"}}, ("input",)),
        (
            {"side_effects": [{"policy": "p", "kind": "shell", "ok": True}]},
            ("side_effects", 0, "kind"),
        ),
        ({"exit": 2}, ()),
    ],
)
def test_bad_decisions_are_rejected(patch: dict[str, Any], where: tuple[Any, ...]) -> None:
    errors = list(DECISION.iter_errors({**DECISION_DOC, **patch}))
    assert errors
    best = best_match(errors)
    assert best is not None
    assert tuple(best.absolute_path)[: len(where)] == where, (best.json_path, best.message)


def test_decision_requires_every_documented_key() -> None:
    for key in DECISION_DOC:
        doc = {k: v for k, v in DECISION_DOC.items() if k != key}
        assert any(e.validator == "required" for e in DECISION.iter_errors(doc)), key
