"""Write the Kustomize base of Linli (deploy/k8s/base/*.yaml) from the platform's own facts.

    .venv/bin/python deploy/k8s/generate.py          write the files
    .venv/bin/python deploy/k8s/generate.py --check  exit 1 if a file differs from what it would write

The processes come from the Procfile (names, commands, ports), the broker topology from the kit
(`linli_kit.events.topology` and the routing keys each service's worker binds), so the manifests
cannot drift from the code: tests/test_k8s.py fails when a committed file is not what this writes.
Sizes for a real city live in overlays/city; overlays/local shrinks everything to one node.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = Path(__file__).resolve().parent / "base"

SERVICES = ("gateway", "issues", "meetings", "activities", "notifications")
WEB_FRONT = "web"
NAMESPACE = "linli"
IMAGE = "linli"
VHOST = "linli"
RABBITMQ = "rabbitmq"  # the RabbitmqCluster, hence the Service every process connects to
REDIS = "redis"
DATA_DIR = "/var/lib/linli"
PUBLIC_KEY_DIR = f"{DATA_DIR}/keys/public"
PRIVATE_KEY_DIR = f"{DATA_DIR}/keys/private"
METRICS_DIR = f"{DATA_DIR}/metrics"
SCRIPTS_DIR = "/opt/linli-k8s"
SCRIPTS = "linli-k8s-scripts"
PRIVATE_SECRET, PUBLIC_SECRET = "linli-jwt-private", "linli-jwt-public"
UID = 10001  # the Dockerfile's linli user
OPERATOR_NAMESPACES = {"rabbitmq": "rabbitmq-system", "cnpg": "cnpg-system", "keda": "keda"}
HEADER = "# Written by deploy/k8s/generate.py from the Procfile and the kit: edit that, not this file.\n"

PART_OF = {"app.kubernetes.io/part-of": "linli"}


# --- facts read from the platform -----------------------------------------------------------------
def procfile() -> dict[str, list[str]]:
    """Process name -> argv, with leading VAR=value assignments dropped."""
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        argv = shlex.split(command)
        while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            argv.pop(0)
        processes[name.strip()] = argv
    return processes


def bind_port(argv: list[str]) -> int | None:
    if "--bind" in argv:
        return int(argv[argv.index("--bind") + 1].rpartition(":")[2])
    return None


def health_port(argv: list[str]) -> int | None:
    if "--health-port" in argv:
        return int(argv[argv.index("--health-port") + 1])
    return None


def routing_keys(service: str) -> list[str]:
    """The event types the service's worker binds its queue to (none: the service has no queue)."""
    from linli_kit.config import load_settings

    definition = importlib.import_module(f"linli_{service}.definition").definition
    return sorted(definition.handlers(load_settings(service), None))


def service_of(process: str) -> str:
    return process.removesuffix("-worker")


# --- small builders ---------------------------------------------------------------------------------
def labels(process: str, service: str, kind: str) -> dict[str, str]:
    return {**PART_OF, "app.kubernetes.io/name": process, "linli/service": service, "linli/kind": kind}


def meta(name: str, process: str | None = None, service: str | None = None, kind: str | None = None) -> dict:
    out: dict[str, Any] = {"name": name}
    out["labels"] = labels(process, service, kind) if process and service and kind else dict(PART_OF)
    return out


def env_value(name: str, value: str) -> dict:
    return {"name": name, "value": value}


def env_secret(name: str, secret: str, key: str, optional: bool = False) -> dict:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def database_env(service: str) -> dict:
    # CloudNativePG writes the owner's credentials and URL (host <cluster>-rw) into <cluster>-app.
    return env_secret(f"{service.upper()}_DATABASE_URL", f"{service}-db-app", "uri")


