"""The per-service circuit: opened by a service that is down, never by one slow or failing request."""

from __future__ import annotations

import threading

from linli_gateway.adapters.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, fail_max: int = 3) -> CircuitBreaker:
    return CircuitBreaker("issues", fail_max=fail_max, reset_seconds=15, clock=clock)


def test_slow_requests_never_open_the_circuit_and_do_not_hide_failures():
    clock = Clock()
    circuit = breaker(clock)
    for _ in range(50):
        assert circuit.allow()
        circuit.record_inconclusive()
    assert circuit.state == CLOSED
    # Slow answers in between neither reset nor add to the count of a service going down.
    for _ in range(2):
        circuit.allow()
        circuit.record_down()
        circuit.record_inconclusive()
    assert circuit.state == CLOSED
    circuit.record_down()
    assert circuit.state == OPEN and not circuit.allow()


def test_an_answer_resets_the_count_so_only_failures_in_a_row_open_it():
    clock = Clock()
    circuit = breaker(clock)
    for _ in range(10):
        circuit.record_down()
        circuit.record_down()
        circuit.record_up()
    assert circuit.state == CLOSED


def test_open_then_one_trial_which_closes_or_reopens_it():
    clock = Clock()
    circuit = breaker(clock)
    for _ in range(3):
        circuit.record_down()
    assert not circuit.allow() and circuit.retry_after() == 15
    clock.now += 10
    assert not circuit.allow() and circuit.retry_after() == 5
    clock.now += 5
    assert circuit.state == HALF_OPEN
    assert circuit.allow()  # the trial
    assert not circuit.allow()  # only one at a time
    circuit.record_down()
    assert circuit.state == OPEN and not circuit.allow()
    clock.now += 15
    assert circuit.allow()
    circuit.record_inconclusive()  # a slow trial proves nothing: the next request tries again
    assert circuit.allow()
    circuit.record_up()
    assert circuit.state == CLOSED and circuit.allow() and circuit.allow()


def test_no_lock_is_held_while_a_request_is_in_flight():
    circuit = breaker(Clock())
    in_flight = threading.Event()
    release = threading.Event()

    def slow_request() -> None:
        assert circuit.allow()
        in_flight.set()
        release.wait(10)
        circuit.record_inconclusive()

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert in_flight.wait(10)
    finished = []
    other = threading.Thread(target=lambda: finished.append(circuit.allow() and circuit.record_up() is None))
    other.start()
    other.join(5)
    assert finished == [True]  # answered while the slow one still waits
    release.set()
    thread.join(10)
