"""``warden hook claude|generic|install`` and ``warden state show|clear|prune``."""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    h = sub.add_parser(
        "hook",
        help="answer agent hook events (Claude Code, generic)",
        description="Agent hooks: `warden hook claude` speaks the Claude Code "
        "hook protocol (exit 0 or 2 only); `warden hook generic` takes a plain "
        "input object and prints the decision document; `warden hook install "
        "claude` adds warden to .claude/settings.json.",
    )
    h.set_defaults(func=_usage(h))
    hs = h.add_subparsers(dest="hook_command", metavar="SUBCOMMAND")

    c = hs.add_parser(
        "claude",
        help="answer one Claude Code hook event read from stdin",
        description="Read one Claude Code hook event (JSON) on stdin and answer "
        "in the protocol: JSON on stdout with exit 0, or the reason on stderr "
        "with exit 2. Policy discovery starts at $CLAUDE_PROJECT_DIR.",
    )
    c.add_argument(
        "--server",
        metavar="URL",
        help="ask a `warden serve` instance first "
        "(bearer token from $WARDEN_TOKEN; after $WARDEN_SERVER_TIMEOUT seconds, "
        "default 2, decide locally)",
    )
    _policy_options(c)
    c.set_defaults(func=run_claude)

    g = hs.add_parser(
        "generic",
        help="evaluate one plain input object from stdin",
        description="Read one input object (DESIGN §3) on stdin, print the "
        "decision document; exit 0 allow, 2 deny, 3 ask, 65 bad input, "
        "78 bad policy.",
    )
    _policy_options(g)
    g.add_argument("--compact", action="store_true", help="print the JSON on one line")
    g.set_defaults(func=run_generic)

    i = hs.add_parser(
        "install",
        help="add warden to an agent's hook settings",
        description="Merge the warden hook into .claude/settings.json of the "
        "project (or ~/.claude/settings.json with --user), keeping every "
        "existing key and hook. Running it twice changes nothing.",
    )
    i.add_argument("agent", choices=["claude"], help="the agent (claude)")
    i.add_argument("--user", action="store_true", help="install into ~/.claude/settings.json")
    i.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the settings snippet instead of writing it",
    )
    i.add_argument(
        "--command",
        default=None,
        metavar="CMD",
        help="the hook command (default: `warden hook claude`)",
    )
    i.add_argument(
        "--path",
        default=None,
        metavar="FILE",
        help="settings file to merge into (default: see --user)",
    )
    i.set_defaults(func=run_install)

    s = sub.add_parser(
        "state",
        help="show, clear or prune the recorded agent sessions",
        description="The session state that `state:` conditions read.",
    )
    s.set_defaults(func=_usage(s))
    ss = s.add_subparsers(dest="state_command", metavar="SUBCOMMAND")
    show = ss.add_parser("show", help="list sessions, or one session's recorded events")
    show.add_argument("--session", metavar="ID", help="the session id (default: list sessions)")
    show.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    _policy_options(show)
    show.set_defaults(func=run_state_show)
    clear = ss.add_parser("clear", help="delete one session's recorded events")
    clear.add_argument("--session", metavar="ID", required=True, help="the session id")
    _policy_options(clear)
    clear.set_defaults(func=run_state_clear)
    prune = ss.add_parser("prune", help="delete sessions inactive for longer than an age")
    prune.add_argument(
        "--older-than",
        metavar="AGE",
        default=None,
        help="e.g. 30d, 12h (default: settings.state_retention, 30d)",
    )
    _policy_options(prune)
    prune.set_defaults(func=run_state_prune)
    from warden.cli.migrate import register_migrate  # fleet mode: SQLite or PostgreSQL

    register_migrate(ss, _policy_options)


def _policy_options(p: argparse.ArgumentParser) -> None:
    from warden.cli.common import add_policy_options

    add_policy_options(p)