def amqp_env(service: str) -> dict:
    return env_secret("AMQP_URL", f"{service}-amqp", "url")


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "runAsGroup": UID,
    "fsGroup": UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def probe(path: str, port: str, *, period: int = 10, failures: int = 3) -> dict:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def scratch_volumes(*, metrics: bool, public_key: bool = True, private_key: bool = False) -> tuple[list, list]:
    """(volumes, mounts): a writable data folder and /tmp on a read-only root, and the keys."""
    volumes: list[dict] = [
        {"name": "data", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict] = [{"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    if metrics:
        # gunicorn's workers share this folder; empty at every start, as the tmpfs in compose.
        volumes.append({"name": "metrics", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})
        mounts.append({"name": "metrics", "mountPath": METRICS_DIR})
    if public_key:
        volumes.append({"name": "jwt-public", "secret": {"secretName": PUBLIC_SECRET, "defaultMode": 0o444}})
        mounts.append({"name": "jwt-public", "mountPath": PUBLIC_KEY_DIR, "readOnly": True})
    if private_key:
        volumes.append({"name": "jwt-private", "secret": {"secretName": PRIVATE_SECRET, "defaultMode": 0o400}})
        mounts.append({"name": "jwt-private", "mountPath": PRIVATE_KEY_DIR, "readOnly": True})
    return volumes, mounts


def wait_for_schema(service: str) -> dict:
    return {
        "name": "wait-for-schema",
        "image": IMAGE,
        "command": ["python", f"{SCRIPTS_DIR}/schema_at_head.py", service],
        "envFrom": [{"configMapRef": {"name": "linli-common"}}],
        "env": [database_env(service)],
        "resources": resources("50m", "96Mi", "500m", "192Mi"),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def deployment(
    process: str, service: str, kind: str, container: dict, volumes: list, *, init: list, grace: int
) -> dict:
    pod_labels = labels(process, service, kind)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(process, process, service, kind),
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": process}},
            # A new pod is ready before an old one goes: no capacity is lost during a rollout.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {**pod_labels, "linli/process": process}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": POD_SECURITY,
                    "terminationGracePeriodSeconds": grace,
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": process}},
                        }
                    ],
                    **({"initContainers": init} if init else {}),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def pdb(process: str, service: str, kind: str) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(process, process, service, kind),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": process}}},
    }


def cluster_service(process: str, service: str, port: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(process, process, service, "web"),
        "spec": {
            "selector": {"app.kubernetes.io/name": process},
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def hpa(process: str, service: str) -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(process, process, service, "web"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": process},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


# --- the Linli processes ----------------------------------------------------------------------------
def web_process(service: str, argv: list[str]) -> list[dict]:
    port = bind_port(argv)
    assert port, f"{service}: the Procfile gives no --bind port"
    command = [*argv]
    command[command.index("--bind") + 1] = f"0.0.0.0:{port}"
    env = [database_env(service), amqp_env(service), env_value("PROMETHEUS_MULTIPROC_DIR", METRICS_DIR)]
    gateway = service == "gateway"
    if gateway:
        env += [
            env_value("JWT_PRIVATE_KEY_FILE", f"{PRIVATE_KEY_DIR}/jwt_private.pem"),
            env_value("REDIS_URL", f"redis://{REDIS}:6379/0"),
        ]
        env += [env_value(f"{name.upper()}_URL", f"http://{name}:{8000 + i}") for i, name in enumerate(SERVICES) if i]
        # Every path the gateway does not answer itself goes to the web front.
        env.append(env_value("FRONT_URL", f"http://{WEB_FRONT}:8005"))
    volumes, mounts = scratch_volumes(metrics=True, private_key=gateway)
    volumes.append({"name": "scripts", "configMap": {"name": SCRIPTS, "defaultMode": 0o444}})
    container = {
        "name": service,
        "image": IMAGE,
        "command": command,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "linli-common"}}],
        "env": env,
        "startupProbe": probe("/healthz", "http", period=2, failures=30),
        "livenessProbe": probe("/healthz", "http", failures=6),
        "readinessProbe": probe("/readyz", "http", period=5),
        # Endpoints drop the pod before gunicorn stops taking connections.
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "resources": resources("250m", "256Mi", "1", "512Mi"),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": mounts,
    }
    return [
        deployment(service, service, "web", container, volumes, init=[wait_for_schema(service)], grace=30),
        cluster_service(service, service, port),
        pdb(service, service, "web"),
        hpa(service, service),
    ]


def worker_process(process: str, service: str, argv: list[str], keys: list[str]) -> list[dict]:
    port = health_port(argv)
    assert port, f"{process}: the Procfile gives no --health-port"
    volumes, mounts = scratch_volumes(metrics=False)
    volumes.append({"name": "scripts", "configMap": {"name": SCRIPTS, "defaultMode": 0o444}})
    env = [database_env(service), amqp_env(service)]
    container: dict[str, Any] = {
        "name": process,
        "image": IMAGE,
        "command": argv,
        "ports": [{"name": "health", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "linli-common"}}],
        "env": env,
        "startupProbe": probe("/healthz", "health", period=2, failures=30),
        "livenessProbe": probe("/healthz", "health", failures=6),
        "readinessProbe": probe("/readyz", "health", period=10, failures=6),
        "resources": resources("250m", "256Mi", "1", "512Mi"),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": mounts,
    }
    if service == "notifications":
        # SMS and push providers' keys and templates (services/notifications/README.md), if any.
        container["envFrom"].append({"secretRef": {"name": "notifications-providers", "optional": True}})
    out = [
        deployment(process, service, "worker", container, volumes, init=[wait_for_schema(service)], grace=45),
        pdb(process, service, "worker"),
    ]
    if keys:
        out += keda(process, service)
    return out


