"""The simulated Discord's data model: guilds, members, channels, threads, messages, attachments.

Plain dataclasses, no I/O. The simulator mutates them from request handlers and controls; the payload
builders in `payloads.py` turn them into the JSON Discord would send. Snowflakes are real Discord snowflakes
(timestamp in the top bits) because discord.py derives `created_at` from them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ALL_PERMISSIONS",
    "DEFAULT_FILE_LIMIT",
    "DISCORD_EPOCH_MS",
    "ApiError",
    "AttachmentSpec",
    "Overwrite",
    "Perm",
    "RecordedRequest",
    "SimAttachment",
    "SimChannel",
    "SimGuild",
    "SimMember",
    "SimMessage",
    "SimRole",
    "SimThread",
    "SimUser",
    "SnowflakeGenerator",
    "filesize_limit_for_tier",
    "iso_time",
    "snowflake_time",
]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Upload limit per boost tier, per attachment (Discord's "Uploading Files" reference). Kept identical to discord.py's
# `Guild._PREMIUM_GUILD_LIMITS` so that the bot's own `guild.filesize_limit` check and the simulator agree.
DEFAULT_FILE_LIMIT = 10 * 1024 * 1024
_TIER_FILE_LIMITS = {0: DEFAULT_FILE_LIMIT, 1: DEFAULT_FILE_LIMIT, 2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}


def filesize_limit_for_tier(tier: int) -> int:
    """Largest single attachment a bot may upload into a guild with this boost tier."""
    return _TIER_FILE_LIMITS.get(tier, DEFAULT_FILE_LIMIT)


class Perm:
    """Permission bits used by the simulator (Discord's values)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    STREAM = 1 << 9
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40


ALL_PERMISSIONS = (1 << 51) - 1

EVERYONE_PERMISSIONS = (
    Perm.CREATE_INSTANT_INVITE
    | Perm.ADD_REACTIONS
    | Perm.STREAM
    | Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.CONNECT
    | Perm.SPEAK
    | Perm.CHANGE_NICKNAME
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.CREATE_PRIVATE_THREADS
    | Perm.SEND_MESSAGES_IN_THREADS
)
MODERATOR_PERMISSIONS = (
    Perm.KICK_MEMBERS
    | Perm.BAN_MEMBERS
    | Perm.MANAGE_GUILD
    | Perm.VIEW_AUDIT_LOG
    | Perm.MANAGE_MESSAGES
    | Perm.MENTION_EVERYONE
    | Perm.MANAGE_THREADS
    | Perm.MODERATE_MEMBERS
)
# What an invite with the usual bot scopes grants: enough for the /video flow, but not MANAGE_THREADS, so a
# locked thread really blocks the bot.
BOT_ROLE_PERMISSIONS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.SEND_MESSAGES_IN_THREADS
)


class ChannelType:
    """Discord channel types the simulator knows."""

    GUILD_TEXT = 0
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_FORUM = 15

    THREADS = frozenset({10, 11, 12})


class ApiError(Exception):
    """An error response exactly as Discord would send it: HTTP status plus JSON `{"message", "code"}`."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {message} (code {code})")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """JSON body of the error response."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def snowflake_time(snowflake: int) -> float:
    """Unix time (seconds) encoded in a snowflake."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000.0


def iso_time(ts: float) -> str:
    """ISO 8601 timestamp as Discord writes it."""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat()


class SnowflakeGenerator:
    """Monotonic snowflakes whose timestamp part is the simulator's clock."""

    def __init__(self) -> None:
        self._last = 0

    def next(self, now: float) -> int:
        """A fresh snowflake for time `now` (never equal to or below an earlier one)."""
        candidate = (max(int(now * 1000) - DISCORD_EPOCH_MS, 0) << 22) | (1 << 17)
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


@dataclass
class SimUser:
    """A Discord user (the bot or a member)."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None


@dataclass
class SimRole:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    color: int = 0


@dataclass
class SimMember:
    """A user's membership in one guild."""

    user: SimUser
    roles: list[int] = field(default_factory=list)
    joined_at: float = 1_735_689_600.0
    nick: str | None = None

    @property
    def id(self) -> int:
        """The member's user id."""
        return self.user.id


