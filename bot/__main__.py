"""Command line: `python -m bot [run|gateway|worker|demo|sync|migrate]`.

Parses the command, loads the settings (a bad one stops here with one line and exit status 2) and hands over
to bot/runner.py, which builds and wires the parts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.settings import Settings, SettingsError, load_settings

__all__ = ["main"]

USAGE_ERROR = 2


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Reelbot: reference images and a prompt in, a short video out, on Discord.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "gateway", "worker", "demo", "sync", "migrate"],
        help="run the bot, everything in one process (default); gateway: only the gateway shards and the answers "
        "to commands and buttons; worker: only the job work, no gateway connection (both need PostgreSQL); "
        "demo: a scripted /video against local simulators, no tokens needed; "
        "sync: push the slash commands to Discord now; migrate: bring the database up to date and exit",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="SQLITE_URL",
        help="with migrate: copy everything from this SQLite database (sqlite:///data/bot.db) into the empty "
        "PostgreSQL database that DATABASE_URL names",
    )
    args = parser.parse_args(argv)
    if args.source is not None and args.command != "migrate":
        parser.error("--from goes with the migrate command")
    return args


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        # One line naming the setting, no traceback: this is what an operator sees in `docker logs`.
        print(f"reelbot: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.command == "demo":
        from bot.demo import run_demo

        return asyncio.run(run_demo())
    settings = _settings_or_exit()
    from bot.runner import run_bot, run_migrate, run_sync

    if args.command == "migrate":
        return asyncio.run(run_migrate(settings, args.source))
    if args.command == "sync":
        return asyncio.run(run_sync(settings))
    from bot.app import Role

    role = {"gateway": Role.GATEWAY, "worker": Role.WORKER}.get(args.command, Role.ALL)
    return run_bot(settings, role)


if __name__ == "__main__":
    raise SystemExit(main())
