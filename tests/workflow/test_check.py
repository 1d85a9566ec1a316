"""`warden check`: data files in, findings out (text, JSON, JUnit, SARIF, GitHub)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from workflow_support import EXAMPLES, REPO, Runner, put

SARIF_SCHEMA = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"

# A small GitHub Actions policy set (the shipped one is examples/github-actions).
GHA_POLICY = """\
    version: 1
    settings: {combine: deny-overrides}
    policies:
      - name: actions-pinned
        description: Remote actions are pinned to a full 40-hex commit SHA.
        event: file
        when:
          all:
            - {field: path, glob: "**/workflows/*.y*ml"}
            - {field: document.jobs, exists: true}
            - field: 'document.jobs.*.steps.*.uses'
              matches: '^[^./][^@]*@([0-9a-f]{0,39}|[0-9a-f]{41,}|.*[^0-9a-f].*)$'
        effect: deny
        message: "pin {path} actions to a commit SHA"
      - name: no-pr-target-checkout
        description: pull_request_target must not check out the pull request head.
        event: file
        when:
          all:
            - {field: document.on.pull_request_target, exists: true}
            - field: 'document.jobs.*.steps.*.with.ref'
              matches: 'github\\.event\\.pull_request\\.head'
        effect: deny
        message: pull_request_target with a checkout of the PR head
      - name: permissions-declared
        description: Workflows declare top-level permissions.
        event: file
        when:
          all:
            - {field: document.jobs, exists: true}
            - {field: document.permissions, exists: false}
        effect: warn
        message: "declare permissions: in {path}"
      - name: self-hosted-review
        event: file
        when: {field: 'document.jobs.*.runs-on', equals: self-hosted}
        effect: ask
        message: self-hosted runner needs a review
"""

GOOD_WORKFLOW = """\
    # yaml-language-server: $schema=https://json.schemastore.org/github-workflow.json
    name: CI
    on:
      push:
        branches: [main]
      pull_request:
    permissions:
      contents: read
    jobs:
      test:
        runs-on: ubuntu-24.04
        timeout-minutes: 15
        steps:
          - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
          - uses: actions/setup-python@0b93645e9fea7318ecaed2b359559ac225c90a2b # v5.3.0
            with:
              python-version: "3.12"
          - uses: ./.github/actions/local-thing
          - run: make test
"""

UNPINNED_WORKFLOW = """\
    name: Lint
    on: [push]
    permissions: {contents: read}
    jobs:
      lint:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683
          - uses: actions/setup-node@v4
          - run: npm ci
"""

PR_TARGET_WORKFLOW = """\
    name: Preview
    on:
      pull_request_target:
        types: [opened, synchronize]
    jobs:
      build:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683
            with:
              ref: ${{ github.event.pull_request.head.sha }}
          - run: npm ci && npm run build
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    put(root / "policy" / "warden.yaml", GHA_POLICY)
    wf = root / ".github" / "workflows"
    put(wf / "ci.yml", GOOD_WORKFLOW)
    put(wf / "lint.yaml", UNPINNED_WORKFLOW)
    put(wf / "preview.yml", PR_TARGET_WORKFLOW)
    return root


def check(warden: Runner, repo: Path, *args: str) -> tuple[int, str, str]:
    r = warden("check", "--policy", "policy", *args, cwd=repo)
    return r.returncode, r.stdout, r.stderr


def test_text_findings_point_at_the_offending_line(repo: Path, warden: Runner) -> None:
    code, out, err = check(warden, repo, ".github")
    assert code == 1, out + err
    lines = out.strip().splitlines()
    assert lines == [
        ".github/workflows/lint.yaml:9:15: DENY actions-pinned: "
        "pin .github/workflows/lint.yaml actions to a commit SHA",
        ".github/workflows/preview.yml:11:16: DENY no-pr-target-checkout: "
        "pull_request_target with a checkout of the PR head",
        ".github/workflows/preview.yml:1:1: WARN permissions-declared: "
        "declare permissions: in .github/workflows/preview.yml",
        "checked 3 document(s) in 3 file(s): 2 denied, 0 asked, 1 warning(s), 0 unparseable",
    ]


