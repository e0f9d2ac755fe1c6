"""Finding the real PostgreSQL and RabbitMQ for tests, and isolating each run on them.

Order: URLs from the environment; else the local defaults when they answer; else testcontainers
when a Docker engine answers; else fail with a message saying what to start. Never skip.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pika
import psycopg
from psycopg import sql

from linli_kit.config import BusNames

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
# Connections that drop a run's databases side by side (each holds one of PostgreSQL's 100).
DROP_CONNECTIONS = 8


class InfraUnavailable(RuntimeError):
    pass


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means no engine
        return False


def find_postgres() -> tuple[str, object | None]:
    """(admin URL, container or None)."""
    url = os.environ.get("LINLI_TEST_PG_URL", DEFAULT_PG)
    if _reachable(url, 5432):
        return url, None
    if "LINLI_TEST_PG_URL" not in os.environ and _docker_available():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver=None).start()
        return container.get_connection_url(), container
    raise InfraUnavailable(
        f"PostgreSQL is not reachable at {url}. Start it (pg_ctlcluster --skip-systemctl-redirect "
        "$(ls /etc/postgresql) main start), set LINLI_TEST_PG_URL, or run a Docker engine for testcontainers."
    )


def find_rabbitmq() -> tuple[str, object | None]:
    url = os.environ.get("LINLI_TEST_AMQP_URL", DEFAULT_AMQP)
    if _reachable(url, 5672):
        return url, None
    if "LINLI_TEST_AMQP_URL" not in os.environ and _docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13").start()
        params = container.get_connection_params()
        return f"amqp://guest:guest@{params.host}:{params.port}/%2F", container
    raise InfraUnavailable(
        f"RabbitMQ is not reachable at {url}. Start it (rabbitmq-server -detached), set "
        "LINLI_TEST_AMQP_URL, or run a Docker engine for testcontainers."
    )


class PostgresDatabases:
    """Creates databases named after this test run and drops them at the end."""

    def __init__(self, admin_url: str, run_id: str) -> None:
        self.admin_url = admin_url
        self.run_id = run_id
        self.created: list[str] = []
        self._templates: dict[Path, str] = {}  # migrations folder -> its migrated template's name

    def create(self, label: str, *, template: str | None = None) -> str:
        """A new empty database (a copy of the database `template` if given); its SQLAlchemy URL."""
        name = f"lt_{self.run_id}_{label}_{len(self.created)}".lower()
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)
        self.created.append(name)
        return self._url(name)

    def create_migrated(self, label: str, migrations_dir: Path) -> str:
        """A new database at the head of the migrations in `migrations_dir`: a copy of a database
        this run migrated once (the first call per folder), which is many times faster than
        migrating each time. The copy is made by PostgreSQL (CREATE DATABASE ... TEMPLATE), so it is
        the migrations' own result, not a schema made another way. Each pytest-xdist worker has its
        own run id, so its own template: no two processes race to make one, and a template never
        outlives its run (it is dropped with the run's databases), so it is never stale."""
        from linli_kit.migrations import upgrade

        template = self._templates.get(migrations_dir)
        if template is None:
            url = self.create(f"{label}_template")
            upgrade(migrations_dir, url)  # its engine is gone after: a template must have no session
            template = self._templates[migrations_dir] = urlparse(url).path.lstrip("/")
        return self.create(label, template=template)

    def _url(self, name: str) -> str:
        parsed = urlparse(self.admin_url)
        return parsed._replace(scheme="postgresql+psycopg", path=f"/{name}").geturl()

    def drop_all(self) -> None:
        """Drop every database this run created, several at a time.

        PostgreSQL 15 makes each DROP DATABASE wait for a checkpoint; drops that wait at the same
        time share one. One after the other, the few hundred databases of a `make test` worker took
        over two minutes to drop on a loaded machine, at the end of the run."""
        names, self.created = list(self.created), []
        self._templates.clear()
        if not names:
            return
        connections = min(DROP_CONNECTIONS, len(names))
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(self._drop_share, [names[i::connections] for i in range(connections)]))

    def _drop_share(self, names: list[str]) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def delete_bus(amqp_url: str, exchange: str, dead_exchange: str, queues: list[str]) -> None:
    """Remove what a test declared on the broker, the exchange's unrouted exchange and queue too."""
    unrouted = BusNames(exchange=exchange)
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        for queue in [*queues, unrouted.unrouted_queue]:
            channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        channel.exchange_delete(dead_exchange)
        channel.exchange_delete(unrouted.unrouted_exchange)
    finally:
        conn.close()


_HANDED_OUT: set[int] = set()  # ports this test process gave a server, bound or not yet


def stable_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up on Linux), never the same twice
    in one test process, for a server a test starts.

    A port the kernel gives for port 0 is free only for the moment: on a loaded machine a platform
    chooses its ports, then takes minutes to start, and meanwhile any outgoing connection may take
    one of them as its own local port (so may a client reconnecting to a server a test stopped).
    The server then cannot bind, and worse, the port may by then answer for another process. Below
    the ephemeral range only servers bind; this process hands each port out once."""
    low, high = _port_range()
    for _ in range(500):
        port = random.randrange(low, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise InfraUnavailable(f"no free port between {low} and {high}")


def _port_range() -> tuple[int, int]:
    """20000-32000, shared out among pytest-xdist's workers so two never hand out the same port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    span = 12000 // max(count, 1)
    return 20000 + index * span, 20000 + (index + 1) * span
