"""Accepting a job from a member: validate it, then charge the quota and record the job in one step; and what
belongs to a member's side of a job until the poller takes over (the card's numbers, the card's id,
giving up on a job whose card could not be shown), plus their own allowance and recent jobs.

`start` runs before the interaction is answered, so it does only local work (no remote calls): a few
microseconds of checks and one SQLite transaction. The job row and the reservation exist before anything is
sent anywhere, which is what lets a crash at any later point be recovered from the row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.cast import CastMember, reference_problems, sent_prompt_problem
from bot.domain.clock import Clock, system_clock
from bot.domain.jobs import REFUNDED_ON, FailureKind, Job, JobStatus, Reference
from bot.domain.quotas import QuotaStatus
from bot.domain.styles import StyleChoice
from bot.domain.validation import ImageMeta, clean_prompt, validate_video_request
from bot.domain.words import blocked_phrase
from bot.services.history import History
from bot.services.presenter import CardContext
from bot.services.quota_words import BLOCKED_WORDS_PROBLEM, blocked_name_problem
from bot.storage import NewJob, QuotaRequest, Refused, Reserved, Store

__all__ = ["Intake", "Invalid", "QuotaPolicy", "VideoRequest"]


@dataclass(frozen=True)
class QuotaPolicy:
    """The deployment-wide quota numbers from the settings."""

    default_limit: int
    window_seconds: float
    max_active: int
    approval_timeout: float = 1800.0
    """How long a video in a channel with approvals may wait for a moderator (JOB_TIMEOUT_SECONDS)."""


@dataclass(frozen=True)
class VideoRequest:
    guild_id: int
    channel_id: int
    user_id: int
    role_ids: tuple[int, ...]
    prompt: str
    images: tuple[tuple[ImageMeta, str], ...]  # each image's metadata and its (signed) Discord URL
    duration: int
    aspect_ratio: str
    attachment_ids: tuple[int | None, ...] = ()
    characters: tuple[CastMember, ...] = ()
    """The saved characters picked, in option order; with URLs once read from their sheets (before `start`)."""
    style: StyleChoice | None = None


@dataclass(frozen=True)
class Invalid:
    """The request breaks a rule; `problems` are member-facing sentences. Nothing was charged."""

    problems: list[str]


class Intake:
    def __init__(
        self,
        store: Store,
        *,
        model: str,
        policy: QuotaPolicy,
        clock: Clock = system_clock,
        card_quota_fresh: float = 0.0,
    ) -> None:
        self._store = store
        self._model = model
        self._policy = policy
        self._clock = clock
        self._card_quota_fresh = card_quota_fresh
        """Seconds (real time) an owner's allowance read for one progress card is shown on their other cards, and
        the typical time of a model and duration on every card."""
        self._card_quotas: dict[tuple[int, int, tuple[int, ...], int], tuple[float, QuotaStatus]] = {}
        self._history = History(store, time.monotonic, ttl=card_quota_fresh)

    def quota_request(self, role_ids: tuple[int, ...]) -> QuotaRequest:
        return QuotaRequest(
            window_seconds=self._policy.window_seconds,
            fallback_limit=self._policy.default_limit,
            max_active=self._policy.max_active,
            role_ids=role_ids,
            approval_timeout=self._policy.approval_timeout,
        )

    async def quota(
        self, guild_id: int, user_id: int, role_ids: tuple[int, ...], *, channel_id: int | None = None
    ) -> QuotaStatus:
        """The member's allowance now; with `channel_id`, the one that applies there (the channel's team budget,
        when it has one). `/quota`, the card and the moderators' replies all show this."""
        return await self._store.quotas.status(guild_id, user_id, self.quota_request(role_ids), channel_id=channel_id)

    async def recent_jobs(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        """The member's latest jobs on this server, newest first (`/jobs`)."""
        return await self._store.jobs.list_for_user(guild_id, user_id, limit=limit)

    async def closed(self, guild_id: int, channel_id: int) -> str | None:
        """Why moderators do not let videos start here now (guild paused, channel not allowed); None if they do.

        Checked before anything is charged, for `/video` and for the card buttons alike."""
        config = await self._store.guilds.get(guild_id)
        if config.paused:
            return "Video generation is paused on this server by its moderators. Try again later."
        if not config.channel_allowed(channel_id):
            places = ", ".join(f"<#{c}>" for c in sorted(config.allowed_channel_ids))
            return f"Videos cannot be started in this channel. Use {places}."
        return None

    async def start(self, request: VideoRequest) -> Reserved | Refused | Invalid:
        ids = request.attachment_ids or (None,) * len(request.images)
        references = tuple(
            Reference(
                url=url,
                filename=meta.filename,
                content_type=meta.media_type or "",
                size=meta.size,
                width=meta.width or 0,
                height=meta.height or 0,
                attachment_id=attachment_id,
            )
            for (meta, url), attachment_id in zip(request.images, ids, strict=True)
        )
        new = NewJob(
            guild_id=request.guild_id,
            channel_id=request.channel_id,
            user_id=request.user_id,
            prompt=clean_prompt(request.prompt),
            duration=request.duration,
            aspect_ratio=request.aspect_ratio,
            model=self._model,
            references=references,
            role_ids=request.role_ids,
            characters=request.characters,
            style_name=request.style.name if request.style else None,
            style_text=request.style.text if request.style else None,
        )
        return await self._admit(new, [meta for meta, _ in request.images])

    async def check(self, request: VideoRequest) -> Invalid | Refused | None:
        """Would `start` refuse this request? The same checks, charging nothing: run before the slow part of a
        `/video` with characters (reading their sheets from Discord), so a refusal comes at once. `start` checks
        everything again when it charges."""
        metas = [meta for meta, _ in request.images]
        problems = await self._problems(
            request.guild_id,
            request.channel_id,
            clean_prompt(request.prompt),
            metas,
            request.duration,
            request.aspect_ratio,
            request.characters,
            request.style,
        )
        if problems:
            return Invalid(problems)
        quota = await self.quota(request.guild_id, request.user_id, request.role_ids, channel_id=request.channel_id)
        refusal = quota.refusal_for(charged=True)
        return Refused(quota=quota, refusal=refusal) if refusal is not None else None

    async def start_from(
        self,
        original: Job,
        *,
        role_ids: tuple[int, ...],
        references: tuple[Reference, ...],
        characters: tuple[CastMember, ...] = (),
        prompt: str | None = None,
        aspect_ratio: str | None = None,
        free: bool = False,
        retry_of: int | None = None,
    ) -> Reserved | Refused | Invalid:
        """A new job for the same member from an earlier one (Retry, Remix, aspect switch): the same images and
        characters (with `references` and `characters` holding their refreshed URLs) and the same style,
        optionally a new prompt or shape. Same checks and the same atomic charge as `/video`; `free` records it
        without charging (a Retry after a provider failure)."""
        new = NewJob(
            guild_id=original.guild_id,
            channel_id=original.channel_id,
            user_id=original.user_id,
            prompt=clean_prompt(prompt if prompt is not None else original.prompt),
            duration=original.duration,
            aspect_ratio=aspect_ratio or original.aspect_ratio,
            model=self._model,
            references=references,
            retry_of=retry_of,
            free=free,
            role_ids=role_ids,
            characters=characters,
            style_name=original.style_name,
            style_text=original.style_text,
        )
        metas = [
            ImageMeta(position, r.filename, r.content_type, r.size, r.width, r.height)
            for position, r in enumerate(references, start=1)
        ]
        return await self._admit(new, metas)

    async def _admit(self, new: NewJob, images: Sequence[ImageMeta]) -> Reserved | Refused | Invalid:
        """The checks every new job passes (server open here, valid input, no blocked word), then the atomic
        charge and insert.

        `images` are the references as Discord described them: validation reads the raw declared type, which
        the stored `Reference` keeps only in normalised form."""
        style = StyleChoice(new.style_name, new.style_text) if new.style_name and new.style_text else None
        problems = await self._problems(
            new.guild_id,
            new.channel_id,
            new.prompt,
            images,
            new.duration,
            new.aspect_ratio,
            new.characters,
            style,
        )
        if problems:
            return Invalid(problems)
        return await self._store.jobs.create_reserved(new, self.quota_request(new.role_ids))

    async def _problems(
        self,
        guild_id: int,
        channel_id: int,
        prompt: str,
        images: Sequence[ImageMeta],
        duration: int,
        aspect_ratio: str,
        characters: Sequence[CastMember],
        style: StyleChoice | None,
    ) -> list[str]:
        """Why this job may not start (member-facing), or nothing: the server is closed here, or the input breaks
        a rule, the images and characters together and the prompt as sent included, or the member's prompt or a
        character's name holds a blocked word. (A style's text is the moderators' own wording: not checked.)"""
        closed = await self.closed(guild_id, channel_id)
        if closed is not None:
            return [closed]
        problems = validate_video_request(prompt, images, duration, aspect_ratio)
        problems.extend(reference_problems(len(images), characters))
        sent = sent_prompt_problem(prompt, characters, style)
        if sent is not None:
            problems.append(sent)
        blocked = await self._blocked_keys(guild_id)
        if blocked_phrase(prompt, blocked) is not None:
            problems.append(BLOCKED_WORDS_PROBLEM)
        problems.extend(
            blocked_name_problem(position)
            for position, member in enumerate(characters, start=1)
            if blocked_phrase(member.name, blocked) is not None
        )
        return problems

    async def blocked_word(self, guild_id: int, prompt: str) -> str | None:
        """The server's blocked word or phrase the prompt contains (folded), or None. Only for logs and
        moderators: the member is told that the prompt has one, never which."""
        return blocked_phrase(prompt, await self._blocked_keys(guild_id))

    async def _blocked_keys(self, guild_id: int) -> list[str]:
        return [w.phrase for w in await self._store.teams.words(guild_id)]

    # ------------------------------------------------------------------ the card, until the poller takes over

    async def card_context(self, job: Job, *, quota: QuotaStatus | None = None) -> CardContext:
        """The card's honest numbers: quota left (when `quota` is given), the place in the local queue while
        waiting, and an ETA from how long recent jobs of the same model and duration took (no history, no ETA:
        better none than a made-up one)."""
        now = self._clock()
        position = await self._store.jobs.queue_position(job.id) if job.status is JobStatus.QUEUED else None
        eta: float | None = None
        typical = await self._history.typical(job.model, job.duration)
        if typical is not None:
            if job.status is JobStatus.GENERATING and job.submitted_at is not None:
                eta = job.submitted_at + typical
            elif job.status in (JobStatus.QUEUED, JobStatus.SUBMITTING):
                eta = now + typical
        return CardContext(
            allowance=quota.allowance if quota is not None else None,
            queue_position=position,
            eta=eta,
        )

    async def owner_card_context(self, job: Job) -> CardContext:
        """`card_context` with the owner's allowance in the job's channel, read with the roles stored with the job
        (so the card keeps showing their real allowance without asking Discord): what the poller shows on every
        card update. An allowance read less than `card_quota_fresh` seconds ago is shown again (several queries
        each time, for a line that rarely changes during a crowd's progress edits), never after a refund."""
        key = (job.guild_id, job.user_id, job.role_ids, job.channel_id)
        cached = self._card_quotas.get(key)
        now = time.monotonic()
        if cached is None or job.status in REFUNDED_ON or now - cached[0] >= self._card_quota_fresh:
            if len(self._card_quotas) > 10_000:
                self._card_quotas.clear()
            quota = await self.quota(job.guild_id, job.user_id, job.role_ids, channel_id=job.channel_id)
            cached = self._card_quotas[key] = (now, quota)
        return await self.card_context(job, quota=cached[1])

    async def card_posted(self, job_id: int, message_id: int) -> Job:
        """The member can see the job now: remember its card, which the poller keeps up to date and starts the
        job's thread on."""
        job = await self._store.jobs.update_fields(job_id, status_message_id=message_id)
        await self._store.jobs.wake_workers(job_id)  # its thread is to be started, maybe by another process
        return job

    async def abandon(self, job_id: int, why: str) -> Job | None:
        """The member never saw the new job's card, so it must not run: fail it, which refunds it. If the poller
        already picked it up the compare-and-set fails (None) and the job runs to the end, delivering in the
        channel."""
        return await self._store.jobs.transition(
            job_id,
            (JobStatus.QUEUED, JobStatus.AWAITING_APPROVAL),
            JobStatus.FAILED,
            failure_kind=FailureKind.INTERNAL,
            last_error=why,
        )
