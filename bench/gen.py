"""Seeded generator of synthetic policy sets and requests for the benchmarks.

Everything here is deterministic for a given (n, seed): two runs of ``make bench`` time the
same rules against the same requests, so their figures are comparable.

Policy sets
- ``realistic(n)``: the mix an agent guardrail set has, scaled up. Rules name a tool
  (Bash/Read/Write/Edit/Glob/Grep/WebFetch/Task) and test the tool's natural field
  (command, file_path, pattern, url, prompt) with ``matches`` / ``contains`` /
  ``starts_with`` / ``ends_with`` / ``glob`` / ``equals``; about 20% are ``warn`` rules,
  10% ``ask``, 10% ``allow``; 10% wrap their test in ``all`` (plus a ``not contains``
  guard), 6% in ``any`` (alternatives on the same field), 2% ``any`` across two fields;
  a few use a tool regex (``{matches: Write|Edit}``) or a tool list, a few match every
  event, a few are ``UserPromptSubmit`` rules on ``prompt``.
- ``cedar(n)``: the set the issue uses against Cedar: rule ``i`` denies one tool when
  ``tool_input.command`` contains ``tokNNNNN`` (warden ``matches: 'tokNNNNN'``, Cedar
  ``context.command like "*tokNNNNN*"``), plus a permit-all / default allow.

Requests: roughly half hit some rule (its token appears in the right field of the right
tool), half are ordinary tool calls (``git status``, ``Read src/app.py``...) or carry a
token of a rule for another tool.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOOLS = ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebFetch", "Task"]
FIELD = {
    "Bash": "command",
    "Read": "file_path",
    "Write": "file_path",
    "Edit": "file_path",
    "Glob": "pattern",
    "Grep": "pattern",
    "WebFetch": "url",
    "Task": "prompt",
}

BENIGN = {
    "command": ["git status", "ls -la src", "pytest -q tests/test_app.py", "make build",
                "npm install", "cat README.md", "grep -rn TODO src", "python -m pip list",
                "docker ps", "git log --oneline -5", "echo hello > /tmp/out.txt",
                "cargo test --workspace", "rm -rf build/", "git push origin feature/x"],
    "file_path": ["/home/dev/proj/src/app.py", "/home/dev/proj/README.md", "src/main.rs",
                  "/home/dev/proj/.env.example", "docs/index.md", "tests/test_api.py",
                  "/etc/hosts", "package.json", "/home/dev/proj/config/settings.yaml"],
    "pattern": ["TODO", "**/*.py", "def main", "import os", "src/**/*.ts", "FIXME|XXX"],
    "url": ["https://docs.python.org/3/library/re.html", "https://github.com/org/repo",
            "https://pypi.org/project/requests/", "http://localhost:8080/health"],
    "prompt": ["Refactor the parser module", "Write tests for the CLI",
               "Summarise the open issues", "Find where the config is loaded"],
}


def token(i: int) -> str:
    return f"tok{i:05d}"


@dataclass
class PolicySet:
    """A generated warden policy document, with per-rule inputs that make each rule apply."""

    doc: dict[str, Any]
    hits: list[dict[str, Any]] = field(default_factory=list)  # one sample input per rule
    cedar: str = ""  # the Cedar text of the same set (cedar() only)

    @property
    def rules(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = self.doc["policies"]
        return rules

    def write(self, directory: Path) -> Path:
        """Write ``warden.yaml`` (as JSON, which is YAML 1.2: fast to emit, same to load)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "warden.yaml"
        path.write_text(to_yaml(self.doc), encoding="utf-8")
        return path