def keda(process: str, service: str) -> list[dict]:
    """Workers follow their queue: KEDA reads its length with the service's own broker login."""
    return [
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": meta(f"{service}-rabbitmq", process, service, "worker"),
            "spec": {"secretTargetRef": [{"parameter": "host", "name": f"{service}-amqp", "key": "url"}]},
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": meta(process, process, service, "worker"),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": process},
                "minReplicaCount": 2,
                "maxReplicaCount": 8,
                "pollingInterval": 15,
                "cooldownPeriod": 300,
                "triggers": [
                    {
                        "type": "rabbitmq",
                        "metadata": {
                            "protocol": "amqp",
                            "queueName": f"{service}.events",
                            "mode": "QueueLength",
                            "value": "2000",
                        },
                        "authenticationRef": {"name": f"{service}-rabbitmq"},
                    }
                ],
            },
        },
    ]


def setup_job(service: str) -> dict:
    """`linli-<service> migrate`, then `declare`: the schema before any process of the version runs
    (their init containers wait for it), the queue before anything is published to it."""
    volumes, mounts = scratch_volumes(metrics=False, public_key=False)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(f"{service}-setup", f"{service}-setup", service, "setup"),
        "spec": {
            "backoffLimit": 6,
            # Gone an hour after it finished, so applying the next version runs it again.
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {
                    "labels": {**labels(f"{service}-setup", service, "setup"), "linli/process": f"{service}-setup"}
                },
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": POD_SECURITY,
                    "containers": [
                        {
                            "name": "setup",
                            "image": IMAGE,
                            "command": ["sh", "-ec", f"linli-{service} migrate\nlinli-{service} declare\n"],
                            "envFrom": [{"configMapRef": {"name": "linli-common"}}],
                            "env": [database_env(service), amqp_env(service)],
                            "resources": resources("100m", "192Mi", "1", "512Mi"),
                            "securityContext": CONTAINER_SECURITY,
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


KEYS_SCRIPT = (
    f'linli-gateway init-keys\npython {SCRIPTS_DIR}/publish_keys.py "$JWT_PRIVATE_KEY_FILE" "$JWT_PUBLIC_KEY_FILE"\n'
)


def keys_job() -> list[dict]:
    """`linli-gateway init-keys` into a scratch folder, then the pair published as two Secrets once."""
    name = "gateway-keys"
    job_labels = labels(name, "gateway", "setup")
    volumes, mounts = scratch_volumes(metrics=False, public_key=False)
    volumes.append({"name": "scripts", "configMap": {"name": SCRIPTS, "defaultMode": 0o444}})
    mounts.append({"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True})
    private, public = f"{DATA_DIR}/new-keys/jwt_private.pem", f"{DATA_DIR}/new-keys/jwt_public.pem"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name, name, "gateway", "setup")},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(name, name, "gateway", "setup"),
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [PRIVATE_SECRET, PUBLIC_SECRET],
                    "verbs": ["get", "update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(name, name, "gateway", "setup"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name}],
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta(name, name, "gateway", "setup"),
            "spec": {
                "backoffLimit": 6,
                "ttlSecondsAfterFinished": 3600,
                "template": {
                    "metadata": {"labels": {**job_labels, "linli/process": name}},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "serviceAccountName": name,
                        "enableServiceLinks": False,
                        "securityContext": POD_SECURITY,
                        "containers": [
                            {
                                "name": "init-keys",
                                "image": IMAGE,
                                "command": ["sh", "-ec", KEYS_SCRIPT],
                                "envFrom": [{"configMapRef": {"name": "linli-common"}}],
                                "env": [
                                    env_value("JWT_PRIVATE_KEY_FILE", private),
                                    env_value("JWT_PUBLIC_KEY_FILE", public),
                                ],
                                "resources": resources("50m", "96Mi", "500m", "256Mi"),
                                "securityContext": CONTAINER_SECURITY,
                                "volumeMounts": mounts,
                            }
                        ],
                        "volumes": volumes,
                    },
                },
            },
        },
    ]


def web_front(argv: list[str]) -> list[dict]:
    port = bind_port(argv)
    assert port, "web: the Procfile gives no --bind port"
    command = [*argv]
    command[command.index("--bind") + 1] = f"0.0.0.0:{port}"
    volumes, mounts = scratch_volumes(metrics=False, public_key=False)
    container = {
        "name": WEB_FRONT,
        "image": IMAGE,
        "command": command,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "linli-common"}}],
        "env": [
            env_value("GATEWAY_URL", "http://gateway:8000"),
            # Several copies: sessions, token vault and locks in Redis, one signing key for all.
            env_value("REDIS_URL", f"redis://{REDIS}:6379/1"),
            env_secret("WEB_SECRET_KEY", "web-secret", "secret-key"),
            {"name": "WEB_URL", "valueFrom": {"configMapKeyRef": {"name": "linli-web", "key": "WEB_URL"}}},
        ],
        "startupProbe": probe("/web/healthz", "http", period=2, failures=30),
        "livenessProbe": probe("/web/healthz", "http", failures=6),
        "readinessProbe": probe("/web/readyz", "http", period=5),
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "resources": resources("250m", "256Mi", "1", "512Mi"),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": mounts,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("linli-web", WEB_FRONT, WEB_FRONT, "web"),
            # The public address of the pages: the gateway's (port-forwarded locally).
            "data": {"WEB_URL": "http://127.0.0.1:8000"},
        },
        deployment(WEB_FRONT, WEB_FRONT, "web", container, volumes, init=[], grace=30),
        cluster_service(WEB_FRONT, WEB_FRONT, port),
        pdb(WEB_FRONT, WEB_FRONT, "web"),
        hpa(WEB_FRONT, WEB_FRONT),
    ]


