"""Generated input against every OpenAPI document, on the platform `make run` starts.

The whole platform runs on SQLite files with two gunicorn workers per web process, as `make run`
has it, with the demo city loaded through the public API (`demo_platform` in conftest.py, shared
with the role × scope matrix, which runs first). Schemathesis then reads each OpenAPI
document (the gateway's merged one, and each service's own) and sends what it generates from them,
as people of several roles, checking two things of every answer: no server error, and a body that
matches what the document says for its status. Each run is bounded in time (`LINLI_FUZZ_SECONDS`
per document and role), so the suite stays within CI's limit; a failure prints schemathesis's
report, with the curl command that reproduces each case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from linli_demo import story

# The first test also waits for the platform and the demo city (minutes on a loaded machine).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SECONDS = int(os.environ.get("LINLI_FUZZ_SECONDS", "15"))
SEED = os.environ.get("LINLI_FUZZ_SEED", "20261203")
CHECKS = "not_a_server_error,response_schema_conformance"
# Operations that end the session the fuzzer runs with; what they do is tested in test_gateway.
SESSION_ENDING = r"/auth/(logout|password)"


def _config(city: story.City, path: Path) -> Path:
    """Real ids for path parameters most of the time, so generated requests reach the logic behind
    the 404s; schemathesis still generates other values the rest of the time."""
    ids = {
        "community_id": list(city.communities.values()),
        "street_id": list(city.streets.values()),
        "compound_id": list(city.compounds.values()),
        **{f"{k}_id": [v] for k, v in city.ids.items()},  # type: ignore[attr-defined]
    }
    lines = []
    for name, values in ids.items():
        lines.append(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n")
    lines.append("[parameters]")
    for name in ids:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.7 }}')
    path.write_text("\n".join(lines) + "\n")
    return path


def _fuzz(location: str, base_url: str, token: str | None, config: Path, workdir: Path, label: str) -> str | None:
    """Run schemathesis once; None when every check passed, else its report."""
    argv = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(config),
        "run",
        location,
        "--url",
        base_url,
        "--checks",
        CHECKS,
        "--max-time",
        str(SECONDS),
        "--seed",
        SEED,
        # One worker: with two, hypothesis describes strategies from two threads at once and
        # CPython 3.11's parser fails ("AST constructor recursion depth mismatch"), a tool error.
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--exclude-path-regex",
        SESSION_ENDING,
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=workdir, timeout=SECONDS * 6 + 120)
    if result.returncode == 0:
        return None
    return f"== {label}: schemathesis exit {result.returncode}\n{result.stdout[-12000:]}\n{result.stderr[-3000:]}"


# (whose token, which document) — every role reads the merged document through the gateway; each
# service's own document is read directly by the role with the most to do there.
GATEWAY_ROLES = ("admin", "official", "staff_shangpinyuan", "yang_jing", "property", None)
SERVICE_ROLES = {
    "issues": "staff_shangpinyuan",
    "meetings": "staff_yucai",
    "activities": "staff_xihu",
    "notifications": "official",
    "gateway": "yang_jing",
}


def _token(city: story.City, who: str | None) -> str | None:
    if who is None:
        return None
    return city.admin.token if who == "admin" else city.person(who).token


@pytest.mark.parametrize("who", GATEWAY_ROLES, ids=lambda w: w or "anonymous")
def test_the_merged_document_through_the_gateway(demo_platform, tmp_path, who):
    platform, city = demo_platform
    gateway = platform.web_ports["gateway"]
    base = f"http://127.0.0.1:{gateway}"
    report = _fuzz(
        f"{base}/api/openapi.json", base, _token(city, who), _config(city, tmp_path / "st.toml"), tmp_path, f"{who}"
    )
    assert report is None, report


@pytest.mark.parametrize("service", list(SERVICE_ROLES))
def test_each_service_document_directly(demo_platform, tmp_path, service):
    platform, city = demo_platform
    base = f"http://127.0.0.1:{platform.web_ports[service]}"
    location = f"{base}/openapi.json"
    report = _fuzz(
        location, base, _token(city, SERVICE_ROLES[service]), _config(city, tmp_path / "st.toml"), tmp_path, service
    )
    assert report is None, report