def to_yaml(doc: dict[str, Any]) -> str:
    """Block-style YAML like a person writes (one key per line), deterministic."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    return "# yaml-language-server: $schema=../schema/warden.schema.json\n" + yaml.dump(
        doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000,
        allow_unicode=True)


def _event(tool: str, inp: dict[str, Any], event: str = "PreToolUse") -> dict[str, Any]:
    return {"hook_event_name": event, "session_id": "bench", "cwd": "/home/dev/proj",
            "tool_name": tool, "tool_input": inp}


def _leaf(tool: str, i: int, rng: random.Random) -> tuple[dict[str, Any], str]:
    """One field test on the tool's natural field and a value that makes it true."""
    f = FIELD[tool]
    path = f"tool_input.{f}"
    t = token(i)
    if f == "command":
        op = rng.choice(["matches", "matches", "contains", "starts_with", "matches_re"])
        if op == "matches":
            return {"field": path, "matches": t}, f"echo {t} && ls"
        if op == "matches_re":
            return ({"field": path, "matches": rf"\b(curl|wget)\s+\S*{t}"},
                    f"curl https://{t}.example.com/x")
        if op == "contains":
            return {"field": path, "contains": f"--{t}"}, f"deploy --{t} now"
        return {"field": path, "starts_with": f"{t} "}, f"{t} --force"
    if f == "file_path":
        op = rng.choice(["glob", "glob", "ends_with", "equals", "starts_with", "matches"])
        if op == "glob":
            return {"field": path, "glob": f"**/{t}/*.env"}, f"/home/dev/proj/{t}/prod.env"
        if op == "ends_with":
            return {"field": path, "ends_with": f".{t}"}, f"/home/dev/proj/keys.{t}"
        if op == "equals":
            return {"field": path, "equals": f"/etc/{t}"}, f"/etc/{t}"
        if op == "starts_with":
            return {"field": path, "starts_with": f"/srv/{t}/"}, f"/srv/{t}/data.db"
        return {"field": path, "matches": rf"/{t}/secrets?/"}, f"/opt/{t}/secret/k.pem"
    if f == "url":
        if rng.random() < 0.5:
            return ({"field": path, "starts_with": f"https://{t}.example.com/"},
                    f"https://{t}.example.com/api")
        return ({"field": path, "matches": rf"^https?://([a-z0-9-]+\.)*{t}\.(com|net)"},
                f"http://cdn.{t}.net/x.js")
    if f == "pattern":
        if rng.random() < 0.5:
            return {"field": path, "contains": t}, f"{t}|password"
        return {"field": path, "glob": f"*{t}*"}, f"x{t}y"
    # prompt
    if rng.random() < 0.5:
        return {"field": path, "contains": t}, f"Please look at {t} again"
    return {"field": path, "matches": rf"(?i)ignore .*{t}"}, f"IGNORE the {t} rules"


