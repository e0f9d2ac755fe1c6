"""A RabbitMQ cluster of real nodes on this machine, for the tests that stop a broker node.

Each node is the machine's own `rabbitmq-server` (Debian's RabbitMQ 3.10 here) with its own node
name, AMQP port, distribution port, config file (the machine's /etc/rabbitmq/rabbitmq.conf may pin
the listener to 5672, so the environment's `RABBITMQ_NODE_PORT` alone is not enough), data and log
folders, and an Erlang cookie of the cluster's own, so its nodes never reach the machine's node nor
it them. The nodes join the first one (`rabbitmqctl join_cluster`); quorum queues declared once all
three run are replicated on all three. When the tests run as root the nodes run as the `rabbitmq`
user, as the packaged node does. Everything lives in one temporary folder, removed at the end.

The machine's own node (rabbit@localhost, 5672) is never touched: every command names a node of
this cluster. Binaries: `LINLI_RABBITMQ_BIN` (default /usr/lib/rabbitmq/bin, Debian's).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pika
from pika.exceptions import AMQPError

from linli_kit.testing.infra import InfraUnavailable, stable_port
from linli_kit.testing.waiting import eventually

RABBITMQ_BIN = Path(os.environ.get("LINLI_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
RUN_AS = "rabbitmq"  # the user the nodes run as when the tests run as root
BOOT_SECONDS = 240.0  # a node boots in 10-30 s on a quiet 2-core machine; minutes on a loaded one
CTL_SECONDS = 180.0


def _free_port() -> int:
    # Below the ephemeral range: these servers are stopped and started again (see stable_port).
    return stable_port()


@dataclass
class RabbitNode:
    index: int
    name: str  # e.g. lt1a2b3c4d-1@localhost
    amqp_port: int
    dist_port: int
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        found = []
        for path in [self.folder / "stdout.log", *sorted((self.folder / "log").glob("*.log"))]:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except FileNotFoundError:
                continue
            found.append(f"-- {path.name}\n" + "\n".join(text))
        return "\n".join(found)


@dataclass
class RabbitCluster:
    """`size` nodes, started by `start` and removed by `close`."""

    run_id: str
    size: int = 3
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="linli-rabbit-")))
    nodes: list[RabbitNode] = field(default_factory=list)
    boot_seconds: float = 0.0  # how long `start` took

    def __post_init__(self) -> None:
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise InfraUnavailable(
                f"rabbitmq-server not found in {RABBITMQ_BIN}: install RabbitMQ (apt-get install rabbitmq-server) "
                "or set LINLI_RABBITMQ_BIN to the folder of its rabbitmq-server and rabbitmqctl"
            )
        self.user = RUN_AS if os.geteuid() == 0 else None
        self.home = self.folder / "home"
        self.home.mkdir(parents=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (self.folder / "rabbitmq-env.conf").write_text("# the machine's rabbitmq-env.conf is not read\n")
        for index in range(self.size):
            folder = self.folder / f"node{index + 1}"
            node = RabbitNode(index, f"lt{self.run_id}-{index + 1}@localhost", _free_port(), _free_port(), folder)
            (folder / "log").mkdir(parents=True)
            (folder / "mnesia").mkdir()
            (folder / "enabled_plugins").write_text("[].\n")
            (folder / "rabbitmq.conf").write_text(
                "\n".join(
                    [
                        f"listeners.tcp.local = 127.0.0.1:{node.amqp_port}",
                        "loopback_users.guest = true",
                        "disk_free_limit.absolute = 50MB",
                        "vm_memory_high_watermark.relative = 0.2",
                        "log.console = false",
                        "log.file.level = info",
                        "",
                    ]
                )
            )
            self.nodes.append(node)
        self.folder.chmod(0o755)
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            for path in [self.folder, *self.folder.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)

    # --- the nodes ----------------------------------------------------------------------------
    def _env(self, node: RabbitNode | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.home),  # where the cluster's cookie is, for the nodes and rabbitmqctl
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        if node is not None:
            env |= {
                "RABBITMQ_NODENAME": node.name,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(node.amqp_port),
                "RABBITMQ_DIST_PORT": str(node.dist_port),
                "RABBITMQ_CONFIG_FILE": str(node.folder / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.folder / "advanced.config"),
                "RABBITMQ_MNESIA_BASE": str(node.folder / "mnesia"),
                "RABBITMQ_LOG_BASE": str(node.folder / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.folder / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(node.folder / "pid"),
                # The VM replaces the script's shell: the process started is the node itself.
                "RUNNING_UNDER_SYSTEMD": "true",
                # Loopback only for clustering too; one scheduler, as three nodes share two cores.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1} +S 1:1",
            }
        return env

    def start_node(self, node: RabbitNode) -> None:
        """Start the node's VM (it boots in the background; `await_node` waits for it)."""
        if node.running:
            return
        log = (node.folder / "stdout.log").open("ab")
        node.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self._env(node),
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
            start_new_session=True,
        )
        log.close()

    def await_node(self, node: RabbitNode, timeout: float = BOOT_SECONDS) -> None:
        """Wait until the node accepts AMQP connections."""

        def answers() -> bool:
            if node.process is not None and node.process.poll() is not None:
                raise AssertionError(f"node {node.name} exited with {node.process.returncode}:\n{node.log_tail()}")
            try:
                params = pika.URLParameters(node.url)
                params.socket_timeout = 2
                params.connection_attempts = 1
                pika.BlockingConnection(params).close()
                return True
            except (AMQPError, OSError):
                return False

        eventually(answers, timeout=timeout, interval=0.25, what=f"RabbitMQ node {node.name} answering")

    def stop_node(self, node: RabbitNode, *, kill: bool = False, timeout: float = 60) -> None:
        """Stop the node: SIGTERM, a clean shutdown; or `kill`, SIGKILL, as a crashed machine."""
        if not node.running:
            return
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            node.process.wait(timeout)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()
        # The VM's helper processes (in its session) end with it; make sure they do.
        try:
            os.killpg(node.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def ctl(
        self, node: RabbitNode, *args: str, check: bool = True, tool: str = "rabbitmqctl", timeout: float = CTL_SECONDS
    ) -> str:
        """Run `rabbitmqctl` (or `rabbitmq-queues`, ...) against one node of this cluster."""
        result = subprocess.run(
            [str(RABBITMQ_BIN / tool), "-n", node.name, *args],
            env=self._env(),
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
        )
        if check and result.returncode != 0:
            command = f"{tool} -n {node.name} {' '.join(args)}"
            raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # --- the cluster ----------------------------------------------------------------------------
    def start(self) -> None:
        """Boot every node, then join the others to the first; return once all run as one cluster."""
        started = time.monotonic()
        for node in self.nodes:
            self.start_node(node)
        for node in self.nodes:
            self.await_node(node)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
            self.await_node(node)
        running = self.running_nodes(first)
        if sorted(running) != sorted(n.name for n in self.nodes):
            raise AssertionError(f"the cluster did not form: running {running}")
        self.boot_seconds = time.monotonic() - started

    def running_nodes(self, via: RabbitNode) -> list[str]:
        status = json.loads(self.ctl(via, "cluster_status", "--formatter", "json"))
        return list(status.get("running_nodes", []))

    def amqp_url(self, order: list[int] | None = None) -> str:
        """The nodes' AMQP URLs separated by commas (AMQP_URL for the platform), in `order`."""
        return ",".join(self.nodes[i].url for i in (order if order is not None else range(self.size)))

    def node_named(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)

    def quorum_queue(self, queue: str, via: RabbitNode | None = None, timeout: float = CTL_SECONDS) -> dict:
        """{"leader": node name or None, "members": [...], "online": [...]} of a quorum queue, from
        its members' own Raft state (`rabbitmq-queues quorum_status`). `list_queues` is not used:
        with a member's node down it was seen to hang for minutes while it asked every queue."""
        via = via or next(node for node in self.nodes if node.running)
        rows = json.loads(
            self.ctl(via, "quorum_status", queue, "--formatter", "json", tool="rabbitmq-queues", timeout=timeout)
        )
        # A member that does not answer has an error term (a list in JSON) for its state.
        states = {row["Node Name"]: row.get("Raft State") for row in rows}
        members = list(states)
        online = [name for name, state in states.items() if state in ("leader", "follower")]
        leader = next((name for name, state in states.items() if state == "leader"), None)
        return {"name": queue, "leader": leader, "members": members, "online": online}

    def logs(self) -> str:
        return "\n\n".join(f"== {node.name} ==\n{node.log_tail()}" for node in self.nodes)

    def close(self) -> None:
        for node in self.nodes:
            self.stop_node(node)
        shutil.rmtree(self.folder, ignore_errors=True)
