"""``warden serve``: the real server as a subprocess, spoken to over loopback HTTP."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from fleet_helpers import WARDEN, clean_env, wait_for

from wardentest import DEFAULT_POLICY, bash, write

REPO = Path(__file__).resolve().parents[2]
DECISION_SCHEMA = json.loads((REPO / "schema" / "decision.schema.json").read_text())

STATE_POLICY = """\
version: 1
policies:
  - name: read-before-edit
    event: PreToolUse
    tool: Edit
    when:
      not:
        state:
          event: PostToolUse
          tool: Read
          where: {field: tool_input.file_path, equals: "{tool_input.file_path}"}
    effect: deny
    message: "Read {tool_input.file_path} before editing it"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root / "warden.yaml", DEFAULT_POLICY)
    return root


def test_decide_deny_and_allow(serve: Any, project: Path) -> None:
    srv = serve(project)
    status, headers, raw = srv.request("POST", "/v1/decide", json.dumps(bash("rm -rf /")))
    assert status == 200
    doc = json.loads(raw)
    jsonschema.validate(doc, DECISION_SCHEMA)
    assert doc["decision"] == "deny"
    assert doc["reason"] == "Refusing to delete /: rm -rf /"
    assert doc["matched"][0]["policy"] == "no-rm-rf-root"
    assert headers["X-Warden-Exit-Code"] == "2"
    assert headers["X-Warden-Plan-Hash"] == doc["plan"]["hash"]

    status, headers, raw = srv.request("POST", "/v1/decide", json.dumps(bash("ls")))
    assert status == 200 and json.loads(raw)["decision"] == "allow"
    assert headers["X-Warden-Exit-Code"] == "0"


def test_decide_matches_warden_eval(serve: Any, project: Path, run_warden: Any) -> None:
    srv = serve(project)
    inp = bash("rm -rf / ", session_id="x")
    _, served = srv.json("POST", "/v1/decide", inp)
    local = run_warden("eval", "--no-user-policies", input=json.dumps(inp), cwd=project)
    expected = json.loads(local.stdout)
    for doc in (served, expected):
        doc.pop("duration_ms")
    assert served == expected


def test_bad_requests(serve: Any, project: Path) -> None:
    srv = serve(project)
    for body, needle in [(b"{not json", "invalid JSON"), (b"[1, 2]", "JSON object"),
                         (b"", "empty input"), (b"\xff\xfe", "UTF-8"),
                         (b"[" * 300 + b"]" * 300, "JSON object"),
                         (b'{"a":' * 300 + b"1" + b"}" * 300, "deeper than 256")]:
        status, headers, raw = srv.request("POST", "/v1/decide", body)
        assert status == 400, body[:20]
        assert headers["Content-Type"] == "application/json"
        err = json.loads(raw)
        assert needle in err["error"] and err["status"] == 400
    status, _, raw = srv.request("GET", "/v1/nope")
    assert status == 404 and "no such endpoint" in json.loads(raw)["error"]
    status, headers, _ = srv.request("GET", "/v1/decide")
    assert status == 405 and headers["Allow"] == "POST"
    status, headers, _ = srv.request("DELETE", "/v1/health")
    assert status == 405 and headers["Allow"] == "GET"
    for method in ("QUERY", "TRACE", "OPTIONS", "HEAD"):
        status, headers, _ = srv.request(method, "/v1/plan")
        assert status == 405 and headers["Allow"] == "GET", method


def test_body_over_16_mib_is_413(serve: Any, project: Path) -> None:
    srv = serve(project)
    big = b'{"x": "' + b"a" * (16 * 1024 * 1024) + b'"}'
    status, _, raw = srv.request("POST", "/v1/decide", big)
    assert status == 413 and "16 MiB" in json.loads(raw)["error"]
    # the server is still fine afterwards
    status, _, _ = srv.request("GET", "/v1/health")
    assert status == 200


