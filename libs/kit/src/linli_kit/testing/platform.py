"""Running the platform's real processes (gunicorn web, workers, commands) for cross-service tests.

Each test run gets its own databases (PostgreSQL, or SQLite files in its own folder as `make run`
uses), exchange and queue names, data folder and free ports, so runs never meet each other or a
developer's running stack.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from linli_kit.config import BusNames
from linli_kit.testing.infra import PostgresDatabases, stable_port
from linli_kit.testing.waiting import eventually

SERVICES = ("gateway", "issues", "meetings", "activities", "notifications")
# The web front (package linli_web): pages served at the gateway's address.
FRONT = "web"
BIN = Path(sys.executable).parent
# How long a process may take to become ready: seconds on a quiet machine, minutes on a loaded CI
# runner where a dozen gunicorns import at once.
READY_SECONDS = float(os.environ.get("LINLI_TEST_READY_SECONDS", "300"))
COMMAND_SECONDS = 1800


def free_port() -> int:
    """A port for a server of the platform (see `stable_port`: not one an outgoing connection takes)."""
    return stable_port()


def daytime_zone() -> str:
    """A time zone where it is about noon now. Notices that are not urgent are held back in
    residents' quiet hours (22:00-08:00 in the city's zone, LINLI_TIMEZONE): a test that waits for
    one to be sent runs the platform in this zone, so it passes at whatever hour it runs."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Platform:
    databases: PostgresDatabases | None  # None: SQLite files in the work folder, as `make run` has
    amqp_url: str
    bus: BusNames
    public_key: str
    private_key: str
    workdir: Path
    database_urls: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    web_ports: dict[str, int] = field(default_factory=dict)
    web_concurrency: int = 1

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "jwt_private.pem").write_text(self.private_key)
        (self.workdir / "jwt_public.pem").write_text(self.public_key)
        for service in (*SERVICES, FRONT):
            self.web_ports[service] = free_port()
        self.migrated: set[str] = set()
        self.front_started = False

    def database_url(self, service: str) -> str:
        if service not in self.database_urls:
            if self.databases is None:
                self.database_urls[service] = f"sqlite:///{self.workdir / (service + '.db')}"
            else:
                self.database_urls[service] = self.databases.create(service)
        return self.database_urls[service]

    def env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
        env.update(
            {
                "LINLI_DATA_DIR": str(self.workdir),
                "DATABASE_URL": self.database_url(service),
                "AMQP_URL": self.amqp_url,
                "EVENTS_EXCHANGE": self.bus.exchange,
                "DEAD_LETTER_EXCHANGE": self.bus.dead_letter_exchange,
                "QUEUE_PREFIX": self.bus.queue_prefix,
                "JWT_PUBLIC_KEY_FILE": str(self.workdir / "jwt_public.pem"),
                "JWT_PRIVATE_KEY_FILE": str(self.workdir / "jwt_private.pem"),
                "LOG_JSON": "true",
                "WEB_CONCURRENCY": str(self.web_concurrency),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for other in SERVICES:
            env[f"{other.upper()}_URL"] = f"http://127.0.0.1:{self.web_ports[other]}"
        # The gateway passes pages to the front only when this platform runs one (never to a
        # developer's front that happens to listen on the default port).
        env["FRONT_URL"] = f"http://127.0.0.1:{self.web_ports[FRONT]}" if self.front_started else ""
        env.update(self.extra_env)
        return env

    def command(self, service: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(BIN / f"linli-{service}"), *args],
            env=self.env(service),
            capture_output=True,
            text=True,
            # A migration that builds read models over a big database (the benchmarks' cities) takes
            # minutes on a loaded machine.
            timeout=COMMAND_SECONDS,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"linli-{service} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def commands(self, service_args: list[tuple[str, tuple[str, ...]]]) -> list[subprocess.CompletedProcess]:
        """`command` for each (service, args) at once, each in its own process: what one waits for
        (imports, the database) overlaps what another does. Fails, after all have ended, with every
        command that failed."""
        running = [
            (
                service,
                args,
                subprocess.Popen(
                    [str(BIN / f"linli-{service}"), *args],
                    env=self.env(service),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for service, args in service_args
        ]
        results, failures = [], []
        for service, args, popen in running:
            try:
                stdout, stderr = popen.communicate(timeout=COMMAND_SECONDS)
            except subprocess.TimeoutExpired:
                popen.kill()
                stdout, stderr = popen.communicate()
            result = subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr)
            results.append(result)
            if result.returncode != 0:
                failures.append(f"linli-{service} {' '.join(args)} failed:\n{stdout}\n{stderr}")
        if failures:
            raise AssertionError("\n".join(failures))
        return results

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], port: int | None) -> Process:
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("ab")
        popen = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        process = Process(name, popen, log_path, port)
        self.processes.append(process)
        return process

    def start_web(self, service: str, *, wait: bool = True) -> Process:
        """The service's web process under gunicorn; with `wait=False` it returns at once:
        `await_ready(process, "/healthz")` before using it (see `start_worker`)."""
        self.migrate(service)
        port = self.web_ports[service]
        module = "linli_gateway" if service == "gateway" else f"linli_{service}"
        metrics_dir = self.workdir / "metrics" / service
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = self.env(service) | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        argv = [
            str(BIN / "gunicorn"),
            "-c",
            "python:linli_kit.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            f"{module}.entrypoints.web:create_app()",
        ]
        process = self._spawn(f"{service}-web", argv, env, port)
        if wait:
            self._await_ready(process, "/healthz")
        return process

    def migrate(self, *services: str) -> None:
        """Bring each service's database to the head of its migrations, once per platform; several
        services' migrations run side by side."""
        pending = [service for service in dict.fromkeys(services) if service not in self.migrated]
        if len(pending) == 1:
            self.command(pending[0], "migrate")
        elif pending:
            self.commands([(service, ("migrate",)) for service in pending])
        self.migrated.update(pending)

    def start_worker(
        self, service: str, *, name: str | None = None, env: dict[str, str] | None = None, wait: bool = True
    ) -> Process:
        """The service's worker; call again for another copy (give each its own `name`, e.g.
        "issues-worker-2", for its own log). `env` adds or overrides settings of this copy. With
        `wait=False` it returns at once: `await_ready(process)` before using it (copies then start
        side by side)."""
        self.migrate(service)
        port = free_port()
        argv = [str(BIN / f"linli-{service}"), "worker", "--health-port", str(port)]
        process = self._spawn(name or f"{service}-worker", argv, self.env(service) | (env or {}), port)
        if wait:
            self.await_ready(process)
        return process

    def await_ready(self, process: Process, path: str = "/readyz") -> None:
        self._await_ready(process, path)

    def start_process(self, name: str, argv: list[str], env: dict[str, str], *, wait: bool = True) -> Process:
        """Any process serving probes: `argv` gets `--health-port PORT` appended, and the call
        returns once PORT answers /readyz with 200 (at once with `wait=False`: see `start_worker`)."""
        port = free_port()
        process = self._spawn(name, [*argv, "--health-port", str(port)], env, port)
        if wait:
            self.await_ready(process)
        return process

    def start_front(self, *, wait: bool = True) -> Process:
        """The web front's gunicorn, talking to this platform's gateway; start it before the
        gateway, which then serves its pages (`wait=False`: see `start_web`)."""
        port = self.web_ports[FRONT]
        gateway = f"http://127.0.0.1:{self.web_ports['gateway']}"
        env = self.env(FRONT) | {"GATEWAY_URL": gateway, "WEB_URL": gateway}
        argv = [
            str(BIN / "gunicorn"),
            "-c",
            "python:linli_kit.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "linli_web.app:create_app()",
        ]
        process = self._spawn(f"{FRONT}-web", argv, env, port)
        # The gateway passes pages to the front from its first request, and the front's address is
        # known now: a gateway started from here on is told it, whether the front is ready yet or not.
        self.front_started = True
        if wait:
            self._await_ready(process, "/web/healthz")
        return process

    def start_all(self, *, front: bool = False) -> Process:
        """Every worker and every web process (and the web front if asked), as `make run` starts
        them; returns the gateway's web process once every one is ready.

        The migrations run side by side, then every process starts at once: each spends its first
        seconds importing, and on a machine with few cores a process waiting on disk or on the
        database leaves the core to another (one after the other, a platform took 48 s to start
        on a loaded 2-core machine)."""
        self.migrate(*SERVICES)
        started = [self.start_worker(service, wait=False) for service in SERVICES]
        for service in SERVICES[1:]:
            started.append(self.start_web(service, wait=False))
        if front:
            started.append(self.start_front(wait=False))
        gateway = self.start_web("gateway", wait=False)
        started.append(gateway)
        self.await_all(started)
        return gateway

    def await_all(self, processes: list[Process]) -> None:
        """Wait until every one of `processes` answers its readiness probe (web processes /healthz,
        the front /web/healthz, others /readyz); fails with the first that exits meanwhile."""
        for process in processes:
            self._await_ready(process, self._ready_path(process))

    @staticmethod
    def _ready_path(process: Process) -> str:
        if process.name == f"{FRONT}-web":
            return "/web/healthz"
        return "/healthz" if process.name.endswith("-web") else "/readyz"

    def _await_ready(self, process: Process, path: str) -> None:
        def ready() -> bool:
            if process.popen.poll() is not None:
                raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}")
            try:
                return requests.get(process.url + path, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        eventually(ready, timeout=READY_SECONDS, interval=0.1, what=f"{process.name} ready")

    @property
    def backend(self) -> str:
        return "sqlite" if self.databases is None else "postgresql"

    def stop_all(self, timeout: float = 20) -> None:
        """Stop every process: each is sent SIGTERM at once and given `timeout` seconds to end (the
        same grace `Process.stop` gives one), then killed. One after the other, a platform's ten
        processes took 17 s to stop on a loaded machine; their shutdowns do not depend on each other."""
        running = [p for p in reversed(self.processes) if p.popen.poll() is None]
        for process in running:
            process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.popen.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
        self.processes.clear()

    def logs(self) -> str:
        return "\n\n".join(f"== {p.name} ==\n{p.log_tail()}" for p in self.processes)
