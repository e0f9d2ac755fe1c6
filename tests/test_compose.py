"""The container deployment agrees with the Procfile and DESIGN.md.

No Docker engine is needed: docker-compose.yml, the Procfile, the Dockerfile and the PostgreSQL init
script are read as files and checked against each other. Compose services carry the Procfile's
process names, so a process added to the Procfile without a compose service fails here by name.
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml (pip install pyyaml)")

ROOT = Path(__file__).resolve().parents[1]
PROCFILE = ROOT / "Procfile"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# DESIGN.md section 2: the gateway and the four services, and the port of each web process.
WEB_PORTS = {"gateway": 8000, "issues": 8001, "meetings": 8002, "activities": 8003, "notifications": 8004}
SERVICES = tuple(WEB_PORTS)
# The web front: a web process of its own with no database, broker or key, reached through the
# gateway (which passes it every path it does not answer itself).
FRONT, FRONT_PORT = "web", 8005
MIGRATE = "migrate"
POSTGRES_INIT_DIR = "/docker-entrypoint-initdb.d"


# --- reading the files ----------------------------------------------------------------------------
@cache
def procfile() -> dict[str, str]:
    """Process name -> command line, in file order."""
    processes: dict[str, str] = {}
    for number, line in enumerate(PROCFILE.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        assert sep and re.fullmatch(r"[A-Za-z0-9_-]+", name), f"Procfile line {number} is not 'name: command'"
        assert name not in processes, f"Procfile names {name!r} twice"
        processes[name] = command.strip()
    return processes


def split_command(command: str | list[str]) -> tuple[dict[str, str], list[str]]:
    """(leading VAR=value assignments, argv) of a shell command line or an exec-form list."""
    argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    assignments: dict[str, str] = {}
    while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
        key, _, value = argv.pop(0).partition("=")
        assignments[key] = value
    return assignments, argv


def bind_address(argv: list[str]) -> tuple[str, int] | None:
    """gunicorn's (host, port) from --bind/-b, with any ${VAR:-default} in the host resolved."""
    for i, arg in enumerate(argv):
        value = None
        if arg in ("--bind", "-b") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--bind="):
            value = arg.split("=", 1)[1]
        if value is not None:
            host, _, port = interpolate(value).rpartition(":")
            return host, int(port)
    return None


def normalized(argv: list[str]) -> list[str]:
    """argv with the bind host blanked: the Procfile binds 127.0.0.1 locally, containers 0.0.0.0."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--bind", "-b") and i + 1 < len(argv):
            out += ["--bind", f"*:{interpolate(argv[i + 1]).rpartition(':')[2]}"]
            skip = True
        elif arg.startswith("--bind="):
            out += ["--bind", f"*:{interpolate(arg).rpartition(':')[2]}"]
        else:
            out.append(arg)
    return out


def interpolate(value: str) -> str:
    """Compose/shell interpolation with every variable unset: ${X:-default} -> default."""
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*[:?][^}]*\}|\$\{[A-Za-z_][A-Za-z0-9_]*\}", "", value)
    return value.replace("$$", "$")


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def service(name: str) -> dict[str, Any]:
    found = services().get(name)
    assert found is not None, f"docker-compose.yml has no service {name!r}"
    return found


def command_of(name: str) -> list[str]:
    command = service(name).get("command")
    assert command, f"compose service {name!r} has no command (the image's CMD is not a Linli process)"
    return split_command(command)[1] if isinstance(command, str) else [str(arg) for arg in command]


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: interpolate(str(value)) for key, value in env.items() if value is not None}


def depends_on(name: str) -> dict[str, str]:
    """Dependency -> condition (a bare list means service_started)."""
    deps = service(name).get("depends_on") or {}
    if isinstance(deps, list):
        return {dep: "service_started" for dep in deps}
    return {dep: (spec or {}).get("condition", "service_started") for dep, spec in deps.items()}


def mounts(name: str) -> dict[str, str]:
    """Container path -> source ('tmpfs' for tmpfs mounts) of a service's volumes and tmpfs."""
    found: dict[str, str] = {}
    for volume in service(name).get("volumes") or []:
        if isinstance(volume, str):
            parts = interpolate(volume).split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        else:
            source, target = volume.get("source", volume.get("type", "")), volume["target"]
            if volume.get("type") == "tmpfs":
                source = "tmpfs"
        found[target.rstrip("/")] = source
    tmpfs = service(name).get("tmpfs") or []
    for entry in [tmpfs] if isinstance(tmpfs, str) else tmpfs:
        found[entry.split(":")[0].rstrip("/")] = "tmpfs"
    return found


