"""The gateway WebSocket: HELLO, heartbeats, IDENTIFY → READY + GUILD_CREATE, RESUME, member chunks, dispatch.

Sharding works as on Discord: IDENTIFY may carry `[shard_id, shard_count]`; each session receives the events of
the guilds with `(guild_id >> 22) % shard_count == shard_id` (events without a guild go to shard 0); IDENTIFYs
faster than `max_concurrency` per 5 seconds are refused with Invalid Session.

Sessions outlive their sockets so a client that reconnects can RESUME and receive the events it missed.
Dispatch is synchronous (events are queued per connection and written by a task), so simulator controls
that change state can emit events without awaiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .http_util import sim_of
from .payloads import guild_create_json, member_json, user_json

if TYPE_CHECKING:
    from .core import SimCore

__all__ = ["GatewayConnection", "GatewayHub", "GatewaySession", "Intent"]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41250
IDENTIFY_WINDOW = 5.0  # seconds per IDENTIFY and rate-limit key (Discord's max_concurrency rule)
_REPLAY_BUFFER = 2000


class Intent:
    """Gateway intent bits that decide who receives which events."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12


class _Encoder:
    """Transport compression for one connection (zlib-stream or zstd-stream share one context per socket)."""

    def __init__(self, mode: str | None) -> None:
        self.mode = mode if mode in ("zlib-stream", "zstd-stream") else None
        self._zlib: Any = None
        self._zstd: Any = None
        if self.mode == "zlib-stream":
            self._zlib = zlib.compressobj()
        elif self.mode == "zstd-stream":
            import zstandard

            self._zstd = zstandard.ZstdCompressor().compressobj()

    def encode(self, text: str) -> str | bytes:
        """One gateway message as a text frame or a complete compressed binary frame."""
        raw = text.encode()
        if self._zlib is not None:
            return bytes(self._zlib.compress(raw) + self._zlib.flush(zlib.Z_SYNC_FLUSH))
        if self._zstd is not None:
            import zstandard

            return bytes(self._zstd.compress(raw) + self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
        return text


class GatewayConnection:
    """One WebSocket; frames are queued and written in order by a writer task."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None, query: dict[str, str]) -> None:
        self.ws = ws
        self.encoder = _Encoder(compress)
        self.query = query
        self.session: GatewaySession | None = None
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send(self, payload: dict[str, Any]) -> None:
        """Queue a gateway payload."""
        self._queue.put_nowait(payload)

    async def _write_loop(self) -> None:
        while True:
            payload = await self._queue.get()
            if payload is None or self.ws.closed:
                return
            frame = self.encoder.encode(json.dumps(payload))
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return

    async def close(self, code: int = 4000, message: bytes = b"") -> None:
        """Close the socket with a gateway close code."""
        self._queue.put_nowait(None)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=message)

    async def finish(self) -> None:
        """Stop the writer task."""
        self._queue.put_nowait(None)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


@dataclass
class GatewaySession:
    """An identified session; keeps recent events for RESUME."""

    id: str
    intents: int
    shard_id: int
    shard_count: int
    seq: int = 0
    conn: GatewayConnection | None = None
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_REPLAY_BUFFER))

    def wants_guild(self, guild_id: int | None) -> bool:
        """Whether this shard carries events of that guild (DMs go to shard 0)."""
        if guild_id is None:
            return self.shard_id == 0
        return (guild_id >> 22) % self.shard_count == self.shard_id

    def push(self, event: str, data: Any) -> None:
        """Assign the next sequence number, remember the event and send it if connected."""
        self.seq += 1
        frame = {"op": 0, "t": event, "s": self.seq, "d": data}
        self.events.append(frame)
        if self.conn is not None:
            self.conn.send(frame)


class GatewayHub:
    """All gateway sessions and sockets of one simulator."""

    def __init__(self, sim: SimCore, *, shards: int = 1, max_concurrency: int = 1) -> None:
        self._sim = sim
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[GatewayConnection] = set()
        # What GET /gateway/bot answers; max_concurrency also paces IDENTIFY (see `_identify`).
        self.recommended_shards = shards
        self.max_concurrency = max_concurrency
        # Discord's 5 seconds. A restarted bot meets it too (its last IDENTIFY was moments ago), and discord.py
        # then waits 5 s and IDENTIFYs again; a test that restarts bots often may shorten it knowingly.
        self.identify_window = IDENTIFY_WINDOW
        self._last_identify: dict[int, float] = {}  # rate-limit key → monotonic time of its last IDENTIFY
        self.identify_count = 0
        self.identify_refused = 0
        self.resume_count = 0
        self.ready_count = 0
        self.compressions: list[str | None] = []

    # -- dispatch ------------------------------------------------------------------------------------------

    def dispatch(self, event: str, data: Any, *, guild_id: int | None = None, intent: int | None = None) -> None:
        """Send an event to every session that should see it (by shard and intents)."""
        for session in list(self.sessions.values()):
            if not session.wants_guild(guild_id):
                continue
            if intent is not None and not session.intents & intent:
                continue
            session.push(event, data)

    def shard_events(self, shard_id: int, event: str | None = None) -> list[dict[str, Any]]:
        """The dispatches sent to sessions of one shard (optionally one event type), oldest first, as frames
        `{"op": 0, "t", "s", "d"}`; READY and RESUMED included. Kept per session for RESUME (the last 2000)."""
        return [
            frame
            for session in self.sessions.values()
            if session.shard_id == shard_id
            for frame in session.events
            if event is None or frame["t"] == event
        ]

    # -- controls --------------------------------------------------------------------------------------------

    async def disconnect_all(self, code: int = 4000) -> None:
        """Close every socket (sessions are kept, so clients RESUME)."""
        for conn in list(self.connections):
            await conn.close(code)

    async def shutdown(self) -> None:
        """Close every socket with 1001 and forget the sessions."""
        for conn in list(self.connections):
            await conn.close(1001)
            await conn.finish()
        self.connections.clear()
        self.sessions.clear()

    # -- socket handler --------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The `/gateway` WebSocket endpoint."""
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024, autoping=True)
        await ws.prepare(request)
        compress = request.query.get("compress")
        self.compressions.append(compress)
        conn = GatewayConnection(ws, compress, dict(request.query))
        self.connections.add(conn)
        conn.send({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_message(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._on_message(conn, msg.data.decode())
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(conn)
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            await conn.finish()
            self._sim.notify()
        return ws

    async def _on_message(self, conn: GatewayConnection, text: str) -> None:
        try:
            payload = json.loads(text)
            op = payload["op"]
            data = payload.get("d")
        except (ValueError, KeyError, TypeError):
            await conn.close(4002, b"Error while decoding payload.")
            return
        if op == 1:
            conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(conn, data)
        elif op == 6:
            await self._resume(conn, data)
        elif op == 8:
            self._request_members(conn, data)
        elif op in (3, 4):
            return  # presence and voice updates: accepted, nothing to simulate
        else:
            await conn.close(4001, b"Unknown opcode.")

    def _token_ok(self, token: Any) -> bool:
        token = str(token or "")
        token = token.removeprefix("Bot ")
        return secrets.compare_digest(token, self._sim.token)

    async def _identify(self, conn: GatewayConnection, data: Any) -> None:
        sim = self._sim
        self.identify_count += 1
        if not isinstance(data, dict) or not self._token_ok(data.get("token")):
            await conn.close(4004, b"Authentication failed.")
            return
        if conn.session is not None:
            await conn.close(4005, b"Already authenticated.")
            return
        shard = data.get("shard") or [0, 1]
        try:
            shard_id, shard_count = int(shard[0]), int(shard[1])
        except (TypeError, ValueError, IndexError):
            await conn.close(4010, b"Invalid shard.")
            return
        if shard_count < 1 or not 0 <= shard_id < shard_count:
            await conn.close(4010, b"Invalid shard.")
            return
        if not self._may_identify(shard_id):
            # Discord: an app that IDENTIFYs faster than max_concurrency per 5 seconds gets Invalid Session
            # (op 9) with d=false: no session; the client waits and IDENTIFYs again.
            self.identify_refused += 1
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            sim.notify()
            return
        # A new session for this shard supersedes disconnected old ones (they would buffer events forever).
        for old_id, old in list(self.sessions.items()):
            if old.shard_id == shard_id and old.conn is None:
                del self.sessions[old_id]
        session = GatewaySession(secrets.token_hex(16), int(data.get("intents") or 0), shard_id, shard_count)
        session.conn = conn
        conn.session = session
        self.sessions[session.id] = session
        guilds = [g for g in sim.guilds if session.wants_guild(g.id)]
        me = user_json(sim.bot_user) | {"verified": True, "mfa_enabled": False, "bot": True}
        session.push(
            "READY",
            {
                "v": 10,
                "user": me,
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "session_id": session.id,
                "session_type": "normal",
                "resume_gateway_url": sim.gateway_url,
                "shard": [shard_id, shard_count],
                "application": {"id": str(sim.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["local"],
                "user_settings": {},
            },
        )
        for guild in guilds:
            session.push("GUILD_CREATE", guild_create_json(sim, guild))
        self.ready_count += 1
        sim.notify()

    def _may_identify(self, shard_id: int) -> bool:
        """One IDENTIFY per `identify_window` (5 s) per rate-limit key `shard_id % max_concurrency`, so up to
        max_concurrency shards may start together. Real time, like the REST buckets: the simulator's clock
        offset models ages of tokens and URLs, not the passage of time between requests."""
        key = shard_id % max(self.max_concurrency, 1)
        now = time.monotonic()
        last = self._last_identify.get(key)
        if last is not None and now - last < self.identify_window:
            return False
        self._last_identify[key] = now
        return True

    async def _resume(self, conn: GatewayConnection, data: Any) -> None:
        if not isinstance(data, dict) or not self._token_ok(data.get("token")):
            await conn.close(4004, b"Authentication failed.")
            return
        session = self.sessions.get(str(data.get("session_id")))
        if session is None:
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        self.resume_count += 1
        if session.conn is not None and session.conn is not conn:
            await session.conn.close(4000)
        session.conn = conn
        conn.session = session
        try:
            seq = int(data.get("seq") or 0)
        except (TypeError, ValueError):
            seq = 0
        for frame in list(session.events):
            if frame["s"] > seq:
                conn.send(frame)
        session.push("RESUMED", {"_trace": ["reelbot-discord-sim"]})
        self._sim.notify()

    def _request_members(self, conn: GatewayConnection, data: Any) -> None:
        session = conn.session
        if session is None or not isinstance(data, dict):
            return
        guild = self._sim.guild_by_id.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        members = list(guild.members.values())
        user_ids = data.get("user_ids")
        if user_ids:
            wanted = {int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])}
            members = [m for m in members if m.id in wanted]
        query = data.get("query")
        if query:
            members = [m for m in members if m.user.username.lower().startswith(str(query).lower())]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [member_json(m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        session.push("GUILD_MEMBERS_CHUNK", chunk)


async def gateway_handler(request: web.Request) -> web.StreamResponse:
    """aiohttp handler delegating to the simulator's hub."""
    return await sim_of(request).gateway.handle(request)