def test_clean_files_exit_0(repo: Path, warden: Runner) -> None:
    code, out, _ = check(warden, repo, ".github/workflows/ci.yml")
    assert code == 0
    assert out.strip() == (
        "checked 1 document(s) in 1 file(s): 0 denied, 0 asked, 0 warning(s), 0 unparseable")


def test_warnings_exit_0_or_4_with_fail_on_warn(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "policy.yaml", """\
        version: 1
        policies:
          - {name: w, event: file, when: {field: document.debug, equals: true}, effect: warn,
             message: debug is on}
        """)
    put(tmp_path / "app.json", '{"debug": true}\n')
    assert warden("check", "--policy", "policy.yaml", "app.json", cwd=tmp_path).returncode == 0
    r = warden("check", "--policy", "policy.yaml", "--fail-on-warn", "app.json", cwd=tmp_path)
    assert r.returncode == 4
    assert "app.json:1:11: WARN w: debug is on" in r.stdout


def test_ask_fails_and_observe_mode_never_fails(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "a.yaml", "jobs:\n  x:\n    runs-on: self-hosted\n")
    put(tmp_path / "p" / "warden.yaml", GHA_POLICY)
    r = warden("check", "--policy", "p", "a.yaml", cwd=tmp_path)
    assert r.returncode == 1
    assert "a.yaml:3:14: ASK self-hosted-review" in r.stdout
    observe = GHA_POLICY.replace("settings: {combine: deny-overrides}",
                                 "settings: {combine: deny-overrides, mode: observe}")
    put(tmp_path / "p" / "warden.yaml", observe)
    r = warden("check", "--policy", "p", "--fail-on-warn", "a.yaml", cwd=tmp_path)
    assert r.returncode == 0
    assert "a.yaml:3:14: ASK self-hosted-review" in r.stdout
    assert "(observe mode: not enforced)" in r.stdout


