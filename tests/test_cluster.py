"""Several copies of every process, a clustered broker, nothing lost (issue 14), on real processes.

1. A RabbitMQ cluster of three nodes started here: while 10,000 events flow from two relay
   processes of one service to three consumer processes of another, the node leading the consumer's
   quorum queue is killed, then started again. Every event's effect exists exactly once, the relays
   and consumers reconnect by themselves (AMQP_URL lists the three nodes), and the figures (how soon
   the flow resumed, the longest stall) are printed, never asserted: DESIGN forbids timed tests.

Figures are printed; run with `-s` to see them.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import requests
from sqlalchemy import func, select

from linli_kit.config import BusNames
from linli_kit.db import Database
from linli_kit.testing import probe
from linli_kit.testing.infra import InfraUnavailable, PostgresDatabases
from linli_kit.testing.platform import Platform, Process
from linli_kit.testing.rabbit_cluster import RabbitCluster
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration

EVENTS = 10_000
BATCH = 100  # events per producing transaction
PACE_SECONDS = 0.05  # between two producing transactions: at most 2,000 events a second
BACKLOG = 2_000  # events written and not yet handled, at most
STOP_AFTER = 2_500  # effects committed before the leader is stopped
FLOW_SECONDS = 300.0  # the generous bound on the whole flow (a loaded 2-core machine)


@pytest.fixture
def rabbit_cluster(run_id: str) -> Iterator[RabbitCluster]:
    try:
        cluster = RabbitCluster(run_id)
    except InfraUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        cluster.start()
    except BaseException:
        print(cluster.logs())
        cluster.close()
        raise
    yield cluster
    cluster.close()


@pytest.fixture
def cluster_platform(
    request: pytest.FixtureRequest,
    rabbit_cluster: RabbitCluster,
    pg_databases: PostgresDatabases,
    run_id: str,
    token_keys: tuple[str, str],
    tmp_path: Path,
) -> Iterator[Platform]:
    """Processes on the test's PostgreSQL databases and the three-node cluster (all nodes listed)."""
    prefix = f"t.{run_id}.c."
    bus = BusNames(exchange=f"{prefix}events", dead_letter_exchange=f"{prefix}dead", queue_prefix=prefix)
    private_key, public_key = token_keys
    stack = Platform(pg_databases, rabbit_cluster.amqp_url(), bus, public_key, private_key, tmp_path / "platform")
    yield stack
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.failed:
        print(stack.logs())
        print(rabbit_cluster.logs())
    stack.stop_all()


def _rotated(start: int, size: int) -> list[int]:
    return [(start + i) % size for i in range(size)]


def _lost_connections(process: Process) -> int:
    """How many times the process logged that its broker connection went away."""
    lost = 0
    for line in process.log_path.read_text(errors="replace").splitlines():
        try:
            message = json.loads(line).get("message", "")
        except ValueError:
            continue
        if message in {"broker connection lost", "relay connection lost", "broker unreachable for relay"}:
            lost += 1
    return lost


class Producer:
    """Commits EVENTS probe events, BATCH per transaction, at most PACE a second and at most BACKLOG
    ahead of the consumers, so events keep being written for the whole flow whatever the machine's
    speed; remembers when each batch went in."""

    def __init__(self, database: Database, consumed: Database) -> None:
        self.database = database
        self.consumed = consumed
        self.written: list[tuple[float, int]] = []  # (monotonic time after commit, first n of the batch)
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for first in range(0, EVENTS, BATCH):
                # Pacing the load (not waiting for something to happen): a bounded backlog.
                while first - count_effects(self.consumed) >= BACKLOG:
                    if self.stop.wait(PACE_SECONDS):
                        return
                probe.write_events(self.database, range(first, first + BATCH))
                self.written.append((time.monotonic(), first))
                if self.stop.wait(PACE_SECONDS):
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def first_written_after(self, instant: float) -> int | None:
        return next((first for when, first in self.written if when > instant), None)


