"""The Kubernetes deployment (deploy/k8s/) renders, validates, and agrees with the platform.

Offline and quick: the overlays are rendered with kustomize (`kubectl kustomize`, or a `kustomize`
binary), every built-in object is validated against the Kubernetes schemas of K8S_VERSION
(kubernetes-validate, strict: an unknown field fails), and every custom resource against the
openAPIV3Schema of its operator's CRD, read from the folder LINLI_K8S_CRDS names (.ci/run sets it to
../shared/k8s-crds; without it these tests fail, they never skip). Then the manifests are held
against the Procfile, docker-compose.yml, DESIGN.md and the kit: a process, port, setting, queue
or binding that differs fails here by name. The network policies are evaluated, not just read.
"""

from __future__ import annotations

import base64
import copy
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("local", "city")
# The Kubernetes release the manifests are written for and validated against.
K8S_VERSION = "1.33.0"
CRDS_ENV = "LINLI_K8S_CRDS"
SERVICES = ("gateway", "issues", "meetings", "activities", "notifications")
WEB_FRONT = "web"
NAMESPACE = "linli"
# Made in the cluster, not by kustomize: CloudNativePG writes <cluster>-app, the keys Job the pair.
MADE_IN_CLUSTER = {f"{s}-db-app" for s in SERVICES} | {"linli-jwt-private", "linli-jwt-public"}
OPTIONAL_SECRETS = {"notifications-providers"}


# --- rendering ----------------------------------------------------------------------------------------
def kustomize_command() -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    pytest.fail("neither kubectl nor kustomize is on PATH: install one to render deploy/k8s (kubectl kustomize)")