# --- infrastructure -----------------------------------------------------------------------------------
def common() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": dict(PART_OF)}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("linli-common"),
            # What every Linli process reads (libs/kit/src/linli_kit/config.py), as in docker-compose.yml.
            "data": {
                "LINLI_DATA_DIR": DATA_DIR,
                "JWT_PUBLIC_KEY_FILE": f"{PUBLIC_KEY_DIR}/jwt_public.pem",
                "LINLI_TIMEZONE": "Asia/Shanghai",
                "LOG_LEVEL": "INFO",
                "LOG_JSON": "true",
            },
        },
    ]


def redis() -> list[dict]:
    name = REDIS
    container = {
        "name": name,
        "image": "redis:7-alpine",
        "args": ["redis-server", "--save", "", "--appendonly", "no"],
        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
        "startupProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 2, "failureThreshold": 30},
        "livenessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 10, "timeoutSeconds": 5},
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 5, "timeoutSeconds": 5},
        "resources": resources("100m", "128Mi", "500m", "512Mi"),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    spec = deployment(name, name, "infra", container, [{"name": "data", "emptyDir": {}}], init=[], grace=10)
    spec["spec"]["replicas"] = 1
    spec["spec"]["strategy"] = {"type": "Recreate"}
    pod = spec["spec"]["template"]["spec"]
    pod["securityContext"] = {**POD_SECURITY, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999}
    spec["spec"]["template"]["metadata"]["labels"].pop("linli/process")
    return [
        spec,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(name, name, name, "infra"),
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}],
            },
        },
        pdb(name, name, "infra"),
    ]


