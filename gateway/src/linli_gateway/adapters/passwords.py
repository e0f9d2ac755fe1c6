"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's recommendations), and the
bounded pool that checks passwords off the web process's request threads.

One check costs tens of milliseconds of CPU and 64 MiB (time 3, memory 64 MiB, 4 lanes). During a
burst of logins (a city's morning), checks run on the request threads would take every thread and
every core, and each other request waits for them. `HashingPool` runs at most `workers` checks at
once, on threads of its own at a lower CPU priority (argon2 releases the GIL, so they run in
parallel and Python work of other requests goes first), and lets at most `queue` more logins wait
for a turn: a login beyond those is refused at once (`HashingBusy`, answered 503 with Retry-After),
so logins never hold more than `workers + queue` of the process's request threads. With `workers`
0, checks run on the request threads, unbounded (how the gateway did it before; for comparison).
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this when the phone is unknown keeps the timing of "no such user" and
# "wrong password" alike, so login does not reveal which numbers have accounts.
_DUMMY_HASH = _hasher.hash("linli-dummy-password")
# How much lower the pool's threads run by default (nice); argon2's lane threads inherit it.
NICENESS = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class HashingBusy(Exception):
    """Every hashing worker is busy and the queue is full: try again in a moment."""


def _lower_priority(niceness: int) -> None:
    # On Linux a nice value belongs to a thread (setpriority(2) with the thread's id).
    if niceness:
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class HashingPool:
    """At most `workers` password checks at once, at most `queue` more waiting; made again after a fork
    (gunicorn workers each get their own)."""

    def __init__(self, workers: int, queue: int = 0, niceness: int = NICENESS) -> None:
        if workers < 0 or queue < 0:
            raise ValueError("zero or more workers, and a queue of zero or more")
        self.workers = workers
        self.queue = queue
        self.niceness = niceness
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._admitted = threading.BoundedSemaphore(workers + queue)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(
                    max_workers=self.workers,
                    thread_name_prefix="password-hashing",
                    initializer=_lower_priority,
                    initargs=(self.niceness,),
                )
                self._admitted = threading.BoundedSemaphore(self.workers + self.queue)
                self._pid = os.getpid()
            return self._executor

    def check_password(self, password_hash: str | None, password: str) -> bool:
        """`verify_password` on the pool; `HashingBusy` at once when it and its queue are full."""
        if self.workers == 0:
            return verify_password(password_hash, password)
        pool = self._pool()
        admitted = self._admitted
        if not admitted.acquire(blocking=False):
            raise HashingBusy("too many logins at once; try again in a moment")
        try:
            return pool.submit(verify_password, password_hash, password).result()
        finally:
            admitted.release()

    def shutdown(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
