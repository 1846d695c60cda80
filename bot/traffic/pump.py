"""The loop that gives out turns, for the Discord scheduler and the provider pacer alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["PUMP_RETRY", "keep_granting"]

log = logging.getLogger(__name__)

PUMP_RETRY = 0.5
"""Seconds before granting turns again after an unexpected error."""


async def keep_granting(grant: Callable[[], Awaitable[None]], waiting: Callable[[], bool], what: str) -> None:
    """`grant()` while `waiting()`. The loop must not die while anything waits (it would wait forever, and a job's
    task with it): an unexpected error is logged and granting resumes after `PUMP_RETRY` seconds."""
    while waiting():
        try:
            await grant()
        except Exception:
            log.exception("granting turns to %s failed; trying again in %.1f s", what, PUMP_RETRY)
            await asyncio.sleep(PUMP_RETRY)