def mount_of(name: str, path: str) -> tuple[str, str] | None:
    """(container path, source) of the mount holding `path` in a service, the deepest one."""
    holding = [(t, s) for t, s in mounts(name).items() if path == t or path.startswith(t + "/")]
    return max(holding, key=lambda m: len(m[0])) if holding else None


def owner(process: str) -> str:
    """The Linli service a Procfile process belongs to: 'issues-worker' -> 'issues'."""
    for svc in SERVICES:
        if process == svc or process.startswith(svc + "-"):
            return svc
    return process


def health_port(process: str) -> int | None:
    """The port of a process's /readyz: the web port, or the worker's --health-port."""
    if process == FRONT:
        return FRONT_PORT
    if is_web(process):
        return WEB_PORTS[process]
    argv = split_command(procfile()[process])[1]
    for i, arg in enumerate(argv):
        if arg == "--health-port" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--health-port="):
            return int(arg.split("=", 1)[1])
    return None


def is_web(process: str) -> bool:
    return process in WEB_PORTS


def linli_processes() -> list[str]:
    """Every compose service that runs Linli code: the Procfile's processes and the migrations."""
    return [*procfile(), MIGRATE]


def backend_processes() -> list[str]:
    """The processes of the gateway and the services (with the migrations): all but the front."""
    return [p for p in linli_processes() if p != FRONT]


def database_url(process: str, svc: str) -> str | None:
    """The URL `svc` uses inside `process`, read as linli_kit.config.load_settings reads it."""
    env = environment(process)
    return env.get(f"{svc.upper()}_DATABASE_URL") or env.get("DATABASE_URL")


def postgres_service() -> str:
    names = [n for n, s in services().items() if str(s.get("image", "")).startswith("postgres")]
    assert len(names) == 1, f"expected one PostgreSQL service in docker-compose.yml, found {names}"
    return names[0]


def init_scripts() -> list[Path]:
    """Files the postgres image runs at first start: whatever host folder is mounted on initdb.d."""
    pg = postgres_service()
    for target, source in mounts(pg).items():
        if target == POSTGRES_INIT_DIR or target.startswith(POSTGRES_INIT_DIR + "/"):
            path = (ROOT / source).resolve()
            files = sorted(path.iterdir()) if path.is_dir() else [path]
            return [f for f in files if f.suffix in (".sql", ".sh")]
    pytest.fail(f"no init script mounted on {POSTGRES_INIT_DIR} in compose service {pg!r}")


def created_by_init(kind: str) -> set[str]:
    """Names of the databases (or roles) the init scripts create."""
    pattern = re.compile(rf"CREATE\s+{kind}\s+\"?([A-Za-z_][A-Za-z0-9_]*)\"?", re.IGNORECASE)
    return {m.group(1) for f in init_scripts() for m in pattern.finditer(f.read_text())}


def healthcheck_argv(name: str) -> list[str]:
    check = service(name).get("healthcheck")
    assert check and not check.get("disable"), f"compose service {name!r} has no healthcheck"
    test = check.get("test")
    assert test, f"compose service {name!r} has a healthcheck without a test"
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(arg) for arg in test]