def rabbitmq(consumers: dict[str, list[str]]) -> list[dict]:
    """The broker and the kit's topology (DESIGN section 3), declared for the operators to keep."""
    from linli_kit.config import BusNames
    from linli_kit.events.topology import ALTERNATE_EXCHANGE, UNROUTED_QUEUE_ARGUMENTS

    bus = BusNames()
    ref = {"name": RABBITMQ}

    def topology(kind: str, name: str, spec: dict) -> dict:
        return {
            "apiVersion": "rabbitmq.com/v1beta1",
            "kind": kind,
            "metadata": meta(k8s_name(name)),
            "spec": {**spec, "rabbitmqClusterReference": ref},
        }

    out = [
        {
            "apiVersion": "rabbitmq.com/v1beta1",
            "kind": "RabbitmqCluster",
            "metadata": meta(RABBITMQ),
            "spec": {
                "replicas": 3,
                "image": "rabbitmq:3.13-management",
                "resources": resources("1", "2Gi", "2", "2Gi"),
                "persistence": {"storage": "20Gi"},
                "rabbitmq": {
                    # Quorum queues need a majority: never run two of three members on one node.
                    "additionalConfig": "cluster_partition_handling = pause_minority\n"
                    "vm_memory_high_watermark.relative = 0.6\n",
                },
                "affinity": {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 100,
                                "podAffinityTerm": {
                                    "topologyKey": "kubernetes.io/hostname",
                                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": RABBITMQ}},
                                },
                            }
                        ]
                    }
                },
            },
        },
        topology("Vhost", VHOST, {"name": VHOST, "defaultQueueType": "quorum"}),
        topology(
            "Exchange",
            bus.unrouted_exchange,
            {"name": bus.unrouted_exchange, "vhost": VHOST, "type": "fanout", "durable": True, "autoDelete": False},
        ),
        topology(
            "Exchange",
            bus.exchange,
            {
                "name": bus.exchange,
                "vhost": VHOST,
                "type": "topic",
                "durable": True,
                "autoDelete": False,
                "arguments": {ALTERNATE_EXCHANGE: bus.unrouted_exchange},
            },
        ),
        topology(
            "Exchange",
            bus.dead_letter_exchange,
            {"name": bus.dead_letter_exchange, "vhost": VHOST, "type": "direct", "durable": True, "autoDelete": False},
        ),
        topology(
            "Queue",
            bus.unrouted_queue,
            {
                "name": bus.unrouted_queue,
                "vhost": VHOST,
                "type": UNROUTED_QUEUE_ARGUMENTS["x-queue-type"],
                "durable": True,
                "autoDelete": False,
            },
        ),
        topology(
            "Binding",
            f"{bus.unrouted_queue}-binding",
            {
                "vhost": VHOST,
                "source": bus.unrouted_exchange,
                "destination": bus.unrouted_queue,
                "destinationType": "queue",
                "routingKey": "",
            },
        ),
        topology(
            "Policy",
            "linli-service-queues",
            {
                "name": "linli-service-queues",
                "vhost": VHOST,
                "applyTo": "queues",
                "priority": 1,
                # The services' own queues, not their dead-letter queues: the same values the kit
                # declares as arguments, so a queue declared without them still dead-letters.
                "pattern": "^(" + "|".join(re.escape(bus.queue(s)) for s in consumers) + ")$",
                "definition": {
                    "delivery-limit": 5,
                    "dead-letter-exchange": bus.dead_letter_exchange,
                    "dead-letter-strategy": "at-least-once",
                    "overflow": "reject-publish",
                },
            },
        ),
    ]
    return out


