"""The composition root: building the parts from settings, wiring them together, and running them.

`assemble()` is the one place that decides which parts a working Reelbot is made of (the store, the provider
client, the services, the poller, the bot) and hands each its dependencies; `python -m bot`, the demo, the
benchmarks and the end-to-end tests all go through it, so they run the same wiring. The parts themselves
build nothing of their own beyond what is theirs (the bot's own Discord adapter, `DiscordChat`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import discord

from bot.app import Reelbot, Role, StartupOptions
from bot.commands_sync import sync_commands
from bot.discord_endpoints import point_discord_at
from bot.domain.clock import Clock, system_clock
from bot.health import HealthServer, database_check, gateway_check, poller_check
from bot.logs import configure_logging
from bot.metrics import MeteredProvider, Metrics, job_observer
from bot.provider.client import AimlClient
from bot.provider.download import MediaDownloader
from bot.services.card_controls import CardControls
from bot.services.characters import CharacterLibrary, CharacterLimits
from bot.services.intake import Intake, QuotaPolicy
from bot.services.moderator_actions import ModeratorActions
from bot.services.poller import Poller, PollerConfig, worker_name
from bot.services.ports import ChatPort
from bot.services.styles import StyleBook
from bot.settings import Settings
from bot.storage import Backend, DatabaseUrl, Store
from bot.traffic.discord import DiscordScheduler
from bot.traffic.foreground import Foreground
from bot.traffic.provider import PacerConfig, ProviderPacer
from bot.traffic.state import LocalTrafficState, TrafficState

__all__ = ["assemble", "process_name", "run_bot", "run_migrate", "run_sync", "serve"]

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 8.0
# Seconds a member's allowance and a model's typical generation time, read for one progress card, serve other cards.
_CARD_QUOTA_FRESH = 10.0


def process_name(settings: Settings) -> str:
    """`PROCESS_NAME`, or host name and process id: names this process in metrics, logs and job leases."""
    return settings.process_name or f"{socket.gethostname()}:{os.getpid()}"


def _metric_labels(settings: Settings, role: Role) -> dict[str, str] | None:
    """Constant labels of every series a process of a split deployment exports: which role, which process, which
    shards. One all-in-one process exports what it always did, unlabelled."""
    if role is Role.ALL:
        return None
    shards = settings.shards
    shown = ",".join(map(str, shards)) if shards is not None else ("" if role is Role.WORKER else "auto")
    return {"role": role.value, "process": process_name(settings), "shards": shown}


def media_dir(settings: Settings) -> Path:
    """Where temporary video files live (`MEDIA_DIR`; see `Settings.media_path`)."""
    return settings.media_path


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings, *, options: StartupOptions | None = None, clock: Clock = system_clock
) -> AsyncIterator[Reelbot]:
    """A ready-to-start bot with every part wired; closes all of them on exit."""
    point_discord_at(settings.discord_rest_base, settings.discord_gateway_url)
    options = options or StartupOptions()
    store = await Store.open(settings.database, clock=clock)
    downloader = MediaDownloader(allow_private_networks=settings.media_allow_private_networks)
    name = process_name(settings)
    try:
        # The AI/ML API sets no cookies worth keeping; a jar that ignores them saves work on every request. The
        # user agent names the process, so the provider's logs (and our simulator) can tell the workers apart.
        async with (
            aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), headers={"User-Agent": f"Reelbot ({name})"}
            ) as session,
            _traffic_states(settings) as (discord_state, provider_state),
        ):
            metrics = Metrics(labels=_metric_labels(settings, options.role))
            provider = MeteredProvider(AimlClient(session, settings.aiml_base, settings.aiml_api_key), metrics)
            intake = Intake(
                store,
                model=settings.video_model,
                policy=QuotaPolicy(
                    default_limit=settings.quota_default_limit,
                    window_seconds=settings.quota_window_seconds,
                    max_active=settings.max_active_jobs_per_user,
                    approval_timeout=settings.job_timeout_seconds,
                ),
                clock=clock,
                card_quota_fresh=_CARD_QUOTA_FRESH,
            )
            moderators = ModeratorActions(store, intake, default_limit=settings.quota_default_limit, clock=clock)
            characters = CharacterLibrary(
                store,
                CharacterLimits(
                    per_member=settings.characters_per_member,
                    shared_per_server=settings.shared_characters_per_server,
                ),
            )
            # Only a SQLite store has one worker for sure; on PostgreSQL other processes may hold live leases.
            sole = settings.database.backend is Backend.SQLITE
            config = PollerConfig.from_settings(settings, media_dir(settings), sole_worker=sole)
            # The traffic states of the Discord budget (per bot token) and of the provider pace (per API key) are
            # the deployment's; one foreground: interactions arriving make all background work wait a little.
            foreground = Foreground()
            traffic = DiscordScheduler(
                discord_state,
                per_second=settings.discord_requests_per_second,
                on_rate_limited=lambda scope: metrics.discord_rate_limited.labels(scope=scope).inc(),
                foreground=foreground,
            )
            pacer = ProviderPacer(
                provider_state,
                PacerConfig(cap=settings.provider_requests_per_second, max_in_flight=config.max_concurrency),
                foreground=foreground,
            )

            def make_poller(chat: ChatPort) -> Poller:
                return Poller(
                    store=store,
                    provider=provider,
                    downloader=downloader,
                    chat=chat,
                    config=config,
                    clock=clock,
                    on_change=job_observer(metrics, store.jobs.is_free),
                    card_context=intake.owner_card_context,
                    pacer=pacer,
                    foreground=foreground,
                    owner=worker_name(name),
                )

            bot = Reelbot(
                settings=settings,
                store=store,
                intake=intake,
                card_controls=CardControls(store, intake, characters=characters),
                moderators=moderators,
                characters=characters,
                styles=StyleBook(store),
                poller_factory=make_poller,
                options=options,
                metrics=metrics,
                traffic=traffic,
            )
            try:
                yield bot
            finally:
                if not bot.is_closed():
                    await bot.close()
    finally:
        await downloader.close()
        await store.close()


@contextlib.asynccontextmanager
async def _traffic_states(settings: Settings) -> AsyncIterator[tuple[TrafficState, TrafficState]]:
    """(Discord budget, provider pace). On PostgreSQL they live in the database, shared by every process of the
    deployment, whatever its role (keyed by hashes of the bot token and of the API key); a SQLite store serves
    one process, which keeps them in memory."""
    if settings.database.backend is not Backend.POSTGRESQL:
        yield LocalTrafficState(), LocalTrafficState()
        return
    from bot.traffic.shared import PostgresTrafficState, budget_scope, open_traffic_pool

    pool = await open_traffic_pool(settings.database)
    states = (
        PostgresTrafficState(pool, budget_scope("discord", settings.discord_token.get_secret_value())),
        PostgresTrafficState(pool, budget_scope("provider", settings.aiml_api_key.get_secret_value())),
    )
    try:
        yield states
    finally:
        for state in states:
            await state.close()
        await pool.close()


def split_refused(settings: Settings, role: Role) -> str | None:
    """Why this role cannot run on this database, in one line (None: it can)."""
    if role is not Role.ALL and settings.database.backend is Backend.SQLITE:
        return (
            f"python -m bot {role.value} shares the work with other processes, which needs PostgreSQL: set "
            "DATABASE_URL=postgresql://... (a SQLite file serves one process: run python -m bot)"
        )
    return None


async def serve(
    settings: Settings,
    *,
    role: Role = Role.ALL,
    options: StartupOptions | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run one role until SIGTERM/SIGINT (or `stop`), then shut down cleanly. Returns the exit status."""
    refused = split_refused(settings, role)
    if refused is not None:
        print(f"reelbot: configuration error: {refused}", file=sys.stderr)
        return 2
    options = options or StartupOptions.for_role(role)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with assemble(settings, options=options) as bot, _health_server(settings, bot):
        token = settings.discord_token.get_secret_value()
        # A worker logs in over REST only (which also runs the bot's set-up: extensions, the poller) and never
        # opens a gateway connection; the other roles connect their shards.
        main = _work_only(bot, token, stop) if options.role is Role.WORKER else bot.start(token)
        running = asyncio.create_task(main, name="discord")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if running.done():
            exc = running.exception()
            if isinstance(exc, discord.LoginFailure):
                print("reelbot: configuration error: DISCORD_TOKEN was refused by Discord", file=sys.stderr)
                return 2
            if exc is not None:
                log.critical("the Discord connection ended with an error", exc_info=exc)
                return 1
        log.info("shutting down: no new work; jobs in flight resume at the next start")
        try:
            await asyncio.wait_for(bot.close(), SHUTDOWN_GRACE_SECONDS)
        except TimeoutError:
            log.warning("shutdown took too long; the remaining work resumes at the next start")
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    return 0


