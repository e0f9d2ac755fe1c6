"""Password checks run on the bounded pool of hashing workers, off the request threads: at most
`workers` at once and `queue` waiting; a login beyond those is refused at once, 503 with Retry-After."""

from __future__ import annotations

import threading

import pytest

from linli_gateway.adapters import passwords
from linli_gateway.adapters.passwords import HashingBusy, HashingPool, hash_password


def test_checks_run_on_the_pools_threads_and_give_the_same_answers():
    pool = HashingPool(workers=2)
    stored = hash_password("wall-7-safe")
    try:
        assert pool.check_password(stored, "wall-7-safe") is True
        assert pool.check_password(stored, "guess-1234") is False
        assert pool.check_password(None, "wall-7-safe") is False  # unknown number: a dummy check
    finally:
        pool.shutdown()


@pytest.fixture
def held(monkeypatch):
    """Checks that wait until released, and who ran them."""
    release = threading.Event()
    started = threading.Semaphore(0)
    threads: list[str] = []

    def slow_verify(password_hash: str | None, password: str) -> bool:
        threads.append(threading.current_thread().name)
        started.release()
        release.wait(timeout=30)
        return True

    monkeypatch.setattr(passwords, "verify_password", slow_verify)
    return release, started, threads


@pytest.mark.parametrize(("workers", "queue"), [(1, 0), (2, 1)])
def test_beyond_the_workers_and_queue_a_check_is_refused_at_once(held, workers, queue):
    release, started, threads = held
    pool = HashingPool(workers=workers, queue=queue)
    answers: list[bool] = []
    callers = [
        threading.Thread(target=lambda: answers.append(pool.check_password("h", "p"))) for _ in range(workers + queue)
    ]
    for caller in callers:
        caller.start()
    for _ in range(workers):
        assert started.acquire(timeout=10)
    try:
        with pytest.raises(HashingBusy):
            pool.check_password("h", "p")
    finally:
        release.set()
        for caller in callers:
            caller.join(timeout=10)
        pool.shutdown()
    assert answers == [True] * (workers + queue)
    assert all(name.startswith("password-hashing") for name in threads)


def test_a_login_when_the_pool_is_full_is_503_busy(make_app, held):
    release, started, _ = held
    app = make_app(PASSWORD_HASH_WORKERS="1", PASSWORD_HASH_QUEUE="0", RATE_LIMIT_AUTH="1000/minute")
    client = app.test_client()
    body = {"phone": "13800000051", "password": "guess-1234"}
    first = threading.Thread(target=lambda: app.test_client().post("/api/v1/auth/login", json=body))
    first.start()
    try:
        assert started.acquire(timeout=10)
        answer = client.post("/api/v1/auth/login", json=body)
    finally:
        release.set()
        first.join(timeout=10)
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "busy"
    # The pool's own "try again in a second", not the rate limit's window (up to a minute).
    assert answer.headers["Retry-After"] == "1"


def test_with_no_workers_checks_run_on_the_callers_thread(held):
    release, _started, threads = held
    release.set()
    assert HashingPool(workers=0).check_password("h", "p") is True
    assert threads == [threading.current_thread().name]


@pytest.mark.parametrize("value", ["-1", "many"])
def test_a_bad_number_of_workers_is_a_configuration_error(gateway_env, monkeypatch, value):
    from linli_gateway.settings import load_gateway_settings
    from linli_kit.config import ConfigError, load_settings

    monkeypatch.setenv("PASSWORD_HASH_WORKERS", value)
    with pytest.raises(ConfigError, match="PASSWORD_HASH_WORKERS"):
        load_gateway_settings(load_settings("gateway"))