def dockerfile_instructions() -> list[str]:
    """Instructions of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#"):
            continue
        current += " " + raw.rstrip().removesuffix("\\")
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                lines.append(" ".join(current.split()))
            current = ""
    return lines


def package_dirs() -> list[str]:
    """Every installable package of the platform: libs/kit, gateway and each services/<name>."""
    found = [p.parent for p in [ROOT / "libs/kit/pyproject.toml", ROOT / "gateway/pyproject.toml"] if p.exists()]
    found += sorted(p.parent for p in ROOT.glob("services/*/pyproject.toml"))
    found += [p.parent for p in [ROOT / "web/pyproject.toml"] if p.exists()]
    return [p.relative_to(ROOT).as_posix() for p in found]


# --- the Procfile ---------------------------------------------------------------------------------
@pytest.mark.parametrize("svc", SERVICES)
def test_procfile_has_a_web_and_a_worker_process_for_each_service(svc):
    processes = procfile()
    assert svc in processes, f"Procfile has no web process {svc!r}"
    env, argv = split_command(processes[svc])
    assert argv[:1] == ["gunicorn"], f"Procfile web process {svc!r} does not run gunicorn: {processes[svc]}"
    assert argv[-1] == f"linli_{svc}.entrypoints.web:create_app()"
    assert "PROMETHEUS_MULTIPROC_DIR" in env, f"{svc}: gunicorn workers need a shared metrics folder"
    assert bind_address(argv) is not None and bind_address(argv)[1] == WEB_PORTS[svc]

    worker = f"{svc}-worker"
    assert worker in processes, f"Procfile has no worker process {worker!r}"
    _, argv = split_command(processes[worker])
    assert argv[:2] == [f"linli-{svc}", "worker"] and "--health-port" in argv, processes[worker]


def test_procfile_runs_only_the_known_services():
    unknown = sorted(p for p in procfile() if owner(p) not in (*SERVICES, FRONT))
    assert not unknown, f"Procfile processes of no service in DESIGN.md section 2: {unknown}"


def test_worker_health_ports_are_distinct_and_clear_of_web_ports():
    ports = [health_port(p) for p in procfile() if not is_web(p) and p != FRONT]
    assert None not in ports, "every non-web process serves /readyz on a --health-port"
    assert len(ports) == len(set(ports)), f"two workers share a health port: {ports}"
    assert not set(ports) & set(WEB_PORTS.values())


# --- every Procfile process is a compose service running the same command ------------------------
@pytest.mark.parametrize("process", list(procfile()))
def test_procfile_process_has_a_compose_service_with_the_same_command(process):
    line = procfile()[process]
    assert process in services(), (
        f"Procfile process {process!r} has no service in docker-compose.yml; add a service named "
        f"{process!r} running: {line}"
    )
    procfile_env, procfile_argv = split_command(line)
    compose_argv = command_of(process)
    assert normalized(compose_argv) == normalized(procfile_argv), (
        f"compose service {process!r} runs {compose_argv}, the Procfile {procfile_argv}"
    )
    for key in procfile_env:
        assert key in environment(process), f"Procfile sets {key} for {process!r}; compose does not"
    if is_web(process) or process == FRONT:
        host, port = bind_address(compose_argv)
        assert host == "0.0.0.0", f"{process}: gunicorn must listen on 0.0.0.0 in a container, not {host!r}"
        assert port == health_port(process)


def test_every_compose_process_is_in_the_procfile():
    """The reverse direction: no compose service runs Linli code the Procfile does not know."""
    image = str(service(MIGRATE).get("image"))
    extra = sorted(n for n, s in services().items() if s.get("image") == image and n not in linli_processes())
    assert not extra, f"compose services running the Linli image with no Procfile process: {extra}"


# --- ports ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("svc", SERVICES)
def test_web_ports_match_design(svc):
    assert bind_address(command_of(svc)) == ("0.0.0.0", WEB_PORTS[svc])
    for published in service(svc).get("ports") or []:
        container = published.get("target") if isinstance(published, dict) else interpolate(str(published))
        container_port = int(str(container).rsplit(":", 1)[-1].split("/")[0])
        assert container_port == WEB_PORTS[svc], f"{svc} publishes container port {container_port}"


# --- databases ------------------------------------------------------------------------------------
@pytest.mark.parametrize("process", backend_processes())
def test_each_service_uses_its_own_postgres_database_created_by_the_init_script(process):
    svcs = SERVICES if process == MIGRATE else (owner(process),)
    env = environment(process)
    if len(svcs) > 1:
        assert "DATABASE_URL" not in env, f"{process} runs several services: use <SERVICE>_DATABASE_URL only"
    databases = created_by_init("DATABASE")
    roles = created_by_init("ROLE") | created_by_init("USER")
    superuser = environment(postgres_service()).get("POSTGRES_USER", "postgres")
    for svc in svcs:
        url = database_url(process, svc)
        assert url, f"{process}: set {svc.upper()}_DATABASE_URL (else {svc} falls back to SQLite in the container)"
        parsed = urlparse(url)
        assert parsed.scheme in ("postgresql", "postgresql+psycopg"), f"{process}: {svc} database URL is {url!r}"
        assert parsed.hostname == postgres_service(), f"{process}: {svc} database is on {parsed.hostname!r}"
        name = parsed.path.lstrip("/")
        assert name == svc, f"{process}: {svc} uses database {name!r}; each service owns its own (DESIGN section 2)"
        assert name in databases, f"database {name!r} is not created by the init script in {init_scripts()}"
        if parsed.username != superuser:
            assert parsed.username in roles, f"role {parsed.username!r} is not created by the init script"


def test_init_script_creates_a_database_for_each_service_and_no_other():
    assert created_by_init("DATABASE") == set(SERVICES)


# --- broker, keys, data folder, redis -------------------------------------------------------------
@pytest.mark.parametrize("process", backend_processes())
def test_every_process_has_the_broker_and_the_token_key(process):
    env = environment(process)
    amqp = urlparse(env.get("AMQP_URL", ""))
    assert amqp.scheme in ("amqp", "amqps"), f"{process}: AMQP_URL missing or not amqp://"
    assert amqp.hostname in services(), f"{process}: AMQP_URL host {amqp.hostname!r} is no compose service"
    assert amqp.username not in (None, "guest"), f"{process}: RabbitMQ's guest user may only connect from localhost"
    assert env.get("LINLI_DATA_DIR"), f"{process}: LINLI_DATA_DIR is not set"
    assert env.get("JWT_PUBLIC_KEY_FILE") or env.get("JWT_PUBLIC_KEY"), f"{process}: no JWT public key setting"

    public_key = env.get("JWT_PUBLIC_KEY_FILE")
    if public_key:
        assert public_key == environment(MIGRATE)["JWT_PUBLIC_KEY_FILE"], f"{process}: not the key init-keys wrote"
        here, there = mount_of(process, public_key), mount_of(MIGRATE, public_key)
        assert here and there and here[1] == there[1], f"{process}: {public_key} is not on the volume migrate writes"


def test_only_the_gateway_holds_the_private_key():
    private_key = environment(MIGRATE).get("JWT_PRIVATE_KEY_FILE")
    assert private_key, "migrate runs `linli-gateway init-keys`: set JWT_PRIVATE_KEY_FILE there"
    volume = mount_of(MIGRATE, private_key)
    assert volume, f"migrate writes {private_key} outside any volume: the key would die with the container"
    assert environment("gateway").get("JWT_PRIVATE_KEY_FILE") == private_key
    assert mount_of("gateway", private_key) == volume
    for process in procfile():
        if process != "gateway":
            held = mount_of(process, private_key)
            assert held is None or held[1] != volume[1], f"{process} mounts the token signing key"


def test_gateway_has_redis():
    url = urlparse(environment("gateway").get("REDIS_URL", ""))
    assert url.scheme in ("redis", "rediss"), "gateway: REDIS_URL missing (rate limits)"
    assert url.hostname in services()
    assert depends_on("gateway").get(url.hostname) == "service_healthy"


@pytest.mark.parametrize("svc", SERVICES)
def test_web_processes_have_their_own_metrics_folder(svc):
    folder = environment(svc).get("PROMETHEUS_MULTIPROC_DIR")
    assert folder, f"{svc}: PROMETHEUS_MULTIPROC_DIR is not set"
    assert mount_of(svc, folder), f"{svc}: {folder} is neither a tmpfs nor a volume"


# --- the web front ---------------------------------------------------------------------------------
def test_the_front_holds_no_database_broker_or_key_and_talks_only_to_the_gateway():
    env = environment(FRONT)
    assert not [k for k in env if k.endswith("DATABASE_URL") or k in ("AMQP_URL", "JWT_PRIVATE_KEY_FILE")], env
    gateway = urlparse(env.get("GATEWAY_URL", ""))
    assert (gateway.hostname, gateway.port) == ("gateway", WEB_PORTS["gateway"]), "web: GATEWAY_URL"
    assert env.get("LINLI_DATA_DIR") and mount_of(FRONT, env["LINLI_DATA_DIR"] + "/web_secret_key"), (
        "web: its session secret must outlive the container (a volume on LINLI_DATA_DIR)"
    )
    assert not service(FRONT).get("ports"), "web: residents reach the pages through the gateway only"


def test_the_gateway_passes_pages_to_the_front():
    front = urlparse(environment("gateway").get("FRONT_URL", ""))
    assert (front.hostname, front.port) == (FRONT, FRONT_PORT), "gateway: FRONT_URL must name the web service"


# --- one-shot set-up ------------------------------------------------------------------------------
def test_migrate_generates_keys_then_migrates_and_declares_every_service():
    script = " ".join(command_of(MIGRATE))
    steps = re.findall(r"linli-([a-z]+) ([a-z-]+)", script)
    assert steps and steps[0] == ("gateway", "init-keys"), (
        f"migrate must begin with `linli-gateway init-keys`: {script}"
    )
    for svc in sorted({owner(p) for p in procfile()} - {FRONT}):
        assert (svc, "migrate") in steps, f"migrate does not run `linli-{svc} migrate`"
        assert (svc, "declare") in steps, f"migrate does not run `linli-{svc} declare`"
        assert steps.index((svc, "migrate")) < steps.index((svc, "declare"))
    argv = command_of(MIGRATE)
    if argv[0] in ("sh", "bash"):
        assert re.fullmatch(r"-[a-z]*e[a-z]*", argv[1]), "migrate's shell must stop at the first error (sh -e)"
    assert str(service(MIGRATE).get("restart", "no")) == "no"


@pytest.mark.parametrize("process", [p for p in procfile() if p != FRONT])
def test_processes_start_after_migrations_and_healthy_infrastructure(process):
    deps = depends_on(process)
    assert deps.get(MIGRATE) == "service_completed_successfully", f"{process} may start before its schema exists"
    amqp_host = urlparse(environment(process)["AMQP_URL"]).hostname
    assert deps.get(amqp_host) == "service_healthy"
    assert deps.get(postgres_service()) == "service_healthy"


# --- image ----------------------------------------------------------------------------------------
def test_every_linli_process_runs_the_one_image_built_from_the_dockerfile():
    images = {name: service(name).get("image") for name in linli_processes()}
    assert len(set(images.values())) == 1 and None not in images.values(), f"Linli processes run {images}"
    builders = [n for n, s in services().items() if s.get("build")]
    assert builders, "no compose service builds the Linli image"
    for name in builders:
        build = service(name)["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context / dockerfile).resolve() == DOCKERFILE, f"{name} builds from {context / dockerfile}"
        assert service(name).get("image") == images[MIGRATE]


def test_dockerfile_builds_on_python_311_slim():
    instructions = dockerfile_instructions()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", "\n".join(instructions), re.MULTILINE))
    stages, bases = set(), set()
    for instruction in instructions:
        words = [w for w in instruction.split() if not w.startswith("--")]
        if words[0].upper() != "FROM":
            continue
        base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), words[1])
        if base not in stages:
            bases.add(base)
        if len(words) >= 4 and words[2].upper() == "AS":
            stages.add(words[3])
    assert bases == {"python:3.11-slim"}, f"the image builds on {bases}"


def test_dockerfile_installs_every_package_non_editable_with_constraints():
    instructions = dockerfile_instructions()
    install = " ".join(i for i in instructions if re.search(r"\bpip install\b", i))
    assert install, "the Dockerfile runs no pip install"
    assert re.search(r"(-c|--constraint)[ =]\S*constraints\.txt", install), "pip install without -c constraints.txt"
    assert not re.search(r"(^|\s)(-e|--editable)\s", install), "the image must not install packages editable"
    assert "[testing]" not in install, "the testing extra (pytest, testcontainers) does not belong in the image"
    copies = [i.split() for i in instructions if i.upper().startswith(("COPY ", "ADD ")) and "--from" not in i]
    sources = [s.removeprefix("./").rstrip("/") for c in copies for s in c[1:-1] if not s.startswith("--")]
    for package in package_dirs():
        assert re.search(rf"(^|[\s/]){re.escape(package)}/?(\[|\s|$)", install), (
            f"the Dockerfile does not install {package}; add ./{package} to its pip install"
        )
        assert any(s in (".", package) or package.startswith(s + "/") for s in sources), (
            f"the Dockerfile never copies {package} into the build"
        )


def test_dockerfile_runs_as_a_non_root_user():
    users = [i.split()[1] for i in dockerfile_instructions() if i.upper().startswith("USER ")]
    assert users, "the image runs as root: add a USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerignore_keeps_local_state_out_of_the_build():
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    for needed in (".venv", "var", ".git"):
        assert needed in patterns or f"/{needed}" in patterns, f".dockerignore does not exclude {needed}"
    assert "**/__pycache__" in patterns or "__pycache__" in patterns


# --- health and start order -----------------------------------------------------------------------
def test_every_long_running_service_has_a_healthcheck():
    for name in services():
        if name == MIGRATE:
            continue
        argv = healthcheck_argv(name)
        assert argv[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test must start with CMD or CMD-SHELL"
    assert healthcheck_argv("rabbitmq")[1:] == ["rabbitmq-diagnostics", "-q", "ping"]


@pytest.mark.parametrize("process", list(procfile()))
def test_linli_healthchecks_probe_readyz_on_the_right_port(process):
    argv = healthcheck_argv(process)
    assert argv[:3] == ["CMD", "python", "-c"], f"{process}: probe with python -c (the slim image has no curl)"
    code = argv[3]
    compile(code, f"<healthcheck of {process}>", "exec")
    assert "urllib" in code
    urls = re.findall(r"https?://[^'\"\s]+", code)
    assert len(urls) == 1, f"{process}: healthcheck probes {urls}"
    url = urlparse(urls[0])
    assert health_port(process), f"{process} has no --health-port to probe"
    path = "/web/readyz" if process == FRONT else "/readyz"
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", health_port(process), path), urls[0]


def test_depends_on_names_existing_services_with_a_meaningful_condition():
    names = set(services())
    for name in names:
        for dep, condition in depends_on(name).items():
            assert dep in names, f"{name} depends on {dep!r}, which is not a compose service"
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert healthcheck_argv(dep), f"{name} waits for {dep} to be healthy; it has no healthcheck"
            if condition == "service_completed_successfully":
                assert str(service(dep).get("restart", "no")) == "no", f"{dep} is one-shot; it must not restart"


def test_depends_on_has_no_cycle():
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", f"depends_on cycle: {' -> '.join([*path, name])}"
        state[name] = "open"
        for dep in depends_on(name):
            visit(dep, [*path, name])
        state[name] = "done"

    for name in services():
        visit(name, [])