def test_keep_alive_and_chunked(serve: Any, project: Path) -> None:
    srv = serve(project)
    u = urlsplit(srv.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    for i in range(20):
        conn.request("POST", "/v1/decide", body=json.dumps(bash("rm -rf /" if i % 2 else "ls")),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        assert doc["decision"] == ("deny" if i % 2 else "allow")
    # chunked transfer encoding (no Content-Length)
    body = iter([b'{"hook_event_name": "PreToolUse", ', b'"tool_name": "Bash", ',
                 b'"tool_input": {"command": "rm -rf /"}}'])
    conn.request("POST", "/v1/decide", body=body, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["decision"] == "deny"
    conn.close()


def test_health_and_plan(serve: Any, project: Path) -> None:
    srv = serve(project)
    status, health = srv.json("GET", "/v1/health")
    assert status == 200 and health["status"] == "ok" and health["reload"]["ok"] is True
    status, plan = srv.json("GET", "/v1/plan")
    assert status == 200
    assert plan["hash"] == health["plan"]["hash"]
    assert plan["sources"] == [{"path": "warden.yaml", "scope": "project",
                                "sha256": plan["sources"][0]["sha256"]}]
    assert plan["rules"] == 1 and plan["root"] == str(project.resolve())
    # the served hash is the hash `warden compile` reports
    compiled = subprocess.run([WARDEN, "compile", "--no-user-policies"], cwd=project,
                              capture_output=True, text=True, check=False)
    if compiled.returncode == 0 and compiled.stdout.strip().startswith("{"):
        assert json.loads(compiled.stdout)["hash"] == plan["hash"]


def test_hot_reload_and_invalid_change(serve: Any, project: Path) -> None:
    srv = serve(project, "--reload-interval", "0.1")
    _, before = srv.json("GET", "/v1/plan")
    assert srv.json("POST", "/v1/decide", bash("git push --force"))[1]["decision"] == "allow"

    write(project / ".warden" / "push.yaml", """\
        version: 1
        policies:
          - name: no-force-push
            tool: Bash
            when: {field: tool_input.command, matches: 'push\\s+--force'}
            effect: deny
        """)
    assert wait_for(lambda: srv.json("GET", "/v1/plan")[1]["hash"] != before["hash"])
    assert srv.json("POST", "/v1/decide", bash("git push --force"))[1]["decision"] == "deny"
    _, reloaded = srv.json("GET", "/v1/plan")
    assert [s["path"] for s in reloaded["sources"]] == ["warden.yaml", ".warden/push.yaml"]

    # a broken edit: keep serving the last good plan, and say so in /v1/health
    (project / "warden.yaml").write_text("version: 1\npolicies:\n  - name: x\n    effect: nope\n")
    assert wait_for(lambda: srv.json("GET", "/v1/health")[1]["status"] == "degraded")
    _, health = srv.json("GET", "/v1/health")
    assert health["plan"]["hash"] == reloaded["hash"]
    assert health["reload"]["ok"] is False and health["reload"]["problems"]
    assert any("warden.yaml" in p for p in health["reload"]["problems"])
    assert srv.json("POST", "/v1/decide", bash("rm -rf /"))[1]["decision"] == "deny"

    # fixed: healthy again, with the new plan
    write(project / "warden.yaml", DEFAULT_POLICY.replace("no-rm-rf-root", "no-rm-root"))
    assert wait_for(lambda: srv.json("GET", "/v1/health")[1]["status"] == "ok")
    _, doc = srv.json("POST", "/v1/decide", bash("rm -rf /"))
    assert doc["matched"][0]["policy"] == "no-rm-root"
    _, health = srv.json("GET", "/v1/health")
    assert health["reload"]["reloads"] >= 2


def test_reload_disabled(serve: Any, project: Path) -> None:
    srv = serve(project, "--reload-interval", "0")
    _, before = srv.json("GET", "/v1/plan")
    write(project / "warden.yaml", DEFAULT_POLICY.replace("no-rm-rf-root", "renamed"))
    time.sleep(0.5)
    assert srv.json("GET", "/v1/plan")[1]["hash"] == before["hash"]


def test_hook_endpoint(serve: Any, project: Path) -> None:
    srv = serve(project)
    status, headers, raw = srv.request("POST", "/v1/hook/claude", json.dumps(bash("rm -rf /")))
    reply = json.loads(raw)
    assert status == 200 and reply["exit_code"] == 0
    out = reply["stdout"]["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    assert out["permissionDecisionReason"] == "Refusing to delete /: rm -rf /"
    assert headers["X-Warden-Exit-Code"] == "0"
    # malformed event: on_error (default deny) -> exit 2 with the reason on stderr
    # not an event: 400, carrying the on_error reply (default deny: exit 2, reason on stderr)
    status, headers, raw = srv.request("POST", "/v1/hook/claude", b"{broken")
    err = json.loads(raw)
    assert status == 400 and "invalid JSON" in err["error"]
    assert err["reply"]["exit_code"] == 2 and "warden:" in err["reply"]["stderr"]
    assert headers["X-Warden-Exit-Code"] == "2"
    # an event whose evaluation fails inside: answered per on_error too, with 200
    status, _, raw = srv.request("POST", "/v1/hook/claude", json.dumps(
        {"hook_event_name": "Stop", "stop_hook_active": True}))
    assert status == 200 and json.loads(raw)["exit_code"] == 0


def test_state_per_thread_across_connections(serve: Any, tmp_path: Path) -> None:
    root = tmp_path / "stateful"
    write(root / "warden.yaml", STATE_POLICY)
    srv = serve(root)

    def edit(path: str) -> dict[str, Any]:
        return {"session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": "Edit",
                "tool_input": {"file_path": path}}

    assert srv.json("POST", "/v1/decide", edit("a.py"))[1]["decision"] == "deny"
    read = {"session_id": "s1", "hook_event_name": "PostToolUse", "tool_name": "Read",
            "tool_input": {"file_path": "a.py"}, "tool_response": {}}
    # recorded by the hook endpoint (one connection), seen by decide (others)
    assert srv.json("POST", "/v1/hook/claude", read)[1]["exit_code"] == 0
    assert srv.json("POST", "/v1/decide", edit("a.py"))[1]["decision"] == "allow"
    assert srv.json("POST", "/v1/decide", edit("b.py"))[1]["decision"] == "deny"
    assert (root / ".warden" / "state.db").exists()


def test_concurrent_clients(serve: Any, project: Path) -> None:
    srv = serve(project)
    u = urlsplit(srv.url)
    errors: list[str] = []

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            for i in range(50):
                deny = (i + n) % 3 == 0
                conn.request("POST", "/v1/decide",
                             body=json.dumps(bash("rm -rf /" if deny else f"echo {i}")))
                doc = json.loads(conn.getresponse().read())
                if doc["decision"] != ("deny" if deny else "allow"):
                    errors.append(f"{n}/{i}: {doc['decision']}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_token_auth(serve: Any, project: Path) -> None:
    srv = serve(project, env={"WARDEN_TOKEN": "s3cret"}, token="s3cret")
    assert "auth on" in srv.lines[0]
    status, _ = srv.json("GET", "/v1/health")
    assert status == 200
    for value in (None, "Bearer wrong", "Basic s3cret", "s3cret"):
        headers = {"Authorization": value} if value else {}
        srv_token, srv.token = srv.token, None
        try:
            status, hdrs, raw = srv.request("POST", "/v1/decide", json.dumps(bash("ls")),
                                            headers=headers)
        finally:
            srv.token = srv_token
        assert status == 401, value
        assert hdrs["WWW-Authenticate"].startswith("Bearer")
        assert json.loads(raw)["status"] == 401
    status, _, _ = srv.request("POST", "/v1/decide", json.dumps(bash("ls")),
                               headers={"Authorization": "bearer s3cret"})
    assert status == 200


def test_token_file(serve: Any, project: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    srv = serve(project, "--token-file", str(token_file), token="from-file")
    assert srv.request("GET", "/v1/plan")[0] == 200
    srv.token = None
    assert srv.request("GET", "/v1/plan")[0] == 401


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_beyond_loopback_needs_a_token(host: str, project: Path, xdg: Any) -> None:
    proc = subprocess.run([WARDEN, "serve", "--host", host, "--no-user-policies"], cwd=project,
                          env=clean_env(xdg), capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 64
    assert "bearer token is required" in proc.stderr


def test_is_loopback() -> None:
    from warden.serve import is_loopback

    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "10.0.0.1", "192.0.2.1", "2001:db8::1"):
        assert not is_loopback(host), host


def test_bad_policy_refuses_to_start(tmp_path: Path, xdg: Any) -> None:
    root = tmp_path / "broken"
    write(root / "warden.yaml", "version: 1\npolicies: [{name: x, effect: nope}]\n")
    proc = subprocess.run([WARDEN, "serve", "--port", "0", "--no-user-policies"], cwd=root,
                          env=clean_env(xdg), capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 78
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([WARDEN, "serve", "--port", "0", "--no-user-policies"], cwd=empty,
                          env=clean_env(xdg), capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 78 and "no policy files" in proc.stderr


def test_sigterm_stops_cleanly(serve: Any, project: Path) -> None:
    srv = serve(project)
    assert srv.stop() == 0


def test_openapi_document(serve: Any, project: Path) -> None:
    from warden import __version__

    srv = serve(project)
    status, doc = srv.json("GET", "/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.0")
    assert doc["info"]["version"] == __version__
    shipped = json.loads((REPO / "src" / "warden" / "openapi.json").read_text())
    assert set(doc["paths"]) == set(shipped["paths"])
    # the Decision component says what decision.schema.json says
    decision = doc["components"]["schemas"]["Decision"]
    assert set(decision["properties"]) == set(DECISION_SCHEMA["properties"])
    assert set(decision["required"]) == set(DECISION_SCHEMA["required"])
    for name in ("feedback", "match", "gateResult", "sideEffectResult"):
        ours = doc["components"]["schemas"][name[0].upper() + name[1:]]
        theirs = DECISION_SCHEMA["definitions"][name]
        assert set(ours["properties"]) == set(theirs["properties"]), name
        assert set(ours["required"]) == set(theirs["required"]), name


def test_environment_state_location(serve: Any, tmp_path: Path) -> None:
    """$WARDEN_STATE moves the store of a served engine too."""
    root = tmp_path / "stateful"
    write(root / "warden.yaml", STATE_POLICY)
    db = tmp_path / "elsewhere" / "state.db"
    srv = serve(root, env={"WARDEN_STATE": str(db)})
    read = {"session_id": "s9", "hook_event_name": "PostToolUse", "tool_name": "Read",
            "tool_input": {"file_path": "x"}, "tool_response": {}}
    srv.json("POST", "/v1/hook/claude", read)
    assert db.exists() and not (root / ".warden" / "state.db").exists()
    assert os.stat(db).st_size > 0


def test_server_on_postgres_state(serve: Any, tmp_path: Path, pg_database: str) -> None:
    """Per-thread PostgreSQL stores: events recorded through one connection are seen by
    others; after the database drops the server's connections, it reconnects."""
    import psycopg

    root = tmp_path / "stateful"
    write(root / "warden.yaml", STATE_POLICY)
    srv = serve(root, env={"WARDEN_STATE": pg_database})
    edit = {"session_id": "pg", "hook_event_name": "PreToolUse", "tool_name": "Edit",
            "tool_input": {"file_path": "a.py"}}
    read = {"session_id": "pg", "hook_event_name": "PostToolUse", "tool_name": "Read",
            "tool_input": {"file_path": "a.py"}, "tool_response": {}}
    assert srv.json("POST", "/v1/decide", edit)[1]["decision"] == "deny"
    assert srv.json("POST", "/v1/hook/claude", read)[1]["exit_code"] == 0
    assert srv.json("POST", "/v1/decide", edit)[1]["decision"] == "allow"
    assert not (root / ".warden").exists()

    u = urlsplit(srv.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    def decide() -> int:
        conn.request("POST", "/v1/decide", body=json.dumps(edit))
        resp = conn.getresponse()
        resp.read()
        return resp.status

    assert decide() == 200
    with psycopg.connect(pg_database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE application_name = 'warden' AND pid <> pg_backend_pid()")
    statuses = [decide() for _ in range(3)]
    assert statuses[-1] == 200 and statuses.count(500) <= 1, statuses
    conn.close()


def test_hook_claude_server_forwards_to_warden_serve(serve: Any, project: Path, xdg: Any,
                                                     tmp_path: Path) -> None:
    srv = serve(project, token=None)
    elsewhere = tmp_path / "laptop"  # no policy here: only the server can deny
    elsewhere.mkdir()
    env = clean_env(xdg)
    r = subprocess.run([WARDEN, "hook", "claude", "--server", srv.url],
                       input=json.dumps(bash("rm -rf /")), cwd=elsewhere, env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    assert "Refusing to delete /" in out["permissionDecisionReason"]
    r = subprocess.run([WARDEN, "hook", "claude"], input=json.dumps(bash("rm -rf /")),
                       cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
                       check=False)
    assert (r.returncode, r.stdout.strip()) == (0, "{}")
