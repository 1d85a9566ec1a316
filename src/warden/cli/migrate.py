"""``warden state migrate``: apply the state store's pending schema migrations.

Registered under ``warden state`` by ``warden.cli.hook`` (which owns the ``state`` command);
kept here, apart from the hook hot path. Works on both engines: a SQLite file or a
``postgresql://`` URL (docs/fleet.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register_migrate(subparsers: Any, policy_options: Callable[[Any], None]) -> None:
    m = subparsers.add_parser(
        "migrate",
        help="apply pending schema migrations to the state store (SQLite or PostgreSQL)",
        description="Bring the state store's schema to this warden's version. The store is "
        "--state, else $WARDEN_STATE, else settings.state of the policy files. Migrations "
        "are versioned, applied in one transaction, and safe to run from several hosts at "
        "once. With --check nothing changes: exit 1 if migrations are pending.",
    )
    m.add_argument("--state", metavar="PATH|URL", help="the store (default: as warden finds it)")
    m.add_argument("--check", action="store_true", help="only report; exit 1 when pending")
    m.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    policy_options(m)
    m.set_defaults(func=run_state_migrate)


def _location(args: argparse.Namespace) -> str:
    if args.state:
        return str(args.state)
    from warden import hooks

    engine = hooks.state_engine(args.policy, args.user_policies)
    return str(engine.state_location())


def _open_unmigrated(location: str) -> tuple[Any, int]:
    """The store at ``location`` as it is (no migration yet), and this warden's target."""
    if location.startswith(("postgresql://", "postgres://")):
        from warden import state_pg

        return state_pg.open_pg_store(location, migrate=False), state_pg.latest_version()
    import sqlite3

    from warden import state
    from warden.errors import StateError

    path = state._resolve(location, True)
    try:
        conn = sqlite3.connect(path, timeout=state.BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state database {path}: {exc}") from exc
    store = state.Store(conn, path)
    try:
        store._configure()
    except BaseException:
        store.close()
        raise
    return store, state.latest_version()


def run_state_migrate(args: argparse.Namespace) -> int:
    import json

    location = _location(args)
    store, target = _open_unmigrated(location)
    try:
        before = int(store.schema_version())
        store._check_version(before, target)
        after = before if args.check else int(store.migrate())
    finally:
        store.close()
    pending = list(range(before + 1, target + 1)) if args.check else []
    doc = {
        "state": store.location,
        "before": before,
        "after": after,
        "target": target,
        "pending": pending,
    }
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    elif args.check:
        state = f"{len(pending)} migration(s) pending" if pending else "up to date"
        print(f"{store.location}: schema version {before}, this warden's {target}: {state}")
    elif after == before:
        print(f"{store.location}: schema version {after}, up to date")
    else:
        print(f"{store.location}: migrated schema version {before} -> {after}")
    return 1 if pending else 0