def _set_field(inp: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        inp = inp.setdefault(p, {})
    inp[parts[-1]] = value


def realistic(n: int, seed: int = 1) -> PolicySet:
    rng = random.Random(f"realistic-{n}-{seed}")
    rules: list[dict[str, Any]] = []
    hits: list[dict[str, Any]] = []
    for i in range(n):
        tool = rng.choice(TOOLS)
        f = FIELD[tool]
        leaf, value = _leaf(tool, i, rng)
        inp: dict[str, Any] = {f: value}
        kind = rng.random()
        when: dict[str, Any] = leaf
        if kind < 0.10:
            when = {"all": [leaf, {"not": {"field": leaf["field"], "contains": "--dry-run"}}]}
        elif kind < 0.16:
            alt = {"field": leaf["field"], "contains": f"ALT{token(i)}"}
            when = {"any": [leaf, alt]}
        elif kind < 0.18:
            other = {"field": "tool_input.description", "contains": f"#{token(i)}"}
            when = {"any": [leaf, other]}
        effect = rng.choices(["deny", "ask", "warn", "allow"], [60, 10, 20, 10])[0]
        rule: dict[str, Any] = {"name": f"r{i:05d}-{tool.lower()}"}
        if rng.random() < 0.1:
            rule["description"] = f"Synthetic rule {i} on {tool}."
        ev = rng.random()
        event = "PreToolUse"
        if ev < 0.03 and f in ("command", "file_path"):
            pass  # every event
        elif ev < 0.06:
            event = "UserPromptSubmit"
            rule["event"] = event
            leaf = {"field": "prompt", "contains": f"!{token(i)}"}
            when = leaf
            inp = {}
            value = f"run !{token(i)} now"
            f = "prompt"
        else:
            rule["event"] = "PreToolUse"
        if event == "PreToolUse":
            t = rng.random()
            if t < 0.05 and tool in ("Write", "Edit"):
                rule["tool"] = {"matches": "Write|Edit|MultiEdit"}
            elif t < 0.10 and tool in ("Read", "Write", "Edit"):
                rule["tool"] = ["Read", "Write", "Edit"]
            else:
                rule["tool"] = tool
        rule["when"] = when
        rule["effect"] = effect
        shown = "prompt" if event == "UserPromptSubmit" else f"tool_input.{f}"
        rule["message"] = f"{effect} by rule {i}: {{{shown}}}"
        rules.append(rule)
        if event == "UserPromptSubmit":
            hits.append({"hook_event_name": event, "session_id": "bench", "prompt": value})
        else:
            hits.append(_event(tool, inp))
    doc = {"version": 1, "settings": {"default": "allow", "combine": "first-match"},
           "policies": rules}
    return PolicySet(doc, hits)


def requests(ps: PolicySet, count: int = 1000, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` inputs: ~45% a rule's own hit, ~10% another tool's token, ~45% benign."""
    rng = random.Random(f"requests-{len(ps.rules)}-{seed}")
    out: list[dict[str, Any]] = []
    for _ in range(count):
        r = rng.random()
        if r < 0.45 and ps.hits:
            out.append(json.loads(json.dumps(rng.choice(ps.hits))))
            continue
        tool = rng.choice(TOOLS)
        f = FIELD[tool]
        value = rng.choice(BENIGN[f])
        if r < 0.55:
            value += f" {token(rng.randrange(max(1, len(ps.rules) * 2)))}"
        inp = {f: value}
        if tool == "Bash":
            inp["description"] = "Run a command"
        if rng.random() < 0.03:
            out.append({"hook_event_name": "UserPromptSubmit", "session_id": "bench",
                        "prompt": value})
        else:
            out.append(_event(tool, inp))
    return out


# --------------------------------------------------------------------- Cedar set


def cedar(n: int) -> PolicySet:
    """N rules: rule i denies tool TOOLS[i % 8] when the command contains tokNNNNN."""
    rules = []
    texts = []
    hits = []
    for i in range(n):
        tool = TOOLS[i % len(TOOLS)]
        t = token(i)
        rules.append({"name": f"c{i:05d}", "event": "PreToolUse", "tool": tool,
                      "when": {"field": "tool_input.command", "matches": t},
                      "effect": "deny", "message": f"denied by c{i:05d}"})
        texts.append(f'forbid(principal, action == Action::"{tool}", resource)\n'
                     f'  when {{ context.command like "*{t}*" }};')
        hits.append(_event(tool, {"command": f"run {t} --now"}))
    texts.append("permit(principal, action, resource);")
    doc = {"version": 1, "settings": {"default": "allow"}, "policies": rules}
    return PolicySet(doc, hits, "\n".join(texts) + "\n")


def cedar_requests(n: int, count: int = 1000, seed: int = 7) -> list[dict[str, Any]]:
    """Half denied (the token of a rule for this tool), half allowed (another tool's token,
    a token past N, or none)."""
    rng = random.Random(f"cedar-requests-{n}-{seed}")
    out = []
    for k in range(count):
        if k % 2 == 0:
            i = rng.randrange(n)
            tool = TOOLS[i % len(TOOLS)]
            cmd = f"{rng.choice(BENIGN['command'])} {token(i)} --now"
        else:
            tool = rng.choice(TOOLS)
            choice = rng.random()
            if choice < 0.4 and n > 1:
                i = rng.randrange(n)
                while TOOLS[i % len(TOOLS)] == tool:
                    i = rng.randrange(n)
                cmd = f"do {token(i)}"
            elif choice < 0.7:
                cmd = f"do {token(n + rng.randrange(1000))}"
            else:
                cmd = rng.choice(BENIGN["command"])
        out.append(_event(tool, {"command": cmd}))
    return out


def cedar_request(inp: dict[str, Any]) -> dict[str, Any]:
    return {
        "principal": 'User::"agent"',
        "action": f'Action::"{inp["tool_name"]}"',
        "resource": 'Tool::"shell"',
        "context": {"command": inp["tool_input"]["command"]},
    }


# ---------------------------------------------------------- tollgate and gatewarden


def tollgate_policy(n: int = 10) -> tuple[dict[str, Any], PolicySet]:
    """tollgate's rules match tool/action exactly and metadata by equality (it has no
    substring operator), so the equivalent set is: rule i denies tool TOOLS[i % 8] when
    ``metadata.command == tokNNNNN``; a final rule allows everything else. Warden: the same
    with ``equals`` on ``tool_input.command``."""
    tg_rules: list[dict[str, Any]] = []
    rules = []
    for i in range(n):
        tool = TOOLS[i % len(TOOLS)]
        tg_rules.append({"id": f"t{i}", "tool": tool, "when": {"command": token(i)},
                         "decision": "DENY", "reason": f"denied by t{i}"})
        rules.append({"name": f"t{i}", "event": "PreToolUse", "tool": tool,
                      "when": {"field": "tool_input.command", "equals": token(i)},
                      "effect": "deny"})
    tg_rules.append({"id": "allow-rest", "decision": "ALLOW", "reason": "default"})
    doc = {"version": 1, "settings": {"default": "allow"}, "policies": rules}
    return {"version": "bench", "rules": tg_rules}, PolicySet(doc)


def tollgate_requests(n: int = 10, count: int = 1000, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(f"tollgate-{n}-{seed}")
    out = []
    for k in range(count):
        i = rng.randrange(n)
        tool = TOOLS[i % len(TOOLS)] if k % 2 == 0 else rng.choice(TOOLS)
        cmd = token(i) if k % 4 != 3 else rng.choice(BENIGN["command"])
        out.append(_event(tool, {"command": cmd}))
    return out


def gatewarden_policy(n: int = 10) -> tuple[str, PolicySet, dict[str, Any]]:
    """gatewarden: ordered rules, first match wins, ``action`` glob (Bash -> ``bash``) and a
    case-insensitive ``command`` regex; its default may only be deny/ask, so a last rule
    allows the rest. Warden: ``matches: '(?i)tokNNNNN'`` on Bash. Returns (YAML, warden set,
    a matching stdin event that is allowed, i.e. has to scan every rule)."""
    lines = ["default: deny", "rules:"]
    rules = []
    for i in range(n):
        lines += [f"  - id: g{i}", "    effect: deny", "    action: bash",
                  f"    command: '{token(i)}'", f"    reason: denied by g{i}"]
        rules.append({"name": f"g{i}", "event": "PreToolUse", "tool": "Bash",
                      "when": {"field": "tool_input.command", "matches": token(i),
                               "ignore_case": True},
                      "effect": "deny"})
    lines += ["  - id: rest", "    effect: allow", "    action: '*'"]
    doc = {"version": 1, "settings": {"default": "allow"}, "policies": rules}
    event = _event("Bash", {"command": "git status"})
    return "\n".join(lines) + "\n", PolicySet(doc), event


if __name__ == "__main__":  # quick look: python bench/gen.py 20
    import sys

    ps = realistic(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    print(to_yaml(ps.doc))