def _usage(p: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 64

    return show


# ------------------------------------------------------------------------------- hook


def run_claude(args: argparse.Namespace) -> int:
    from warden import hooks

    reply = hooks.run_claude(policies=args.policy, user=args.user_policies, server=args.server)
    return reply.emit()


def run_generic(args: argparse.Namespace) -> int:
    from warden import hooks
    from warden.cli.common import print_json

    doc, code = hooks.run_generic(hooks.read_stdin(), policies=args.policy, user=args.user_policies)
    print_json(doc, pretty=not args.compact)
    return code


def run_install(args: argparse.Namespace) -> int:
    import json

    from warden import hooks

    command = args.command or hooks.HOOK_COMMAND
    if args.print_only:
        sys.stdout.write(json.dumps(hooks.snippet(command), indent=2) + "\n")
        return 0
    path = args.path or hooks.settings_path(args.user)
    added = hooks.install_claude(path, command)
    if added:
        print(f"warden hook installed in {path} for: {', '.join(added)}")
    else:
        print(f"warden hook already installed in {path} (nothing changed)")
    return 0


# ------------------------------------------------------------------------------ state


def _store(args: argparse.Namespace) -> tuple[Any, Any]:
    from warden import hooks

    engine = hooks.state_engine(args.policy, args.user_policies)
    return engine, engine.store(create=False)


def run_state_show(args: argparse.Namespace) -> int:
    import json

    from warden import hooks

    engine, store = _store(args)
    try:
        if args.session is None:
            sessions = [] if store is None else store.sessions()
            if args.format == "json":
                print(
                    json.dumps(
                        [
                            {
                                "session_id": s.session_id,
                                "events": s.events,
                                "first": hooks.iso(s.first_ts),
                                "last": hooks.iso(s.last_ts),
                            }
                            for s in sessions
                        ],
                        indent=2,
                        ensure_ascii=False,
                    )
                )
                return 0
            if not sessions:
                print(f"no sessions recorded ({engine.state_location()})")
            for s in sessions:
                print(
                    f"{s.session_id}  {s.events:>5} events  {hooks.iso(s.first_ts)} .. "
                    f"{hooks.iso(s.last_ts)}"
                )
            return 0
        events = [] if store is None else store.session_events(args.session)
        if args.format == "json":
            print(
                json.dumps(
                    [
                        {
                            "id": e.id,
                            "ts": e.ts,
                            "time": hooks.iso(e.ts),
                            "event": e.event,
                            "tool": e.tool,
                            "data": e.data,
                        }
                        for e in events
                    ],
                    indent=2,
                    ensure_ascii=False,
                )
            )
            return 0
        if not events:
            print(f"no events recorded for session {args.session}")
            return 0
        print(f"session {args.session}: {len(events)} event{'s' if len(events) != 1 else ''}")
        for e in events:
            print(f"{hooks.iso(e.ts)}  {e.event:<18} {e.tool or '-':<12} {hooks.summarize(e.data)}")
        return 0
    finally:
        engine.close()


def run_state_clear(args: argparse.Namespace) -> int:
    engine, store = _store(args)
    try:
        n = 0 if store is None else store.clear_session(args.session)
        print(f"cleared session {args.session}: {n} event{'s' if n != 1 else ''} deleted")
        return 0
    finally:
        engine.close()


def run_state_prune(args: argparse.Namespace) -> int:
    from warden import hooks
    from warden.durations import now, parse_duration
    from warden.errors import UsageError

    if args.older_than is not None:
        try:
            age = parse_duration(args.older_than)
        except ValueError as exc:
            raise UsageError(f"--older-than: {exc}") from None
    engine, store = _store(args)
    try:
        if args.older_than is None:
            age = hooks.retention_seconds(engine.settings)
        n = 0 if store is None else store.prune(age, now=now())
        print(
            f"pruned {n} event{'s' if n != 1 else ''} of sessions inactive for more than "
            f"{args.older_than or engine.settings.get('state_retention') or '30d'}"
        )
        return 0
    finally:
        engine.close()