class Sampler:
    """The number of effects committed, sampled every 50 ms: where the flow stalled, and for how long."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self.samples.append((time.monotonic(), count_effects(self.database)))

    def longest_stall(self, after: float) -> tuple[float, float]:
        """(seconds the count did not grow, when that stall began) among the samples after `after`,
        before the last effect."""
        longest, began = 0.0, after
        last_change_time, last_count = after, None
        for when, count in self.samples:
            if when < after:
                continue
            if count != last_count:
                if last_count is not None and when - last_change_time > longest:
                    longest, began = when - last_change_time, last_change_time
                last_change_time, last_count = when, count
        return longest, began


def count_effects(database: Database) -> int:
    with database.reading() as conn:
        return conn.scalar(select(func.count()).select_from(probe.effects)) or 0


def effect_numbers(database: Database) -> Counter:
    with database.reading() as conn:
        return Counter(conn.scalars(select(probe.effects.c.n)))


@pytest.mark.timeout(900)  # the cluster boots within it
def test_a_killed_broker_node_loses_and_duplicates_nothing(cluster_platform: Platform, rabbit_cluster: RabbitCluster):
    """A bench-like producer and consumer (the probe service, through the kit's real Worker: relay,
    consumer, inbox), not the services' own handlers: its effect table has no unique key, so an
    event handled twice would show as two rows, and 10,000 events need no HTTP. The services'
    workers run in the two-copies test below."""
    platform, cluster = cluster_platform, rabbit_cluster
    size = cluster.size
    producer_db = Database(platform.database_url("probesrc"))
    consumer_db = Database(platform.database_url("probe"))
    for database in (producer_db, consumer_db):
        probe.metadata.create_all(database.engine)
    argv = [sys.executable, "-m", "linli_kit.testing.probe_worker"]

    # Three consumers, each trying the nodes from a different one: every node serves one of them.
    consumers = [
        platform.start_process(
            f"consumer-{i + 1}",
            [*argv, "consumer"],
            platform.env("probe") | {"AMQP_URL": cluster.amqp_url(_rotated(i, size))},
        )
        for i in range(3)
    ]
    queue = platform.bus.queue("probe")
    before = cluster.quorum_queue(queue)
    assert sorted(before["members"]) == sorted(n.name for n in cluster.nodes), "not replicated on every node"
    leader = cluster.node_named(before["leader"])
    # Two relays of the producing service; the first (which takes the outbox's relay lock and
    # publishes) is connected to the leader's node, the second stands by on another node.
    relays = [
        platform.start_process(
            f"relay-{j + 1}",
            [*argv, "relay"],
            platform.env("probesrc") | {"AMQP_URL": cluster.amqp_url(_rotated(leader.index + j, size))},
        )
        for j in range(2)
    ]

    producer, sampler = Producer(producer_db, consumer_db), Sampler(consumer_db)
    started = time.monotonic()
    sampler.thread.start()
    producer.thread.start()
    eventually(lambda: count_effects(consumer_db) >= STOP_AFTER, timeout=FLOW_SECONDS, what="the flow under way")

    stopped_at = time.monotonic()
    cluster.stop_node(leader, kill=True)
    eventually(lambda: producer.first_written_after(stopped_at) is not None, timeout=FLOW_SECONDS, what="a write")
    first_after = producer.first_written_after(stopped_at)

    def handled_after_stop() -> bool:
        with consumer_db.reading() as conn:
            return (conn.scalar(select(func.max(probe.effects.c.n))) or 0) >= first_after

    eventually(handled_after_stop, timeout=FLOW_SECONDS, interval=0.05, what="an event written after the stop handled")
    resumed = time.monotonic() - stopped_at
    new_leader = cluster.quorum_queue(queue)["leader"]

    restarted_at = time.monotonic()
    cluster.start_node(leader)
    cluster.await_node(leader)
    node_back = time.monotonic() - restarted_at
    eventually(
        lambda: len(cluster.quorum_queue(queue)["online"]) == size,
        timeout=FLOW_SECONDS,
        interval=0.5,
        what="the restarted node back among the queue's members",
    )
    member_back = time.monotonic() - restarted_at

    eventually(lambda: count_effects(consumer_db) >= EVENTS, timeout=FLOW_SECONDS, interval=0.1, what="all effects")
    finished = time.monotonic() - started
    producer.thread.join(30)
    sampler.stop.set()
    sampler.thread.join(5)
    assert producer.error is None, producer.error

    effects = effect_numbers(consumer_db)
    assert set(effects) == set(range(EVENTS)), f"missing effects: {sorted(set(range(EVENTS)) - set(effects))[:20]}"
    duplicates = {n: c for n, c in effects.items() if c > 1}
    assert not duplicates, f"events handled more than once: {dict(list(duplicates.items())[:20])}"
    with producer_db.reading() as conn:
        outbox = probe.messaging.outbox
        assert conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))) == 0

    # Nothing dead-lettered, and every process reconnected by itself: none exited, all ready again.
    conn = pika.BlockingConnection([pika.URLParameters(node.url) for node in cluster.nodes])
    try:
        dead = conn.channel().queue_declare(platform.bus.dead_letter_queue("probe"), passive=True)
        assert dead.method.message_count == 0
    finally:
        conn.close()
    for process in [*consumers, *relays]:
        assert process.popen.poll() is None, f"{process.name} exited:\n{process.log_tail()}"
        eventually(lambda p=process: requests.get(p.url + "/readyz", timeout=5).status_code == 200, what=process.name)
    reconnected_consumers = [p.name for p in consumers if _lost_connections(p)]
    reconnected_relays = [p.name for p in relays if _lost_connections(p)]
    # The consumer that started on the leader's node lost its connection: it (and relay-1) reconnected.
    assert reconnected_consumers, "no consumer was connected to the stopped node"
    assert "relay-1" in reconnected_relays, "the publishing relay was not connected to the stopped node"

    stall, stall_began = sampler.longest_stall(stopped_at - 1)
    print(
        f"\ncluster: {size} nodes booted and joined in {cluster.boot_seconds:.1f} s"
        f"\nflow: {EVENTS} events, 2 relays -> {queue} (quorum, {size} replicas) -> 3 consumers,"
        f" done {finished:.1f} s after the first ({EVENTS / finished:.0f} events/s; written at most"
        f" {BATCH / PACE_SECONDS:.0f}/s and {BACKLOG} ahead)"
        f"\nkilled the queue's leader {leader.name} after {STOP_AFTER} effects; new leader {new_leader}"
        f"\nflow resumed {resumed:.2f} s after the kill (an event written after it was handled);"
        f" longest stall {stall:.2f} s, beginning {stall_began - stopped_at:+.2f} s from the kill"
        f"\nnode restarted and answering after {node_back:.1f} s, a queue member again after {member_back:.1f} s"
        f"\nreconnected by themselves: consumers {reconnected_consumers}, relays {reconnected_relays}"
        f"\neffects: {len(effects)} events, each exactly once; dead letters 0"
    )
