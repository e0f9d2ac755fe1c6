"""Capped exponential back-off with jitter, for reconnecting to a broker or database that went away."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first: float = 0.2, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self._attempt = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * (2**self._attempt))
        self._attempt += 1
        # Jitter so that every worker of a city does not reconnect in the same instant.
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._attempt = 0