def k8s_name(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")


def service_broker(service: str, keys: list[str]) -> list[dict]:
    """The service's login, its permissions, and (if it consumes) its queues and bindings."""
    from linli_kit.config import BusNames
    from linli_kit.events.topology import declare_service_queue

    bus = BusNames()
    ref = {"name": RABBITMQ}
    process = f"{service}-worker"

    def topology(kind: str, name: str, spec: dict) -> dict:
        return {
            "apiVersion": "rabbitmq.com/v1beta1",
            "kind": kind,
            "metadata": meta(k8s_name(name), process, service, "broker"),
            "spec": {**spec, "rabbitmqClusterReference": ref},
        }

    own = [bus.exchange, bus.unrouted_exchange, bus.dead_letter_exchange, bus.unrouted_queue]
    if keys:
        own += [bus.queue(service), bus.dead_letter_queue(service)]
    own = list(dict.fromkeys(own))  # the unrouted exchange and its queue share a name
    names = "^(" + "|".join(re.escape(n) for n in own) + ")$"
    # Replaying dead letters publishes to the default exchange.
    writable = "^(" + "|".join(re.escape(n) for n in [*own, "amq.default"]) + ")$"
    out = [
        topology(
            "User",
            service,
            {"tags": [], "importCredentialsSecret": {"name": f"{service}-amqp"}},
        ),
        topology(
            "Permission",
            f"{service}-{VHOST}",
            {
                "vhost": VHOST,
                "userReference": {"name": k8s_name(service)},
                "permissions": {"configure": names, "write": writable, "read": names},
            },
        ),
    ]
    if not keys:
        return out
    recorder = _Recorder()
    declare_service_queue(recorder, bus, service, keys, delivery_limit=5)
    for queue, arguments in recorder.queues.items():
        if queue == bus.unrouted_queue:
            continue
        arguments = dict(arguments)
        queue_type = arguments.pop("x-queue-type")
        spec = {"name": queue, "vhost": VHOST, "type": queue_type, "durable": True, "autoDelete": False}
        if arguments:
            spec["arguments"] = arguments
        out.append(topology("Queue", queue, spec))
    for queue, exchange, key in recorder.bindings:
        if queue == bus.unrouted_queue:
            continue
        spec = {"vhost": VHOST, "source": exchange, "destination": queue, "destinationType": "queue", "routingKey": key}
        out.append(topology("Binding", f"{queue}-{key or 'all'}", spec))
    return out


class _Recorder:
    """A stand-in channel that records what the kit declares, for the operator to declare the same."""

    def __init__(self) -> None:
        self.queues: dict[str, dict] = {}
        self.bindings: list[tuple[str, str, str]] = []
        self.connection = self
        self.is_open = False

    def channel(self) -> _Recorder:
        return self

    def exchange_declare(self, *args: Any, **kwargs: Any) -> None:
        pass

    def queue_declare(self, queue: str, durable: bool = False, arguments: dict | None = None) -> None:
        self.queues[queue] = arguments or {}

    def queue_bind(self, queue: str, exchange: str, routing_key: str | None = None) -> None:
        self.bindings.append((queue, exchange, routing_key or ""))


def database(service: str) -> list[dict]:
    """The service's own PostgreSQL cluster: three instances, its database and login, backups."""
    name = f"{service}-db"
    process = f"{service}-db"
    return [
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": meta(name, process, service, "database"),
            "spec": {
                "instances": 3,
                "imageName": "ghcr.io/cloudnative-pg/postgresql:16",
                "primaryUpdateStrategy": "unsupervised",
                "enablePDB": True,
                # The owner login and its URL go to Secret <cluster>-app; the services read `uri`.
                "bootstrap": {"initdb": {"database": service, "owner": service}},
                "storage": {"size": "10Gi"},
                "resources": resources("500m", "1Gi", "2", "2Gi"),
                "postgresql": {"parameters": {"max_connections": "200", "shared_buffers": "256MB"}},
                "affinity": {
                    "enablePodAntiAffinity": True,
                    "podAntiAffinityType": "preferred",
                    "topologyKey": "kubernetes.io/hostname",
                },
                "inheritedMetadata": {"labels": {**PART_OF, "linli/service": service}},
                "backup": {
                    "retentionPolicy": "30d",
                    "barmanObjectStore": {
                        "destinationPath": f"s3://linli-backups/{service}",
                        "s3Credentials": {
                            "accessKeyId": {"name": "backup-s3", "key": "ACCESS_KEY_ID"},
                            "secretAccessKey": {"name": "backup-s3", "key": "ACCESS_SECRET_KEY"},
                        },
                        "wal": {"compression": "gzip"},
                        "data": {"compression": "gzip"},
                    },
                },
            },
        },
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Database",
            "metadata": meta(f"{name}-{service}", process, service, "database"),
            "spec": {
                "cluster": {"name": name},
                "name": service,
                "owner": service,
                "ensure": "present",
                "databaseReclaimPolicy": "retain",
            },
        },
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "ScheduledBackup",
            "metadata": meta(f"{name}-daily", process, service, "database"),
            "spec": {
                "cluster": {"name": name},
                "schedule": "0 0 3 * * *",  # seconds first: 03:00 every day
                "method": "barmanObjectStore",
                "backupOwnerReference": "self",
                "immediate": True,
            },
        },
    ]


