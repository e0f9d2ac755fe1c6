"""A circuit breaker per routed service that opens only on evidence the service itself is down.

What counts against a service: a connection that could not be made or was dropped, and answers
502/503/504 (its server, or something in front of it, saying it cannot serve). What does not: a
slow answer (a read timeout says one request was slow, perhaps one caller's huge export or one
stuck row, not that the service is down; each such request is bounded by the proxy's time budget
instead), and any other answer, 500 included (one route's bug, often one caller's input).

So one caller's slow or failing request cannot open the circuit for everybody. A service that is
really down refuses connections or answers 502/503 to every caller, quickly: `fail_max` such
requests in a row open the circuit; after `reset_seconds` one trial request is let through, and
its outcome closes or re-opens it.

Unlike pybreaker (which holds one lock for the whole guarded call, so every request to a service
waited behind a slow one in the same process), no lock is held while a request is in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(
        self, name: str, *, fail_max: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.fail_max = fail_max
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_seconds:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """May a request go to the service now? While open: no; once the reset time has passed, one
        trial request at a time."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.reset_seconds:
                    return False
                self._state = HALF_OPEN
            if self._trial_in_flight:
                return False
            self._trial_in_flight = True
            return True

    def retry_after(self) -> float:
        """Seconds until a trial request may go through (0 when not open)."""
        with self._lock:
            if self._state != OPEN:
                return 0.0
            return max(0.0, self.reset_seconds - (self._clock() - self._opened_at))

    def record_up(self) -> None:
        """The service answered (anything but 502/503/504)."""
        with self._lock:
            self._failures = 0
            self._state = CLOSED
            self._trial_in_flight = False

    def record_down(self) -> None:
        """The service could not be reached, dropped the connection, or answered 502/503/504."""
        with self._lock:
            self._failures += 1
            self._trial_in_flight = False
            if self._state == HALF_OPEN or self._failures >= self.fail_max:
                self._state = OPEN
                self._opened_at = self._clock()

    def record_inconclusive(self) -> None:
        """The request proved nothing about the service (it was slow, or the gateway gave up): the
        count stays as it was; a trial slot is given back for the next request."""
        with self._lock:
            self._trial_in_flight = False