@cache
def rendered(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(
        [*kustomize_command(), str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kustomize failed on overlays/{overlay}:\n{result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def objects(overlay: str, kind: str, group: str | None = None) -> dict[str, dict]:
    found = {}
    for doc in rendered(overlay):
        if doc["kind"] == kind and (group is None or doc["apiVersion"].split("/")[0] == group):
            found[doc["metadata"]["name"]] = doc
    return found


def one(overlay: str, kind: str, name: str) -> dict:
    found = objects(overlay, kind)
    assert name in found, f"overlays/{overlay}: no {kind} {name!r} (there are {sorted(found)})"
    return found[name]


# --- facts of the platform -----------------------------------------------------------------------------
@cache
def procfile() -> dict[str, list[str]]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            argv = shlex.split(command)
            while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
                argv.pop(0)
            processes[name.strip()] = argv
    return processes


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def procfile_port(process: str) -> int:
    argv = procfile()[process]
    bind = option(argv, "--bind")
    if bind:
        return int(re.sub(r"\$\{[^}]*\}", "", bind).rpartition(":")[2])
    port = option(argv, "--health-port")
    assert port, f"Procfile: {process} has neither --bind nor --health-port"
    return int(port)


@cache
def design_ports() -> dict[str, int]:
    """DESIGN.md section 2: `gateway/` | … | 8000, `services/issues/` | … | 8001 …"""
    text = (ROOT / "docs" / "DESIGN.md").read_text()
    rows = re.findall(r"^\| `(?:services/)?([a-z]+)/` \|.*\| (\d{4}) \|$", text, re.MULTILINE)
    return {name: int(port) for name, port in rows}


@cache
def compose() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def compose_env(process: str) -> dict[str, str]:
    env = compose()[process].get("environment") or {}
    return {k: str(v) for k, v in env.items()} if isinstance(env, dict) else dict(e.split("=", 1) for e in env)


@cache
def settings_read_by_code() -> set[str]:
    """Every environment variable a Linli process reads, from the sources that read them."""
    names: set[str] = {"PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY", "WEB_THREADS", "WEB_TIMEOUT"}
    sources = [*ROOT.glob("libs/kit/src/**/*.py"), *ROOT.glob("gateway/src/**/*.py")]
    sources += [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("web/src/**/*.py")]
    pattern = re.compile(r"""(?:env\.\w+|environ\.get|getenv|environ\[|_url)\(?\s*f?["']([A-Z][A-Z0-9_{}.()]*)["']""")
    for path in sources:
        for name in pattern.findall(path.read_text()):
            if "{" not in name:
                names.add(name)
    # Names built per service: {prefix}_DATABASE_URL (kit), {NAME}_URL and _TIMEOUT_SECONDS (gateway).
    for service in SERVICES:
        names |= {f"{service.upper()}_DATABASE_URL", f"{service.upper()}_URL", f"{service.upper()}_TIMEOUT_SECONDS"}
    return names


def consumers() -> dict[str, list[str]]:
    from linli_kit.config import load_settings

    found = {}
    for service in SERVICES:
        definition = importlib.import_module(f"linli_{service}.definition").definition
        keys = sorted(definition.handlers(load_settings(service), None))
        if keys:
            found[service] = keys
    return found


class Recorder:
    """A stand-in AMQP channel: what the kit declares, without a broker."""

    def __init__(self) -> None:
        self.exchanges: dict[str, tuple[str, dict]] = {}
        self.queues: dict[str, dict] = {}
        self.bindings: set[tuple[str, str, str]] = set()
        self.connection = self
        self.is_open = False

    def channel(self) -> Recorder:
        return self

    def exchange_declare(self, exchange: str, exchange_type: str = "direct", durable: bool = False, **kw: Any) -> None:
        if not kw.get("passive"):
            self.exchanges[exchange] = (exchange_type, kw.get("arguments") or {})

    def queue_declare(self, queue: str, durable: bool = False, arguments: dict | None = None) -> None:
        assert durable
        self.queues[queue] = arguments or {}

    def queue_bind(self, queue: str, exchange: str, routing_key: str | None = None) -> None:
        self.bindings.add((exchange, queue, routing_key or ""))


@cache
def kit_topology() -> Recorder:
    from linli_kit.config import BusNames, load_settings
    from linli_kit.events.topology import declare_exchanges, declare_service_queue

    recorder = Recorder()
    declare_exchanges(recorder, BusNames())
    for service, keys in consumers().items():
        limit = load_settings(service).delivery_limit
        declare_service_queue(recorder, BusNames(), service, keys, delivery_limit=limit)
    return recorder


# --- schemas --------------------------------------------------------------------------------------------
def crd_folder() -> Path:
    folder = os.environ.get(CRDS_ENV)
    if not folder:
        pytest.fail(
            f"{CRDS_ENV} is not set: point it at the operators' CRDs (.ci/run sets "
            f"{CRDS_ENV}=../shared/k8s-crds); the custom resources cannot be validated without them"
        )
    path = Path(folder)
    assert path.is_dir() and list(path.glob("*.yaml")), f"{CRDS_ENV}={folder} holds no CRD files"
    return path


@cache
def crd_schemas() -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> strict openAPIV3Schema of each served version."""
    found = {}
    for path in sorted(crd_folder().glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    schema = strict(version["schema"]["openAPIV3Schema"])
                    found[(spec["group"], version["name"], spec["names"]["kind"])] = schema
    return found


def strict(schema: dict) -> dict:
    """As the API server with field validation Strict (kubectl's default): an object that lists its
    properties accepts no other field, unless it says it keeps unknown ones."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for key, value in node.items():
                if key != "properties":
                    walk(value)
            for value in (node.get("properties") or {}).values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    # metadata is the API server's: its fields are checked by kubernetes-validate for built-ins.
    schema.get("properties", {}).get("metadata", {}).pop("additionalProperties", None)
    return schema


def builtin(doc: dict) -> bool:
    group = doc["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def crd_errors(doc: dict) -> list[str]:
    group, _, version = doc["apiVersion"].rpartition("/")
    schema = crd_schemas().get((group, version, doc["kind"]))
    if schema is None:
        return [f"no CRD in {crd_folder()} serves {doc['apiVersion']} {doc['kind']}"]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in validator.iter_errors(doc)]


# --- validation ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_builtin_object_is_valid_for_the_stated_kubernetes(overlay):
    problems = []
    for doc in rendered(overlay):
        if builtin(doc):
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{doc['kind']} {doc['metadata']['name']}: {error.path}: {error.message}")
    assert not problems, f"overlays/{overlay} against Kubernetes {K8S_VERSION}:\n" + "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_custom_resource_matches_its_operators_crd(overlay):
    custom = [doc for doc in rendered(overlay) if not builtin(doc)]
    kinds = {doc["kind"] for doc in custom}
    assert {"RabbitmqCluster", "Queue", "Exchange", "Binding", "Policy", "User", "Permission", "Vhost"} <= kinds
    assert {"Cluster", "Database", "ScaledObject", "TriggerAuthentication"} <= kinds
    problems = [f"{d['kind']} {d['metadata']['name']}: {e}" for d in custom for e in crd_errors(d)]
    assert not problems, f"overlays/{overlay}:\n" + "\n".join(problems)


def test_the_validators_refuse_a_wrong_field():
    """Both validators can fail: a misspelt field and a wrong type are caught."""
    deployment = copy.deepcopy(one("local", "Deployment", "issues"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    queue = copy.deepcopy(one("local", "Queue", "issues-events"))
    queue["spec"]["durabel"] = True
    cluster = copy.deepcopy(one("city", "Cluster", "issues-db"))
    cluster["spec"]["instances"] = "three"
    assert crd_errors(queue) and crd_errors(cluster)


def test_every_object_has_a_name_and_lives_in_the_linli_namespace():
    for overlay in OVERLAYS:
        for doc in rendered(overlay):
            name = doc["metadata"].get("name", "")
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), f"{doc['kind']} named {name!r}"
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']} {name} outside {NAMESPACE}"


def test_the_base_is_what_generate_py_writes():
    spec = importlib.util.spec_from_file_location("linli_k8s_generate", K8S / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, docs in module.build().items():
        path = K8S / "base" / name
        assert path.exists() and path.read_text() == module.render(docs), (
            f"deploy/k8s/base/{name} is stale: run .venv/bin/python deploy/k8s/generate.py"
        )


# --- processes -------------------------------------------------------------------------------------------
def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def pod_labels(workload: dict) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def env_of(overlay: str, workload: dict, index: int = 0, init: bool = False) -> dict[str, Any]:
    """Name -> value (str) or its source ({"secret": (name, key)}, {"configMap": …}) for one container."""
    spec = workload["spec"]["template"]["spec"]
    box = (spec.get("initContainers") if init else spec["containers"])[index]
    out: dict[str, Any] = {}
    for source in box.get("envFrom", []):
        if "configMapRef" in source:
            out.update(one(overlay, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in box.get("env", []):
        if "value" in item:
            out[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]
            kind = "secret" if "secretKeyRef" in ref else "configMap"
            key_ref = ref.get("secretKeyRef") or ref["configMapKeyRef"]
            out[item["name"]] = {kind: (key_ref["name"], key_ref["key"])}
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_procfile_process_has_a_deployment_running_its_command(overlay):
    deployments = objects(overlay, "Deployment")
    for process, argv in procfile().items():
        assert process in deployments, f"overlays/{overlay}: Procfile process {process!r} has no Deployment"
        command = container(deployments[process])["command"]
        expected = [*argv]
        if "--bind" in expected:
            expected[expected.index("--bind") + 1] = f"0.0.0.0:{procfile_port(process)}"
        assert command == expected, f"{process}: runs {command}, the Procfile says {argv}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_match_the_procfile_design_and_compose(overlay):
    for process in procfile():
        port = procfile_port(process)
        service = process.removesuffix("-worker")
        if process in design_ports():
            assert port == design_ports()[process], f"{process}: Procfile {port}, DESIGN {design_ports()[process]}"
        if process in compose():
            healthcheck = " ".join(compose()[process]["healthcheck"]["test"])
            assert f"127.0.0.1:{port}/" in healthcheck, f"{process}: compose probes another port than {port}"
        ports = container(one(overlay, "Deployment", process))["ports"]
        assert [p["containerPort"] for p in ports] == [port], f"{process}: container ports {ports}"
        if not process.endswith("-worker"):
            svc = one(overlay, "Service", service)
            assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(port, ports[0]["name"])]
            assert svc["spec"]["selector"].items() <= pod_labels(one(overlay, "Deployment", process)).items()
    assert set(design_ports()) == set(SERVICES), f"DESIGN.md section 2 names {sorted(design_ports())}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_limits_and_a_disruption_budget(overlay):
    budgets = objects(overlay, "PodDisruptionBudget").values()
    for name, deployment in objects(overlay, "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        for box in [*spec.get("initContainers", []), *spec["containers"]]:
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(box.get("resources", {}).get(kind, {})), f"{name}/{box['name']}: {kind}"
            assert box.get("securityContext", {}).get("allowPrivilegeEscalation") is False, f"{name}/{box['name']}"
        for box in spec["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in box, f"{name}/{box['name']} has no {probe}"
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
        ]
        assert len(matching) == 1, f"{name}: {len(matching)} PodDisruptionBudgets select its pods"
        budget = matching[0]["spec"]
        assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable"), f"{name}: an empty budget"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_healthz_and_readyz_on_the_process_port(overlay):
    for process in procfile():
        box = container(one(overlay, "Deployment", process))
        port = box["ports"][0]
        prefix = "/web" if process == WEB_FRONT else ""
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            get = box[probe]["httpGet"]
            assert get["path"] == prefix + path, f"{process}: {probe} asks {get['path']}"
            assert get["port"] in (port["name"], port["containerPort"]), f"{process}: {probe} on {get['port']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_are_ones_the_code_reads_and_agree_with_compose(overlay):
    same_value = (
        "LINLI_DATA_DIR",
        "JWT_PUBLIC_KEY_FILE",
        "JWT_PRIVATE_KEY_FILE",
        "PROMETHEUS_MULTIPROC_DIR",
        "LOG_JSON",
    )
    for name, deployment in objects(overlay, "Deployment").items():
        if name not in procfile():
            continue
        env = env_of(overlay, deployment)
        unknown = set(env) - settings_read_by_code()
        assert not unknown, f"{name}: sets {sorted(unknown)}, which no Linli code reads"
        if name in compose():
            missing = set(compose_env(name)) - set(env)
            assert not missing, f"{name}: compose sets {sorted(missing)}, the Deployment does not"
            for key in same_value:
                if key in compose_env(name):
                    assert env[key] == compose_env(name)[key], f"{name}: {key} is {env[key]!r}, compose says otherwise"
    web = env_of(overlay, one(overlay, "Deployment", WEB_FRONT))
    assert urlparse(web["GATEWAY_URL"]).port == design_ports()["gateway"]
    assert urlparse(one(overlay, "ConfigMap", "linli-web")["data"]["WEB_URL"]).scheme in ("http", "https")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_process_reaches_only_its_own_database_through_the_clusters_rw_service(overlay):
    clusters = objects(overlay, "Cluster", "postgresql.cnpg.io")
    databases = {d["spec"]["name"]: d for d in objects(overlay, "Database").values()}
    for service in SERVICES:
        cluster = clusters.get(f"{service}-db")
        assert cluster, f"overlays/{overlay}: no CloudNativePG Cluster {service}-db"
        assert cluster["spec"]["bootstrap"]["initdb"] == {"database": service, "owner": service}
        assert databases[service]["spec"]["cluster"]["name"] == f"{service}-db"
        assert databases[service]["spec"]["owner"] == service
        assert overlay == "local" or cluster["spec"]["instances"] == 3
    for name, deployment in objects(overlay, "Deployment").items():
        if name not in procfile():
            continue
        env = env_of(overlay, deployment)
        urls = {k: v for k, v in env.items() if k.endswith("DATABASE_URL")}
        if name == WEB_FRONT:
            assert not urls, "the web front has no database"
            continue
        service = name.removesuffix("-worker")
        # The owner's URL CloudNativePG writes, naming host <cluster>-rw.
        assert urls == {f"{service.upper()}_DATABASE_URL": {"secret": (f"{service}-db-app", "uri")}}, f"{name}: {urls}"
        init = deployment["spec"]["template"]["spec"]["initContainers"][0]
        assert init["command"][-1] == service and "schema_at_head" in init["command"][1]
        assert (
            env_of(overlay, deployment, init=True)[f"{service.upper()}_DATABASE_URL"]
            == urls[f"{service.upper()}_DATABASE_URL"]
        )


def test_backups_are_scheduled_for_every_city_database():
    backups = {b["spec"]["cluster"]["name"]: b for b in objects("city", "ScheduledBackup").values()}
    for service in SERVICES:
        cluster = one("city", "Cluster", f"{service}-db")
        store = cluster["spec"]["backup"]["barmanObjectStore"]
        assert store["destinationPath"].endswith(f"/{service}"), f"{service}: backups share a path"
        assert f"{service}-db" in backups and backups[f"{service}-db"]["spec"]["method"] == "barmanObjectStore"


# --- keys and secrets -----------------------------------------------------------------------------------
def secret_refs(doc: dict) -> set[str]:
    """Names of the Secrets an object refers to, wherever (env, volumes, CR credentials)."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if key in ("secretKeyRef", "secretRef") and "name" in node:
                found.add(node["name"])
            if key == "secret" and "secretName" in node:
                found.add(node["secretName"])
            if key in ("importCredentialsSecret", "accessKeyId", "secretAccessKey") and "name" in node:
                found.add(node["name"])
            if key == "secretTargetRef":
                pass
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                if key == "secretTargetRef":
                    found.add(item["name"])
                walk(item, key)

    walk(doc)
    return found


def test_only_the_gateway_holds_the_token_private_key():
    for overlay in OVERLAYS:
        holders = {
            d["metadata"]["name"]
            for d in rendered(overlay)
            if d["kind"] != "Role" and "linli-jwt-private" in secret_refs(d)
        }
        assert holders == {"gateway"}, f"overlays/{overlay}: the private key is held by {sorted(holders)}"
        gateway = one(overlay, "Deployment", "gateway")
        private = env_of(overlay, gateway)["JWT_PRIVATE_KEY_FILE"]
        mounts = {m["name"]: m["mountPath"] for m in container(gateway)["volumeMounts"]}
        volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
        volume = next(n for n, v in volumes.items() if v.get("secret", {}).get("secretName") == "linli-jwt-private")
        assert Path(private).parent == Path(mounts[volume]) and Path(private).name == "jwt_private.pem"
        for name, deployment in objects(overlay, "Deployment").items():
            if name not in procfile() or name == WEB_FRONT:
                continue
            public = env_of(overlay, deployment)["JWT_PUBLIC_KEY_FILE"]
            mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
            volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
            source = volumes[mounts[str(Path(public).parent)]]["secret"]["secretName"]
            assert source == "linli-jwt-public" and Path(public).name == "jwt_public.pem", name


def test_the_keys_job_runs_init_keys_then_publishes_them():
    job = one("local", "Job", "gateway-keys")
    script = container(job)["command"][-1]
    assert script.index("linli-gateway init-keys") < script.index("publish_keys.py")
    role = one("local", "Role", "gateway-keys")
    assert all(rule["resources"] == ["secrets"] for rule in role["rules"])
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "gateway-keys"


@pytest.mark.parametrize("service", SERVICES)
def test_a_setup_job_migrates_then_declares_before_the_processes_start(service):
    job = one("city", "Job", f"{service}-setup")
    argv = container(job)["command"]
    assert argv[:2] == ["sh", "-ec"], "the setup must stop at the first error"
    steps = re.findall(r"linli-([a-z]+) ([a-z-]+)", argv[2])
    assert steps == [(service, "migrate"), (service, "declare")]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_is_made_somewhere(overlay):
    referenced = set().union(*(secret_refs(d) for d in rendered(overlay))) - OPTIONAL_SECRETS
    made = set(objects(overlay, "Secret")) | MADE_IN_CLUSTER
    external = referenced - made
    if overlay == "local":
        assert not external, f"overlays/local needs Secrets nobody makes: {sorted(external)}"
    else:
        readme = (K8S / "README.md").read_text()
        unlisted = {name for name in external if f"`{name}`" not in readme}
        assert not unlisted, (
            f"the city needs Secrets deploy/k8s/README.md does not tell how to make: {sorted(unlisted)}"
        )
        assert not objects(overlay, "Secret"), "no credentials in the city overlay"


def test_local_broker_logins_agree_with_their_urls():
    vhost = one("local", "Vhost", "linli")["spec"]["name"]
    broker = next(iter(objects("local", "RabbitmqCluster")))
    for service in SERVICES:
        data = {k: base64.b64decode(v).decode() for k, v in one("local", "Secret", f"{service}-amqp")["data"].items()}
        url = urlparse(data["url"])
        assert (url.username, url.password, url.hostname, url.port) == (
            data["username"],
            data["password"],
            broker,
            5672,
        )
        assert url.path.lstrip("/") == vhost
        user = one("local", "User", service)
        assert user["spec"]["importCredentialsSecret"]["name"] == f"{service}-amqp"


# --- broker topology --------------------------------------------------------------------------------------
def test_the_broker_is_a_three_node_cluster_with_one_vhost():
    cluster = one("city", "RabbitmqCluster", "rabbitmq")
    assert cluster["spec"]["replicas"] == 3
    for doc in rendered("city"):
        if doc["apiVersion"].startswith("rabbitmq.com/") and doc["kind"] != "RabbitmqCluster":
            assert doc["spec"]["rabbitmqClusterReference"] == {"name": "rabbitmq"}
            if doc["kind"] not in ("Vhost", "User"):
                assert doc["spec"]["vhost"] == "linli", f"{doc['kind']} {doc['metadata']['name']}"


def test_exchanges_queues_and_bindings_are_those_the_kit_declares():
    kit = kit_topology()
    exchanges = {e["spec"]["name"]: e["spec"] for e in objects("city", "Exchange").values()}
    assert set(exchanges) == set(kit.exchanges)
    for name, (kind, arguments) in kit.exchanges.items():
        assert exchanges[name]["type"] == kind and exchanges[name].get("arguments", {}) == arguments, name
        assert exchanges[name]["durable"] is True
    queues = {q["spec"]["name"]: q["spec"] for q in objects("city", "Queue").values()}
    assert set(queues) == set(kit.queues)
    for name, arguments in kit.queues.items():
        spec = queues[name]
        declared = {**spec.get("arguments", {}), "x-queue-type": spec["type"]}
        # Equal, or the broker refuses the kit's redeclaration (PRECONDITION_FAILED).
        assert declared == arguments, f"queue {name}: {declared} != the kit's {arguments}"
        assert spec["durable"] is True
    bindings = {
        (b["spec"]["source"], b["spec"]["destination"], b["spec"]["routingKey"])
        for b in objects("city", "Binding").values()
    }
    assert bindings == kit.bindings, f"missing {kit.bindings - bindings}, extra {bindings - kit.bindings}"


def test_the_policy_sets_delivery_limit_and_dead_letters_on_every_service_queue():
    from linli_kit.config import BusNames

    bus = BusNames()
    policies = list(objects("city", "Policy").values())
    assert len(policies) == 1
    spec = policies[0]["spec"]
    assert spec["applyTo"] == "queues"
    definition = spec["definition"]
    for service in consumers():
        arguments = kit_topology().queues[bus.queue(service)]
        assert re.search(spec["pattern"], bus.queue(service)), f"the policy misses {bus.queue(service)}"
        assert not re.search(spec["pattern"], bus.dead_letter_queue(service)), "dead letters must not dead-letter"
        assert definition["delivery-limit"] == arguments["x-delivery-limit"]
        assert definition["dead-letter-exchange"] == arguments["x-dead-letter-exchange"]
        assert definition["dead-letter-strategy"] == arguments["x-dead-letter-strategy"]
        assert definition["overflow"] == arguments["x-overflow"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_own_login_allowed_only_its_own_queues(service):
    from linli_kit.config import BusNames

    bus = BusNames()
    permissions = [p for p in objects("city", "Permission").values() if p["spec"]["userReference"]["name"] == service]
    assert len(permissions) == 1, f"{service}: {len(permissions)} Permissions"
    rights = permissions[0]["spec"]["permissions"]
    allowed = lambda right, name: re.search(rights[right], name) is not None  # noqa: E731
    for name in (bus.exchange, bus.unrouted_exchange, bus.dead_letter_exchange):
        assert allowed("configure", name) and allowed("read", name)
    assert allowed("write", bus.exchange) and allowed("write", bus.unrouted_exchange)
    if service in consumers():
        for name in (bus.queue(service), bus.dead_letter_queue(service)):
            assert allowed("configure", name) and allowed("read", name) and allowed("write", name)
    for other in SERVICES:
        if other != service:
            for right in ("configure", "read", "write"):
                assert not allowed(right, bus.queue(other)), f"{service} may {right} {bus.queue(other)}"


# --- scaling ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_processes_scale_on_cpu_and_workers_on_their_queue(overlay):
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in objects(overlay, "HorizontalPodAutoscaler").values()}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in objects(overlay, "ScaledObject").values()}
    auths = objects(overlay, "TriggerAuthentication")
    for process in procfile():
        if not process.endswith("-worker"):
            metric = hpas[process]["spec"]["metrics"][0]
            assert metric["resource"]["name"] == "cpu", process
            assert hpas[process]["spec"]["maxReplicas"] > hpas[process]["spec"]["minReplicas"]
            continue
        service = process.removesuffix("-worker")
        if service not in consumers():
            assert process not in scaled, f"{process} has no queue to follow"
            continue
        assert process not in hpas, f"{process}: KEDA makes its autoscaler; a second one would fight it"
        trigger = scaled[process]["spec"]["triggers"][0]
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["queueName"] == f"{service}.events"
        assert trigger["metadata"]["mode"] == "QueueLength"
        auth = auths[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
        assert auth == [{"parameter": "host", "name": f"{service}-amqp", "key": "url"}]


# --- network policies, evaluated ---------------------------------------------------------------------------
def matches(selector: dict, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        if (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values):
            return False
    return True


def peer_matches(peer: dict, other: dict) -> bool:
    """`other`: {"namespace", "labels"} of a pod, or {"ip"} of something outside the cluster."""
    if "ipBlock" in peer:
        if "ip" not in other:
            return False
        import ipaddress

        address = ipaddress.ip_address(other["ip"])
        block = peer["ipBlock"]
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
    if "ip" in other:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": other["namespace"]}
        if not matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif other["namespace"] != NAMESPACE:
        return False
    return "podSelector" not in peer or matches(peer["podSelector"], other["labels"])


def allowed(overlay: str, source: dict, target: dict, port: int) -> bool:
    """Whether `source` may open a TCP connection to `target` on `port`, by the NetworkPolicies."""

    def side(pod: dict, direction: str, other: dict) -> bool:
        if "labels" not in pod or pod["namespace"] != NAMESPACE:
            return True  # not ours to police
        relevant = [
            p["spec"]
            for p in objects(overlay, "NetworkPolicy").values()
            if direction in p["spec"]["policyTypes"] and matches(p["spec"]["podSelector"], pod["labels"])
        ]
        if not relevant:
            return True
        key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for spec in relevant:
            for rule in spec.get(key, []):
                ports = rule.get("ports")
                port_ok = not ports or any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports)
                peer_ok = peers not in rule or any(peer_matches(peer, other) for peer in rule[peers])
                if port_ok and peer_ok:
                    return True
        return False

    return side(source, "Egress", target) and side(target, "Ingress", source)


def pod(overlay: str, name: str) -> dict:
    if name.endswith("-db"):
        return {"namespace": NAMESPACE, "labels": {"cnpg.io/cluster": name, "cnpg.io/instanceRole": "primary"}}
    if name == "rabbitmq":
        return {"namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": "rabbitmq"}}
    kind = "Job" if name.endswith(("-setup", "-keys")) else "Deployment"
    return {"namespace": NAMESPACE, "labels": pod_labels(one(overlay, kind, name))}


OUTSIDE = {"ip": "203.0.113.7"}
INGRESS_CONTROLLER = {"namespace": "ingress-nginx", "labels": {"app.kubernetes.io/name": "ingress-nginx"}}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_and_the_web_front_take_traffic_from_outside(overlay):
    for outsider in (OUTSIDE, INGRESS_CONTROLLER):
        for process in procfile():
            port = procfile_port(process)
            expected = process in ("gateway", WEB_FRONT)
            assert allowed(overlay, outsider, pod(overlay, process), port) == expected, f"outside -> {process}:{port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_service_takes_traffic_only_from_the_gateway(overlay):
    for service in SERVICES[1:]:
        target, port = pod(overlay, service), procfile_port(service)
        assert allowed(overlay, pod(overlay, "gateway"), target, port), f"gateway cannot reach {service}"
        for other in procfile():
            if other != "gateway":
                assert not allowed(overlay, pod(overlay, other), target, port), f"{other} reaches {service}"
    assert allowed(overlay, pod(overlay, WEB_FRONT), pod(overlay, "gateway"), procfile_port("gateway"))
    # The gateway passes pages to the front (FRONT_URL).
    assert allowed(overlay, pod(overlay, "gateway"), pod(overlay, WEB_FRONT), procfile_port(WEB_FRONT))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_service_reaches_only_its_own_database_and_the_broker(overlay):
    for process in [*procfile(), *(f"{s}-setup" for s in SERVICES)]:
        source = pod(overlay, process)
        owner = process.removesuffix("-worker").removesuffix("-setup")
        for service in SERVICES:
            reach = allowed(overlay, source, pod(overlay, f"{service}-db"), 5432)
            assert reach == (service == owner), f"{process} -> {service}-db: {reach}"
        assert allowed(overlay, source, pod(overlay, "rabbitmq"), 5672) == (process != WEB_FRONT), process
        assert not allowed(overlay, source, OUTSIDE, 5432), f"{process} reaches a database outside"
    # KEDA reads queue lengths; the topology operator declares through the management port.
    keda = {"namespace": "keda", "labels": {"app": "keda-operator"}}
    topology = {"namespace": "rabbitmq-system", "labels": {"app": "messaging-topology-operator"}}
    assert allowed(overlay, keda, pod(overlay, "rabbitmq"), 5672)
    assert allowed(overlay, topology, pod(overlay, "rabbitmq"), 15672)
    assert not allowed(overlay, OUTSIDE, pod(overlay, "rabbitmq"), 5672)
    assert not allowed(overlay, pod(overlay, "issues"), pod(overlay, "redis"), 6379)
    assert allowed(overlay, pod(overlay, "gateway"), pod(overlay, "redis"), 6379)


# --- the scripts the cluster runs --------------------------------------------------------------------------
def load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"linli_k8s_{name}", K8S / "base" / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schema_at_head_waits_for_the_migration(tmp_path, monkeypatch, capsys):
    from linli_issues.definition import definition
    from linli_kit import migrations

    script = load_script("schema_at_head")
    url = f"sqlite:///{tmp_path / 'issues.db'}"
    monkeypatch.setenv("ISSUES_DATABASE_URL", url)
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    assert script.main(["issues", "--timeout", "0"]) == 1
    assert "has the issues-setup Job run" in capsys.readouterr().err
    migrations.upgrade(definition.migrations_dir, url)
    assert script.main(["issues", "--timeout", "0"]) == 0
    assert script.main(["nosuch", "--timeout", "0"]) == 2


class _SecretsApi:
    """A stand-in Kubernetes API holding Secrets, over plain HTTP on loopback."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict] = {}
        self.calls: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict | None = None) -> None:
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _name(self) -> str | None:
                assert self.headers["Authorization"] == "Bearer token-1"
                parts = self.path.split("/")
                assert parts[:6] == ["", "api", "v1", "namespaces", "linli", "secrets"], self.path
                return parts[6] if len(parts) > 6 else None

            def _body(self) -> dict:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def do_GET(self) -> None:
                name = self._name()
                outer.calls.append(f"GET {name}")
                self._reply(200, outer.secrets[name]) if name in outer.secrets else self._reply(404)

            def do_POST(self) -> None:
                body = self._body()
                name = body["metadata"]["name"]
                outer.calls.append(f"POST {name}")
                if name in outer.secrets:
                    return self._reply(409)
                outer.secrets[name] = body
                self._reply(201, body)

            def do_PUT(self) -> None:
                name = self._name()
                outer.calls.append(f"PUT {name}")
                outer.secrets[name] = self._body()
                self._reply(200, outer.secrets[name])

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pem(self, name: str, key: str) -> bytes:
        return base64.b64decode(self.secrets[name]["data"][key])


def test_publish_keys_creates_the_pair_once_and_never_replaces_the_private_key(tmp_path, monkeypatch):
    from linli_kit.keys import generate_keypair

    script = load_script("publish_keys")
    account = tmp_path / "account"
    account.mkdir()
    (account / "token").write_text("token-1\n")
    (account / "namespace").write_text("linli")
    api = _SecretsApi()
    monkeypatch.setenv("KUBERNETES_API", api.url)
    monkeypatch.setenv("SERVICE_ACCOUNT_DIR", str(account))

    def keys(name: str) -> tuple[Path, Path, str]:
        private, public = generate_keypair()
        (tmp_path / f"{name}.key").write_text(private)
        (tmp_path / f"{name}.pub").write_text(public)
        return tmp_path / f"{name}.key", tmp_path / f"{name}.pub", private

    try:
        first_key, first_pub, first = keys("first")
        assert script.main([str(first_key), str(first_pub)]) == 0
        assert api.pem("linli-jwt-private", "jwt_private.pem").decode() == first
        assert api.pem("linli-jwt-public", "jwt_public.pem") == first_pub.read_bytes()

        # A second run (the Job again, with a fresh pair) keeps the first pair.
        second_key, second_pub, _ = keys("second")
        assert script.main([str(second_key), str(second_pub)]) == 0
        assert api.pem("linli-jwt-private", "jwt_private.pem").decode() == first
        assert api.pem("linli-jwt-public", "jwt_public.pem") == first_pub.read_bytes()

        # A public key lost or wrong is made again from the private key in the cluster.
        del api.secrets["linli-jwt-public"]
        assert script.main([str(second_key), str(second_pub)]) == 0
        assert api.pem("linli-jwt-public", "jwt_public.pem") == first_pub.read_bytes()
        api.secrets["linli-jwt-public"]["data"]["jwt_public.pem"] = base64.b64encode(b"junk").decode()
        assert script.main([str(second_key), str(second_pub)]) == 0
        assert api.pem("linli-jwt-public", "jwt_public.pem") == first_pub.read_bytes()
        assert "PUT linli-jwt-private" not in api.calls

        # Two files that are not one pair are refused before anything is sent.
        calls = len(api.calls)
        assert script.main([str(first_key), str(second_pub)]) == 2
        assert len(api.calls) == calls
    finally:
        api.server.shutdown()
        api.server.server_close()
