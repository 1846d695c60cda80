"""The request the provider gets for one job, built from the job row alone (so a restart builds the same one).

The job keeps what the member chose, apart: their prompt, their images, the characters and the style. Here they
become one submit: the prompt with `@Name` written as `@ElementN` and the style's text added
(`bot.domain.cast.compose_prompt`), the images as `image_list`, each character as one `elements` entry with its
front view and up to `ANGLES_SENT` other angles.
"""

from __future__ import annotations

from bot.domain.cast import compose_prompt
from bot.domain.jobs import Job
from bot.provider.models import Element, GenerationRequest

__all__ = ["generation_request"]


def generation_request(job: Job) -> GenerationRequest:
    return GenerationRequest(
        model=job.model,
        prompt=compose_prompt(job.prompt, [member.name for member in job.characters], job.style_text),
        image_list=tuple(ref.url for ref in job.references),
        duration=job.duration,
        aspect_ratio=job.aspect_ratio,
        elements=tuple(Element(member.frontal_url, member.sent_angle_urls) for member in job.characters),
    )