# --- network policies -----------------------------------------------------------------------------------
def selector(**match: str) -> dict:
    return {"matchLabels": match}


def namespace(name: str) -> dict:
    return {"namespaceSelector": selector(**{"kubernetes.io/metadata.name": name})}


def tcp(*ports: int | str) -> list[dict]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def policy(name: str, pods: dict, *, ingress: list | None = None, egress: list | None = None) -> dict:
    types = [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]
    spec: dict[str, Any] = {"podSelector": pods, "policyTypes": types}
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(name), "spec": spec}


def network_policies(ports: dict[str, int]) -> list[dict]:
    """Only the gateway and the web front are reached from outside; a service only from the gateway;
    a Linli pod reaches its own database and the broker, and nothing it does not need."""
    linli = {"matchExpressions": [{"key": "linli/process", "operator": "Exists"}]}
    rabbit_pods = selector(**{"app.kubernetes.io/name": RABBITMQ})
    public = [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"namespaceSelector": {}}]
    internet = [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}]
    out = [
        # Every Linli pod: nothing in, nothing out, unless a policy below allows it.
        policy("linli-default-deny", linli, ingress=[], egress=[]),
        policy(
            "linli-dns",
            linli,
            egress=[
                {"to": [{"namespaceSelector": {}}], "ports": [{"protocol": p, "port": 53} for p in ("UDP", "TCP")]}
            ],
        ),
        policy(
            "gateway-from-anywhere",
            selector(**{"linli/process": "gateway"}),
            ingress=[{"from": public, "ports": tcp(ports["gateway"])}],
        ),
        policy(
            "web-from-anywhere",
            selector(**{"linli/process": WEB_FRONT}),
            ingress=[{"from": public, "ports": tcp(ports[WEB_FRONT])}],
        ),
        policy(
            "gateway-to-services-and-redis",
            selector(**{"linli/process": "gateway"}),
            egress=[
                *(
                    {"to": [{"podSelector": selector(**{"linli/process": s})}], "ports": tcp(ports[s])}
                    for s in (*SERVICES, WEB_FRONT)
                    if s != "gateway"
                ),
                {"to": [{"podSelector": selector(**{"app.kubernetes.io/name": REDIS})}], "ports": tcp(6379)},
            ],
        ),
        policy(
            "web-to-gateway-and-redis",
            selector(**{"linli/process": WEB_FRONT}),
            egress=[
                {"to": [{"podSelector": selector(**{"linli/process": "gateway"})}], "ports": tcp(ports["gateway"])},
                {"to": [{"podSelector": selector(**{"app.kubernetes.io/name": REDIS})}], "ports": tcp(6379)},
            ],
        ),
        policy(
            "redis-from-gateway-and-web",
            selector(**{"app.kubernetes.io/name": REDIS}),
            ingress=[
                {
                    "from": [{"podSelector": selector(**{"linli/process": p})} for p in ("gateway", WEB_FRONT)],
                    "ports": tcp(6379),
                }
            ],
        ),
        # SMS and push providers are on the internet.
        policy(
            "notifications-worker-to-providers",
            selector(**{"linli/process": "notifications-worker"}),
            egress=[{"to": internet, "ports": tcp(443)}],
        ),
        # The keys Job writes its two Secrets through the Kubernetes API.
        policy(
            "gateway-keys-to-api", selector(**{"linli/process": "gateway-keys"}), egress=[{"ports": tcp(443, 6443)}]
        ),
        policy(
            "rabbitmq-ingress",
            rabbit_pods,
            ingress=[
                {"from": [{"podSelector": linli}], "ports": tcp(5672)},
                {"from": [namespace(OPERATOR_NAMESPACES["keda"])], "ports": tcp(5672)},
                {"from": [namespace(OPERATOR_NAMESPACES["rabbitmq"])], "ports": tcp(15672, 5672)},
                {"from": [{"podSelector": rabbit_pods}]},
            ],
        ),
    ]
    for service in SERVICES:
        own_db = selector(**{"cnpg.io/cluster": f"{service}-db"})
        if service != "gateway":
            out.append(
                policy(
                    f"{service}-from-gateway",
                    selector(**{"linli/process": service}),
                    ingress=[
                        {
                            "from": [{"podSelector": selector(**{"linli/process": "gateway"})}],
                            "ports": tcp(ports[service]),
                        }
                    ],
                )
            )
        out.append(
            policy(
                f"{service}-to-database-and-broker",
                {
                    "matchExpressions": [{"key": "linli/process", "operator": "Exists"}],
                    "matchLabels": {"linli/service": service},
                },
                egress=[
                    {"to": [{"podSelector": own_db}], "ports": tcp(5432)},
                    {"to": [{"podSelector": rabbit_pods}], "ports": tcp(5672)},
                ],
            )
        )
        out.append(
            policy(
                f"{service}-db-ingress",
                own_db,
                ingress=[
                    {
                        "from": [
                            {
                                "podSelector": {
                                    "matchExpressions": [{"key": "linli/process", "operator": "Exists"}],
                                    "matchLabels": {"linli/service": service},
                                }
                            }
                        ],
                        "ports": tcp(5432),
                    },
                    {"from": [{"podSelector": own_db}], "ports": tcp(5432, 8000)},
                    {"from": [namespace(OPERATOR_NAMESPACES["cnpg"])], "ports": tcp(8000, 5432)},
                ],
            )
        )
    return out


