"""What a member reads about what they may still start, and why a video was not started, written once: `/quota`,
`/jobs`, the card's quota or budget line, the moderators' budget reply, and the refusals of `/video`, Retry and
Remix. Every refusal ends by saying nothing was charged, because nothing was.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.pools import Period, PoolStatus
from bot.domain.quotas import Allowance, QuotaStatus, Refusal
from bot.domain.text import discord_time, escape_markdown
from bot.services.media import MediaForbidden, MediaGone, Unavailable

__all__ = [
    "BLOCKED_WORDS_PROBLEM",
    "allowance_line",
    "blocked_name_problem",
    "budget_line",
    "budget_summary",
    "card_quota_field",
    "quota_lines",
    "refusal_message",
    "unavailable_message",
]

_PERIOD_WORDS = {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"}
BLOCKED_WORDS_PROBLEM = (
    "Your prompt contains a word or phrase this server does not allow. Change the prompt and try again."
)
"""The refusal of a prompt with a blocked word; it never repeats the word (the channel may be public)."""


def blocked_name_problem(position: int) -> str:
    """The refusal of a character whose name holds a blocked word (the name is shown on the card and in the
    thread); it names the character by its place, not by the name."""
    return (
        f"Character {position} of this video has a name with a word or phrase this server does not allow. "
        "Leave it out, or save it again under another name."
    )


def _resets(pool: PoolStatus) -> str:
    """When a budget starts again, as a date everyone reads the same (periods are UTC) and a relative time."""
    moment = datetime.fromtimestamp(pool.resets_at, UTC)
    day = f"{moment.day} {moment:%B}"
    when = f"at 00:00 UTC ({discord_time(pool.resets_at)})" if pool.period is Period.DAY else f"on {day} (UTC)"
    return f"resets {when}"


def budget_summary(pool: PoolStatus) -> str:
    """What is left of a channel's budget and when it resets, for the card and the moderators' reply."""
    return f"{pool.remaining} of {pool.videos} videos left {_PERIOD_WORDS[pool.period]}; {_resets(pool)}"


def budget_line(pool: PoolStatus) -> str:
    """A channel's budget in one sentence, e.g. "team budget: 37 of 100 left this month, resets on 1 December"."""
    return (
        f"This channel's team budget: **{pool.remaining}** of **{pool.videos}** videos left "
        f"{_PERIOD_WORDS[pool.period]}; it {_resets(pool)}."
    )


def card_quota_field(allowance: Allowance) -> tuple[str, str]:
    """The card's line about what is left: the channel's budget when the video drew from one, else the member's
    own quota."""
    if allowance.pool is not None:
        return "Team budget", budget_summary(allowance.pool)
    return "Your quota", f"{allowance.remaining} of {allowance.total} videos left"


def allowance_line(allowance: Allowance, window_seconds: float) -> str:
    """The member's own quota in one sentence (`QuotaStatus.own`): used of limit plus grants, in the window."""
    window = window_seconds / 3600
    window_text = f"{window:g} hours" if window != 24 else "24 hours"
    granted = f" (that includes {allowance.granted} granted by a moderator)" if allowance.granted else ""
    return f"You have used **{allowance.used}** of **{allowance.total}** videos in the last {window_text}{granted}."


def quota_lines(quota: QuotaStatus) -> list[str]:
    """The member's allowance in words, for `/quota`, `/jobs` and refusals: the channel's budget when one
    applies (and their own quota for other channels), else their own quota; blocks, the next slot, active jobs."""
    own = allowance_line(quota.own, quota.window_seconds)
    if quota.pool is not None:
        lines = [
            budget_line(quota.pool),
            "Videos started here use the team budget. Your own quota, for other channels: " + own[0].lower() + own[1:],
        ]
    else:
        lines = [own]
    if quota.blocked:
        reason = f": {escape_markdown(quota.block_reason)}" if quota.block_reason else "."
        lines.append(f"A moderator has blocked you from starting videos{reason}")
    if quota.next_free_at is not None and quota.pool is None:
        at = quota.next_free_at
        lines.append(f"Your next video slot frees {discord_time(at)} ({discord_time(at, 'f')}).")
    lines.append(f"Active jobs: {quota.active} of {quota.max_active} at once.")
    return lines


def refusal_message(quota: QuotaStatus, refusal: Refusal) -> str:
    """Why a new video was refused (blocked, over the allowance, too many at once), with the numbers."""
    if refusal is Refusal.BLOCKED:
        head = "You cannot start videos on this server right now."
    elif refusal is Refusal.TOO_MANY_ACTIVE:
        head = (
            f"You already have {quota.active} videos in progress, the most you can have at once "
            f"({quota.max_active}). Start another when one is delivered."
        )
    elif refusal is Refusal.POOL_EMPTY:
        head = "This channel's team budget is used up for now."
    else:
        head = "You have reached your video limit for now."
    return "\n".join([head, *quota_lines(quota), "Nothing was charged."])


def unavailable_message(unavailable: Unavailable) -> str:
    """Why a video cannot start because Discord cannot give its images now; nothing was charged."""
    problem, name = unavailable.problem, unavailable.character
    if isinstance(problem, MediaGone):
        if name is not None:
            return (
                f"The character **{name}** is gone: Discord no longer has its character sheet (the message holding "
                "its images was deleted), so it is no longer offered. Save it again with "
                "`/character create`. Nothing was charged."
            )
        return (
            "Discord no longer has the reference images of this job, so it cannot be started again. "
            "Run `/video` with the images attached. Nothing was charged."
        )
    what = f"the character sheet of **{name}**" if name is not None else "the reference images"
    if isinstance(problem, MediaForbidden):
        where = f" <#{problem.channel_id}>" if problem.channel_id else ""
        return (
            f"I cannot read the channel{where} that holds {what}: I am missing View Channel or Read Message "
            "History there. Ask a moderator to give them back. Nothing was charged."
        )
    return f"Discord did not answer in time while I fetched {what}. Nothing was charged; try again in a moment."
