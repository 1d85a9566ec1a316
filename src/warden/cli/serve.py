"""``warden serve``: the HTTP decision API (fleet mode, docs/fleet.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from warden.cli.common import add_policy_options
from warden.errors import UsageError


def register(sub: Any) -> None:
    from warden.serve import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_RELOAD_INTERVAL

    p = sub.add_parser(
        "serve",
        help="serve decisions over HTTP (fleet mode)",
        description="Serve the HTTP decision API: POST /v1/decide, POST /v1/hook/claude, "
        "GET /v1/health, GET /v1/plan, GET /v1/openapi.json. Policy files are reloaded when "
        "they change; an invalid change keeps the previous plan (see /v1/health). Beyond "
        "loopback a bearer token is required.",
    )
    p.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST})"
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="bearer token clients must send (default: $WARDEN_TOKEN); "
        "prefer --token-file, a command line is visible to other users",
    )
    p.add_argument("--token-file", metavar="FILE", help="read the bearer token from FILE")
    p.add_argument(
        "--reload-interval",
        type=float,
        default=DEFAULT_RELOAD_INTERVAL,
        metavar="SECONDS",
        help="how often to check policy files for changes (default: 1; 0 disables reload)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    add_policy_options(p)
    p.set_defaults(func=run_serve)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise UsageError(f"--token-file {args.token_file}: {exc.strerror}") from None
        if not token:
            raise UsageError(f"--token-file {args.token_file}: the file is empty")
        return token
    given: str | None = args.token if args.token is not None else os.environ.get("WARDEN_TOKEN")
    return (given or "").strip() or None


def run_serve(args: argparse.Namespace) -> int:
    from warden.serve import App, is_loopback, make_server

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a port number")
    token = _token(args)
    if not token and not is_loopback(args.host):
        raise UsageError(
            f"refusing to listen on {args.host}: beyond loopback a bearer token is required "
            "(--token-file FILE, --token or $WARDEN_TOKEN)"
        )
    app = App(
        policies=args.policy,
        user_policies=args.user_policies,
        token=token,
        reload_interval=args.reload_interval,
    )
    server = make_server(app, args.host, args.port, access_log=args.access_log)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, stop)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{host}]" if ":" in host else host
    info = app.plan_info()
    print(
        f"warden serve: listening on http://{shown}:{port} (plan {info['hash']}, "
        f"{len(info['sources'])} policy file(s), auth {'on' if token else 'off'})",
        flush=True,
    )

    app.start_watcher()
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
        server.server_close()
        signal.signal(signal.SIGTERM, previous)
    print("warden serve: stopped", file=sys.stderr, flush=True)
    return 0
