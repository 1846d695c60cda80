"""Accepting a `/video` request: validate it, then charge the quota and record the job in one step.

Runs before the interaction is answered, so it does only local work (no remote calls): a few microseconds of
checks and one SQLite transaction. The job row and the reservation exist before anything is sent anywhere,
which is what lets a crash at any later point be recovered from the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.jobs import Reference
from bot.domain.quotas import QuotaStatus
from bot.domain.validation import ImageMeta, clean_prompt, validate_video_request
from bot.storage import NewJob, QuotaRequest, Refused, Reserved, Store

__all__ = ["Intake", "Invalid", "QuotaPolicy", "VideoRequest"]


@dataclass(frozen=True)
class QuotaPolicy:
    """The deployment-wide quota numbers from the settings."""

    default_limit: int
    window_seconds: float
    max_active: int


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


@dataclass(frozen=True)
class Invalid:
    """The request breaks a rule; `problems` are member-facing sentences. Nothing was charged."""

    problems: list[str]


class Intake:
    def __init__(self, store: Store, *, model: str, policy: QuotaPolicy) -> None:
        self._store = store
        self._model = model
        self._policy = policy

    def quota_request(self, role_ids: tuple[int, ...]) -> QuotaRequest:
        return QuotaRequest(
            window_seconds=self._policy.window_seconds,
            fallback_limit=self._policy.default_limit,
            max_active=self._policy.max_active,
            role_ids=role_ids,
        )

    async def quota(self, guild_id: int, user_id: int, role_ids: tuple[int, ...]) -> QuotaStatus:
        return await self._store.quotas.status(guild_id, user_id, self.quota_request(role_ids))

    async def start(self, request: VideoRequest) -> Reserved | Refused | Invalid:
        prompt = clean_prompt(request.prompt)
        metas = [meta for meta, _ in request.images]
        problems = validate_video_request(prompt, metas, request.duration, request.aspect_ratio)
        if problems:
            return Invalid(problems)
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
            prompt=prompt,
            duration=request.duration,
            aspect_ratio=request.aspect_ratio,
            model=self._model,
            references=references,
        )
        return await self._store.jobs.create_reserved(new, self.quota_request(request.role_ids))