@dataclass
class Overwrite:
    """A channel permission overwrite (type 0 role, 1 member)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0


@dataclass
class SimChannel:
    """A guild channel or a thread. Thread-only fields are unused for other channel types."""

    id: int
    guild_id: int
    type: int
    name: str
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    last_message_id: int | None = None
    # threads
    owner_id: int | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    archive_timestamp: float = 0.0
    create_timestamp: float = 0.0
    message_count: int = 0
    total_message_sent: int = 0
    message_id: int | None = None  # the message a thread was started from (== thread id on Discord)
    applied_tags: list[int] = field(default_factory=list)
    invitable: bool = True
    member_ids: set[int] = field(default_factory=set)

    @property
    def is_thread(self) -> bool:
        """Whether this channel is a thread."""
        return self.type in ChannelType.THREADS


@dataclass(frozen=True)
class SimThread:
    """Snapshot of a thread as a member would see it."""

    id: int
    name: str
    parent_id: int
    owner_id: int | None
    archived: bool
    locked: bool
    message_id: int | None
    type: int


@dataclass
class SimGuild:
    """A guild with its roles, channels and members. Convenience ids name the default fixtures."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, SimRole]
    channels: dict[int, SimChannel]
    members: dict[int, SimMember]
    premium_tier: int = 0
    text_channel_id: int = 0
    forum_channel_id: int = 0
    moderator_id: int = 0
    moderator_role_id: int = 0
    member_ids: list[int] = field(default_factory=list)
    bot_role_id: int = 0

    @property
    def filesize_limit(self) -> int:
        """Per-attachment upload limit for bots in this guild."""
        return filesize_limit_for_tier(self.premium_tier)


@dataclass(frozen=True)
class AttachmentSpec:
    """An attachment a member uploads into a slash-command option.

    `size` overrides the reported size (to simulate a huge upload without the bytes); it defaults to len(data).
    """

    filename: str
    content_type: str | None = None
    data: bytes = b""
    width: int | None = None
    height: int | None = None
    size: int | None = None
    description: str | None = None


@dataclass
class SimAttachment:
    """A stored attachment. Uploaded files live on disk (`content` is their Path) so that a 100 MiB upload is
    never held in memory by the simulator; option attachments given as bytes stay in memory."""

    id: int
    filename: str
    size: int
    content_type: str | None
    content: bytes | Path
    channel_id: int
    url: str = ""
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def data(self) -> bytes:
        """The attachment's bytes (read from disk on each access for uploads)."""
        if isinstance(self.content, Path):
            return self.content.read_bytes()
        return self.content

    def head(self, n: int) -> bytes:
        """The first `n` bytes (for sniffing image sizes without reading the whole file)."""
        if isinstance(self.content, Path):
            with self.content.open("rb") as fh:
                return fh.read(n)
        return self.content[:n]


@dataclass
class SimMessage:
    """A message as stored by the simulator; `mentioned_user_ids` are the users Discord would ping."""

    id: int
    channel_id: int
    author_id: int
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[SimAttachment] = field(default_factory=list)
    nonce: str | int | None = None
    flags: int = 0
    allowed_mentions: dict[str, Any] | None = None
    mentioned_user_ids: list[int] = field(default_factory=list)
    mentioned_role_ids: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    created_at: float = 0.0
    edited_at: float | None = None
    type: int = 0
    guild_id: int | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_user_id: int | None = None
    interaction_name: str | None = None
    interaction_type: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    tts: bool = False
    message_reference: dict[str, Any] | None = None
    thread_id: int | None = None
    pinned: bool = False

    EPHEMERAL = 1 << 6
    LOADING = 1 << 7

    @property
    def ephemeral(self) -> bool:
        """Whether only the invoking member can see this message."""
        return bool(self.flags & self.EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Whether this is a deferred "is thinking…" message not yet edited."""
        return bool(self.flags & self.LOADING)


@dataclass
class RecordedRequest:
    """One REST or CDN request the simulator answered. Times are wall-clock epoch seconds."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    started: float
    finished: float = 0.0
    status: int = 0
    bucket: str | None = None
    body_json: Any = None
    files: list[dict[str, Any]] = field(default_factory=list)
    error_code: int | None = None
    response_json: Any = None
