"""How long the provider took for recent jobs of each model and clip length: what the first poll, the polls'
urgency and the cards' expected finish are based on, read from the store at most every `ttl` seconds (every
submit, poll and card edit asks)."""

from __future__ import annotations

from bot.domain.clock import Clock
from bot.services.schedule import typical_duration
from bot.storage import Store

__all__ = ["History"]


class History:
    """Recent provider durations per (model, duration), cached for `ttl` seconds of `clock`."""

    def __init__(self, store: Store, clock: Clock, ttl: float = 15.0) -> None:
        self._store = store
        self._ttl = ttl
        self._monotonic = clock
        self._cache: dict[tuple[str, int], tuple[float, list[float]]] = {}

    async def recent(self, model: str, duration: int) -> list[float]:
        key = (model, duration)
        cached = self._cache.get(key)
        now = self._monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        recent = await self._store.jobs.recent_durations(model, duration)
        self._cache[key] = (now, recent)
        return recent

    async def typical(self, model: str, duration: int) -> float | None:
        return typical_duration(await self.recent(model, duration))
