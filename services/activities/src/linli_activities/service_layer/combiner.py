"""Group commit within a process: the concurrent calls for one key gathered and run together by one
of their callers, so the database sees one statement and one commit for the group.

The sign-ups of a popular activity take turns on its row: each holds it for its statement and its
commit's disk sync. The sign-ups of one process that arrive while a group is being written wait
for it to end, then the first of them writes them all together in one statement, which decides
their places in their order of arrival: one turn on the row and one disk sync for the group. A
call alone (no other for its key running) is run at once, on its own: no waiting is added.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class _Call(Generic[Item, Outcome]):
    item: Item
    # Released when the group holding this call ran, or when it is this call's turn to lead; its
    # caller acquires it to wait. A lock, not a threading.Event: an Event's wait and set go
    # through a Condition (its own lock and list of waiters), which showed in a sign-up's CPU.
    # Each release follows an acquire: a call is released once for its turn to lead (after which
    # it acquires) and once when its group ran.
    turn: threading.Lock = field(default_factory=_held_lock)
    done: bool = False
    outcome: Outcome | BaseException | None = None


class Combiner(Generic[Item, Outcome]):
    """Per process (one instance shared by its threads). `run(key, item, together)`: `together`
    takes the items of a group and returns, for each in order, its outcome or the exception to
    raise in its caller's thread (an error of one must not be the others'): it is run by one
    caller, in its thread, for the items gathered for that key while the previous group ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[Hashable, list[_Call[Item, Outcome]]] = {}
        self._running: set[Hashable] = set()

    def run(
        self, key: Hashable, item: Item, together: Callable[[list[Item]], list[Outcome | BaseException]]
    ) -> Outcome:
        call: _Call[Item, Outcome] = _Call(item)
        with self._lock:
            self._waiting.setdefault(key, []).append(call)
            leads = key not in self._running
            self._running.add(key)
        if not leads:
            call.turn.acquire()  # released when the group holding this call ran, or when it is this call's turn to lead
        if not call.done:
            self._lead(key, together)
        if isinstance(call.outcome, BaseException):
            raise call.outcome
        return call.outcome  # type: ignore[return-value] - set by the group's run

    def _lead(self, key: Hashable, together: Callable[[list[Item]], list[Outcome | BaseException]]) -> None:
        with self._lock:
            group = self._waiting.pop(key)
        try:
            outcomes = together([c.item for c in group])
            if len(outcomes) != len(group):
                raise RuntimeError("a group's run returned a wrong number of outcomes")
        except BaseException as error:  # noqa: BLE001 - every caller of the group hears of it
            outcomes = [error] * len(group)
        for c, outcome in zip(group, outcomes, strict=True):
            c.outcome, c.done = outcome, True
            c.turn.release()
        with self._lock:
            following = self._waiting.get(key)
            if following:
                following[0].turn.release()  # the first who came meanwhile leads the next group
            else:
                self._running.discard(key)