# --- the whole base ---------------------------------------------------------------------------------------
def build() -> dict[str, list[dict] | dict]:
    processes = procfile()
    consumers = {s: routing_keys(s) for s in SERVICES}
    consumers = {s: keys for s, keys in consumers.items() if keys}
    ports = {name: bind_port(argv) for name, argv in processes.items() if bind_port(argv)}
    files: dict[str, list[dict] | dict] = {
        "common.yaml": common(),
        "redis.yaml": redis(),
        "rabbitmq.yaml": rabbitmq(consumers),
        "gateway-keys.yaml": keys_job(),
        "network-policies.yaml": network_policies(ports),
    }
    for service in SERVICES:
        keys = consumers.get(service, [])
        docs = web_process(service, processes[service])
        worker = f"{service}-worker"
        docs += worker_process(worker, service, processes[worker], keys)
        docs.append(setup_job(service))
        docs += service_broker(service, keys)
        docs += database(service)
        files[f"{service}.yaml"] = docs
    files[f"{WEB_FRONT}.yaml"] = web_front(processes[WEB_FRONT])
    known = {WEB_FRONT, *SERVICES, *(f"{s}-worker" for s in SERVICES)}
    unknown = set(processes) - known
    assert not unknown, f"Procfile processes without a manifest here: {sorted(unknown)}; add them to generate.py"
    files["kustomization.yaml"] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": [name for name in files if name != "kustomization.yaml"],
        "configMapGenerator": [
            {"name": SCRIPTS, "files": ["scripts/schema_at_head.py", "scripts/publish_keys.py"]},
        ],
        "images": [{"name": IMAGE, "newName": "linli", "newTag": "latest"}],
    }
    return files


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a value used twice is written twice, not as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120)


def render(docs: list[dict] | dict) -> str:
    if isinstance(docs, dict):
        return HEADER + dump(docs)
    return HEADER + "".join("---\n" + dump(d) for d in docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the files are current")
    args = parser.parse_args(argv)
    stale = []
    for name, docs in build().items():
        path = BASE / name
        text = render(docs)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print(f"deploy/k8s/base is not what generate.py writes: {', '.join(stale)}", file=sys.stderr)
        return 1
    print(f"deploy/k8s/base: {'up to date' if not stale else 'wrote ' + ', '.join(stale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
