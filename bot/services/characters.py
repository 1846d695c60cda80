"""The character library, without Discord: saving, listing, finding and deleting characters, the suggestions
while a member types a name, and reading a job's characters from their sheets just before it is charged.

A character is personal by default; moderators may share one with the whole server. A member sees their own
and the server's shared ones; names are unique among a member's own characters and among the shared ones,
whatever the case. Characters are per server: one saved on server A is not visible on B.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.cast import MAX_ANGLES, CastMember, Character, clean_name, name_key, name_problem
from bot.domain.text import escape_markdown, shorten
from bot.domain.validation import ImageMeta, image_problems
from bot.domain.words import blocked_phrase
from bot.services.media import MediaGone, MediaHost, MediaProblem, Unavailable
from bot.storage import NotSaved, Store

__all__ = [
    "MAX_SUGGESTIONS",
    "CharacterLibrary",
    "CharacterLimits",
    "NewCharacter",
    "Suggestion",
]

MAX_SUGGESTIONS = 25
"""Discord shows at most 25 autocomplete suggestions."""

_TOKEN = re.compile(r"#([0-9]{1,20})")
"""A suggestion's value: `#` and the character's id. No name starts with `#`, so a typed name never looks like
one, and two characters of the same name (one's own, one shared) stay distinct."""


@dataclass(frozen=True)
class CharacterLimits:
    """From the settings: how many characters a member may keep, and how many a server may share."""

    per_member: int = 25
    shared_per_server: int = 100


@dataclass(frozen=True)
class NewCharacter:
    """What `/character create` was given. `images` are the front view, then 1–4 other angles."""

    guild_id: int
    channel_id: int
    owner_id: int
    name: str
    shared: bool
    by_moderator: bool
    images: tuple[ImageMeta, ...]


@dataclass(frozen=True)
class Suggestion:
    """One autocomplete choice: what the member sees, and the value sent back when they pick it."""

    label: str
    value: str


def _label(character: Character, user_id: int) -> str:
    whose = "shared" if character.shared else "yours" if character.owner_id == user_id else "a member's"
    angles = f"{character.angles} angle{'s' if character.angles != 1 else ''}"
    return f"{character.name} · {whose} · front + {angles}"


def _matches(characters: Sequence[Character], typed: str) -> list[Character]:
    """Names starting with what was typed first, then names containing it; each group in the given order."""
    text = name_key(typed.lstrip("@"))
    starts = [c for c in characters if name_key(c.name).startswith(text)]
    inside = [c for c in characters if text in name_key(c.name) and c not in starts]
    return starts + inside


class CharacterLibrary:
    def __init__(self, store: Store, limits: CharacterLimits | None = None) -> None:
        self._store = store
        self.limits = limits or CharacterLimits()

    # ------------------------------------------------------------------ saving

    async def check_new(self, new: NewCharacter) -> list[str]:
        """Everything wrong with a character before its sheet is posted, in words for the member (empty: fine).
        `save` checks the name and the limits again, atomically."""
        problems = []
        problem = name_problem(clean_name(new.name))
        if problem:
            problems.append(problem)
        elif blocked_phrase(new.name, [w.phrase for w in await self._store.teams.words(new.guild_id)]):
            # The name goes on the public sheet and on every card using it; never repeat the word back.
            problems.append("The name has a word or phrase this server does not allow. Choose another name.")
        labels = ["Front view", *(f"Angle {n}" for n in range(1, len(new.images)))]
        for image, label in zip(new.images, labels, strict=True):
            problems.extend(image_problems(image, label))
        if len(new.images) < 2:
            problems.append("Attach at least one other angle (`reference1`) besides the front view.")
        elif len(new.images) > 1 + MAX_ANGLES:
            problems.append(f"A character has at most {MAX_ANGLES} other angles.")
        if new.shared and not new.by_moderator:
            problems.append("Only moderators can share a character with the whole server; leave `shared` out.")
        config = await self._store.guilds.get(new.guild_id)
        if not config.channel_allowed(new.channel_id):
            # The sheet is posted where the command runs; moderators chose where video work belongs.
            places = ", ".join(f"<#{c}>" for c in sorted(config.allowed_channel_ids))
            problems.append(f"Characters are saved where videos are made on this server: use {places}.")
        if problems:
            return problems
        return await self._room_for(new)

    async def _room_for(self, new: NewCharacter) -> list[str]:
        if await self._store.characters.name_taken(new.guild_id, new.owner_id, new.name, shared=new.shared):
            return [_name_taken(new)]
        own, shared = await self._store.characters.counts(new.guild_id, new.owner_id)
        if new.shared and shared >= self.limits.shared_per_server:
            return [_full(NotSaved.SHARED_LIMIT, self.limits)]
        if not new.shared and own >= self.limits.per_member:
            return [_full(NotSaved.PERSONAL_LIMIT, self.limits)]
        return []

    async def save(self, new: NewCharacter, sheet_id: int, attachment_ids: Sequence[int]) -> Character | str:
        """Record the character whose sheet was just posted (`sheet_id`, its attachments front view first).
        Returns it, or why it was not saved after all (a save of the same name, or up to the limit, happened
        meanwhile): the caller then deletes the sheet."""
        character = Character(
            id=sheet_id,
            guild_id=new.guild_id,
            owner_id=new.owner_id,
            name=clean_name(new.name),
            shared=new.shared,
            channel_id=new.channel_id,
            attachment_ids=tuple(attachment_ids),
            created_at=0.0,
        )
        saved = await self._store.characters.create(
            character, personal_limit=self.limits.per_member, shared_limit=self.limits.shared_per_server
        )
        if saved is NotSaved.NAME_TAKEN:
            return _name_taken(new)
        if isinstance(saved, NotSaved):
            return _full(saved, self.limits)
        return saved

    # ------------------------------------------------------------------ reading

    async def visible(self, guild_id: int, user_id: int) -> list[Character]:
        """The member's own characters here, then the server's shared ones."""
        return await self._store.characters.visible_to(guild_id, user_id)

    async def suggest(
        self, guild_id: int, user_id: int, typed: str, *, exclude: Sequence[str] = ()
    ) -> list[Suggestion]:
        """What to offer while the member types into a character option: their own and the shared characters
        matching the text, without those already picked in the other options (`exclude`: their values)."""
        chosen = {value for value in exclude if value}
        characters = [c for c in await self.visible(guild_id, user_id) if f"#{c.id}" not in chosen]
        return [Suggestion(_label(c, user_id), f"#{c.id}") for c in _matches(characters, typed)][:MAX_SUGGESTIONS]

    async def deletable_suggestions(
        self, guild_id: int, user_id: int, typed: str, *, moderator: bool
    ) -> list[Suggestion]:
        """What to offer in `/character delete`: the member's own, and for moderators the shared ones too."""
        characters = [c for c in await self.visible(guild_id, user_id) if not c.shared or moderator]
        return [Suggestion(_label(c, user_id), f"#{c.id}") for c in _matches(characters, typed)][:MAX_SUGGESTIONS]

    async def find(self, guild_id: int, user_id: int, value: str) -> Character | None:
        """The character a member means by `value`: a picked suggestion (`#id`), or a typed name, their own
        before a shared one of the same name. None when they can see no such character."""
        return _pick(await self.visible(guild_id, user_id), value)

    async def cast_for(self, guild_id: int, user_id: int, values: Sequence[str]) -> list[CastMember] | list[str]:
        """The characters picked in `/video`, in option order, or a problem for each value that names none."""
        if not values:
            return []
        visible = await self.visible(guild_id, user_id)
        found: list[CastMember] = []
        problems: list[str] = []
        for value in values:
            character = _pick(visible, value)
            if character is None:
                problems.append(_unknown(value))
            else:
                found.append(CastMember.of(character))
        return problems or found

    # ------------------------------------------------------------------ deleting

    async def delete(self, guild_id: int, user_id: int, value: str, *, moderator: bool) -> Character | str:
        """Forget one of the member's characters (moderators: also a shared one). Returns it, or why not. The
        caller deletes its sheet, which takes its images off Discord."""
        character = await self.find(guild_id, user_id, value)
        if character is None:
            return _unknown(value)
        if character.shared and not moderator:
            return f"**{character.name}** is shared with the whole server; only moderators can delete it."
        if not character.shared and character.owner_id != user_id:
            return _unknown(value)
        deleted = await self._store.characters.delete(guild_id, character.id, actor_id=user_id)
        return deleted or _unknown(value)

    async def forget_gone(self, guild_id: int, sheet_id: int) -> None:
        """Discord says the character's sheet no longer exists: the character is gone, so stop offering it."""
        await self._store.characters.delete(guild_id, sheet_id, actor_id=None)

    # ------------------------------------------------------------------ using

    async def fresh_cast(
        self, host: MediaHost, guild_id: int, cast: Sequence[CastMember]
    ) -> tuple[CastMember, ...] | Unavailable:
        """`cast` with working URLs, or why they cannot be used now.

        Every sheet is read at once (each is a message the bot posted: fetching it gives freshly signed URLs). A
        sheet Discord says is gone, or one that lost an image, makes its character gone, and it leaves the
        library; any other failure changes nothing, so the member can simply try again."""
        results = await asyncio.gather(*(_read_sheet(host, member) for member in cast), return_exceptions=True)
        fresh: list[CastMember] = []
        for member, result in zip(cast, results, strict=True):
            if isinstance(result, MediaProblem):
                if isinstance(result, MediaGone):
                    await self.forget_gone(guild_id, member.message_id)
                return Unavailable(result, member.name)
            if isinstance(result, BaseException):
                raise result
            fresh.append(result)
        return tuple(fresh)


async def _read_sheet(host: MediaHost, member: CastMember) -> CastMember:
    urls = await host.sheet_urls(member.channel_id, member.message_id)
    missing = [a for a in member.attachment_ids if a not in urls]
    if missing:
        raise MediaGone(f"the sheet of {member.name} lost attachment(s) {missing}")
    return member.with_urls([urls[a] for a in member.attachment_ids])


def _pick(visible: Sequence[Character], value: str) -> Character | None:
    token = _TOKEN.fullmatch(value.strip())
    if token:
        return next((c for c in visible if c.id == int(token.group(1))), None)
    key = name_key(value.lstrip("@"))
    return next((c for c in visible if name_key(c.name) == key), None)  # own ones come first


def _name_taken(new: NewCharacter) -> str:
    where = "among the server's shared characters" if new.shared else "among your characters"
    return f"There is already a character called **{clean_name(new.name)}** {where}. Pick another name."


def _full(reason: NotSaved, limits: CharacterLimits) -> str:
    if reason is NotSaved.SHARED_LIMIT:
        return (
            f"The server already shares {limits.shared_per_server} characters, the most it can. "
            "Delete one with `/character delete` first."
        )
    return (
        f"You already have {limits.per_member} characters, the most you can keep. Delete one with `/character delete`."
    )


def _unknown(value: str) -> str:
    shown = escape_markdown(shorten(" ".join(value.split()).lstrip("@"), 40)) or "?"
    return (
        f"There is no character called **{shown}** that you can use here. Pick one from the list, "
        "or save it with `/character create`."
    )