def test_unparseable_file_fails_with_position(repo: Path, warden: Runner) -> None:
    put(repo / "data" / "broken.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    put(repo / "data" / "ok.toml", "[tool]\nname = 'x'\n")
    code, out, _ = check(warden, repo, "data")
    assert code == 1
    assert "data/broken.yaml:3:2: ERROR cannot parse: invalid YAML" in out
    assert "1 unparseable" in out


def test_multi_document_yaml_json_and_toml(tmp_path: Path, warden: Runner) -> None:
    put(tmp_path / "policy.yaml", """\
        version: 1
        settings: {combine: deny-overrides}
        policies:
          - name: no-latest
            event: file
            when: {field: 'document.spec.containers.*.image', ends_with: ':latest'}
            effect: deny
            message: "{document.metadata.name}: no :latest"
          - name: mem-limits
            event: file
            when:
              all:
                - {field: document.kind, equals: Pod}
                - {field: 'document.spec.containers.*.resources.limits.memory', exists: false}
            effect: deny
            message: "{document.metadata.name}: set memory limits"
          - name: toml-python
            event: file
            when:
              all:
                - {field: format, equals: toml}
                - {field: document.project.requires-python, exists: false}
            effect: deny
            message: requires-python missing
          - name: json-debug
            event: file
            when: {field: document.server.debug, equals: true}
            effect: deny
            message: debug in production
        """)
    put(tmp_path / "k8s" / "pods.yaml", """\
        apiVersion: v1
        kind: Pod
        metadata: {name: good}
        spec:
          containers:
            - name: app
              image: nginx:1.27
              resources: {limits: {memory: 128Mi}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: bad}
        spec:
          containers:
            - name: app
              image: nginx:1.27
              resources: {limits: {memory: 128Mi}}
            - name: sidecar
              image: envoy:latest
        """)
    put(tmp_path / "pyproject.toml", """\
        [project]
        name = "x"
        version = "1.0"
        """)
    put(tmp_path / "config" / "prod.json", """\
        {
          "server": {
            "port": 8080,
            "debug": true
          }
        }
        """)
    r = warden("check", "--policy", "policy.yaml", "--format", "json", "k8s", "pyproject.toml",
               "config", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["files"] == 3 and doc["summary"]["documents"] == 4
    results = {(x["path"], x["document"]): x for x in doc["results"]}
    assert results[("k8s/pods.yaml", 0)]["status"] == "allow"
    bad = results[("k8s/pods.yaml", 1)]
    assert bad["status"] == "deny" and bad["line"] == 10
    found = {f["policy"]: (f["line"], f["column"], f["message"]) for f in bad["findings"]}
    assert found == {
        "no-latest": (19, 14, "bad: no :latest"),  # the image value
        "mem-limits": (18, 7, "bad: set memory limits"),  # the container lacking limits
    }
    toml = results[("pyproject.toml", 0)]
    assert toml["format"] == "toml"
    assert [(f["policy"], f["line"]) for f in toml["findings"]] == [("toml-python", 1)]
    js = results[("config/prod.json", 0)]
    assert js["format"] == "json"
    assert [(f["policy"], f["line"], f["column"]) for f in js["findings"]] == [
        ("json-debug", 4, 14)]


def test_include_and_exclude_globs(repo: Path, warden: Runner) -> None:
    put(repo / "vendor" / "x" / "workflows" / "bad.yml", UNPINNED_WORKFLOW)
    put(repo / "notes.json", '{"a": 1}')
    code, out, _ = check(warden, repo, ".", "--exclude", "vendor", "--exclude", "policy/")
    assert code == 1
    assert "vendor/" not in out and "policy/warden.yaml" not in out
    assert "in 4 file(s)" in out  # 3 workflows and notes.json
    code, out, _ = check(warden, repo, ".", "--include", "**/workflows/*.yml")
    assert code == 1  # vendor/x/workflows/bad.yml
    assert "in 3 file(s)" in out  # ci.yml, preview.yml, vendor/x/workflows/bad.yml
    assert "lint.yaml" not in out


def test_usage_and_policy_errors(repo: Path, warden: Runner) -> None:
    put(repo / "README.md", "# hi\n")
    assert check(warden, repo, "README.md")[0] == 64
    assert check(warden, repo, "missing.yaml")[0] == 64
    put(repo / "policy" / "warden.yaml", "version: 1\npolicies:\n  - name: x\n    effect: no\n")
    code, _, err = check(warden, repo, ".github")
    assert code == 78 and "policy/warden.yaml:4:13:" in err


def test_junit_is_parseable_with_counts(repo: Path, warden: Runner) -> None:
    put(repo / "k8s.yaml", "a: 1\n---\nb: 2\n---\njobs: {x: {runs-on: self-hosted}}\n")
    put(repo / "broken.json", "{")
    code, out, _ = check(warden, repo, "--format", "junit", ".github", "k8s.yaml", "broken.json")
    assert code == 1
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("7", "3", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {".github/workflows/ci.yml", ".github/workflows/lint.yaml",
                           ".github/workflows/preview.yml", "k8s.yaml", "broken.json"}
    k8s = suites["k8s.yaml"]
    assert (k8s.get("tests"), k8s.get("failures")) == ("3", "1")
    assert [tc.get("name") for tc in k8s.findall("testcase")] == [
        "k8s.yaml#1", "k8s.yaml#2", "k8s.yaml#3"]
    assert k8s.findall("testcase")[2].find("failure") is not None
    assert suites["broken.json"].find("testcase/error") is not None
    preview = suites[".github/workflows/preview.yml"].find("testcase")
    assert preview is not None
    failure = preview.find("failure")
    assert failure is not None and failure.get("type") == "deny"
    assert ".github/workflows/preview.yml:11:16: deny no-pr-target-checkout" in (
        failure.text or "")
    assert "warn permissions-declared" in (preview.findtext("system-out") or "")
    for tc in root.iter("testcase"):
        assert tc.get("classname") and tc.get("name")


def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def test_sarif_validates_against_the_official_schema(repo: Path, warden: Runner) -> None:
    put(repo / "broken.yaml", "a: [\n")
    code, out, _ = check(warden, repo, "--format", "sarif", ".github", "broken.yaml")
    assert code == 1
    log = json.loads(out)
    errors = sorted(sarif_validator().iter_errors(log), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids[:4] == ["actions-pinned", "no-pr-target-checkout", "permissions-declared",
                       "self-hosted-review"]
    assert rules[0]["shortDescription"]["text"] == (
        "Remote actions are pinned to a full 40-hex commit SHA.")
    assert rules[0]["defaultConfiguration"]["level"] == "error"
    results = [(r["ruleId"], r["level"],
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"],
                r["locations"][0]["physicalLocation"]["region"]["startColumn"])
               for r in run["results"]]
    assert results == [
        ("actions-pinned", "error", ".github/workflows/lint.yaml", 9, 15),
        ("no-pr-target-checkout", "error", ".github/workflows/preview.yml", 11, 16),
        ("permissions-declared", "warning", ".github/workflows/preview.yml", 1, 1),
        ("warden:parse-error", "error", "broken.yaml", 2, 1),
    ]
    for r in run["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]


def test_sarif_for_a_clean_run_is_valid_too(repo: Path, warden: Runner) -> None:
    code, out, _ = check(warden, repo, "--format", "sarif", ".github/workflows/ci.yml")
    assert code == 0
    log = json.loads(out)
    assert not list(sarif_validator().iter_errors(log))
    assert log["runs"][0]["results"] == []


def test_github_annotations(repo: Path, warden: Runner) -> None:
    put(repo / "data" / "x,y.yaml", "jobs:\n  j:\n    runs-on: self-hosted\n")
    code, out, _ = check(warden, repo, "--format", "github", ".github", "data")
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[:4] == [
        "::error file=.github/workflows/lint.yaml,line=9,col=15,"
        "title=warden deny%3A actions-pinned::pin .github/workflows/lint.yaml actions to a "
        "commit SHA",
        "::error file=.github/workflows/preview.yml,line=11,col=16,"
        "title=warden deny%3A no-pr-target-checkout::pull_request_target with a checkout of "
        "the PR head",
        "::warning file=.github/workflows/preview.yml,line=1,col=1,"
        "title=warden warn%3A permissions-declared::declare permissions: in "
        ".github/workflows/preview.yml",
        "::warning file=data/x%2Cy.yaml,line=3,col=14,title=warden ask%3A self-hosted-review"
        "::self-hosted runner needs a review",
    ]
    assert lines[-1].startswith("checked 4 document(s)")


def test_output_file(repo: Path, warden: Runner) -> None:
    code, out, err = check(warden, repo, "--format", "sarif", "-o", "results.sarif", ".github")
    assert code == 1 and out == ""
    assert "2 denied" in err
    assert json.loads((repo / "results.sarif").read_text())["version"] == "2.1.0"


# ------------------------------------------------------------------ the shipped example


GHA_EXAMPLE = EXAMPLES / "github-actions"


@pytest.mark.skipif(not (GHA_EXAMPLE / "workflows").is_dir(),
                    reason="examples/github-actions not there yet")
def test_shipped_github_actions_example(warden: Runner) -> None:
    r = warden("check", "--policy", "examples/github-actions", "examples/github-actions/workflows",
               "--format", "json", cwd=REPO)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    status = {Path(x["path"]).name: x["status"] for x in doc["results"]}
    bad = {name for name in status if name.startswith("bad")}
    assert bad, status
    for name, st in status.items():
        if name.startswith("bad"):
            assert st in ("deny", "ask"), (name, st)
        else:
            assert st == "allow", (name, st)
    for x in doc["results"]:
        for f in x["findings"]:
            assert f["line"] >= 1 and f["column"] >= 1
    r = warden("check", "--policy", "examples/github-actions", "examples/github-actions/workflows",
               "--format", "sarif", cwd=REPO)
    assert not list(sarif_validator().iter_errors(json.loads(r.stdout)))
