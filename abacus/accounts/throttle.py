"""Sliding-window throttling of failed sign-ins, per username and per address (pure).

In memory, for one worker: each key keeps the times of its recent failures; a key with
``limit`` failures inside ``window_s`` is refused until the oldest leaves the window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["SlidingWindow"]


@dataclass
class SlidingWindow:
    """``limit`` failures per ``window_s`` seconds per key; ``max_keys`` bounds memory."""

    limit: int
    window_s: float
    max_keys: int = 100_000
    _hits: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None when it is not throttled."""
        hits = self._recent(key, now)
        if hits is None or len(hits) < self.limit:
            return None
        return max(0.0, self.window_s - (now - hits[-self.limit]))

    def fail(self, key: str, now: float) -> None:
        """Record a failure of ``key`` at ``now``."""
        hits = self._recent(key, now)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self.prune(now)
            hits = self._hits[key] = deque(maxlen=self.limit)
        hits.append(now)

    def clear(self, key: str) -> None:
        """Forget ``key`` (after a successful sign-in)."""
        self._hits.pop(key, None)

    def prune(self, now: float) -> None:
        """Drop every key with no failure left in the window."""
        for key in list(self._hits):
            self._recent(key, now)