async def _work_only(bot: Reelbot, token: str, stop: asyncio.Event) -> None:
    await bot.login(token)
    await stop.wait()


@contextlib.asynccontextmanager
async def _health_server(settings: Settings, bot: Reelbot) -> AsyncIterator[HealthServer | None]:
    """`/healthz` and `/metrics` on METRICS_PORT while the bot runs; nothing when the setting is unset."""
    if settings.metrics_port is None:
        yield None
        return

    async def refresh() -> None:
        bot.metrics.set_job_counts(await bot.store.jobs.counts_by_status())
        if bot.traffic is not None:
            bot.metrics.discord_waiting.set(bot.traffic.waiting)
        bot.metrics.provider_pace.set(bot.poller.pacer.rate)
        bot.metrics.provider_waiting.set(bot.poller.pacer.waiting)

    # A healthy poller shows a sign of life at least every poll interval, unless a round is busy downloading and
    # posting large videos (the download alone may take its 120 s timeout); beyond this, call it stuck.
    stale_after = 3 * settings.poll_interval_seconds + 600
    role = bot.options.role
    checks = {"database": database_check(bot.store)}
    if role is not Role.WORKER:  # a worker has no gateway connection to check
        checks["gateway"] = gateway_check(bot)
    if bot.options.start_poller:  # a gateway process runs no poller
        checks["poller"] = poller_check(bot.poller, stale_after=stale_after)
    server = HealthServer(
        bot.metrics,
        checks,
        port=settings.metrics_port,
        before_scrape=refresh,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _logging(settings: Settings) -> None:
    configure_logging(
        settings.log_level,
        settings.log_format,
        secrets=(
            settings.discord_token.get_secret_value(),
            settings.aiml_api_key.get_secret_value(),
            *filter(None, [settings.database.password]),
        ),
    )


def run_bot(settings: Settings, role: Role = Role.ALL) -> int:
    _logging(settings)
    return asyncio.run(serve(settings, role=role))


async def run_migrate(settings: Settings, source: str | None = None) -> int:
    """Bring the database up to date; with `source` (a SQLite URL), first move that database's contents into it."""
    _logging(settings)
    from bot.storage.transfer import TargetNotEmpty, move_store

    try:
        if source is None:
            store = await Store.open(settings.database)
            await store.close()
            print(f"reelbot: database {settings.database} is up to date")
            return 0
        copied = await move_store(DatabaseUrl.parse(source), settings.database)
    except (ValueError, TargetNotEmpty, ConnectionError) as exc:  # messages name databases without passwords
        print(f"reelbot: migrate: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {table}" for table, n in copied.items())
    print(f"reelbot: copied {counts} from {source} into {settings.database}")
    return 0


async def run_sync(settings: Settings) -> int:
    """Log in over REST only (no gateway), push the command definitions, and exit."""
    _logging(settings)
    options = StartupOptions(sync_commands=False, start_poller=False)
    async with assemble(settings, options=options) as bot:
        await bot.login(settings.discord_token.get_secret_value())
        await sync_commands(bot.tree, bot.store, dev_guild_id=settings.dev_guild_id, force=True)
    print("reelbot: slash commands synced")
    return 0
