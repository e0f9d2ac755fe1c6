"""`linli-meetings`: every command has a complete --help, is documented in the README, and runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from linli_kit.service import service_main
from linli_meetings.definition import definition
from linli_meetings.entrypoints.cli import COMMANDS, main

CLI = str(Path(sys.executable).parent / "linli-meetings")
README = Path(__file__).resolve().parents[1] / "README.md"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120, env=env)


def help_of(capsys, *args: str) -> str:
    """What `linli-meetings <args> --help` prints (in this process: no interpreter to start)."""
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_the_help_covers_every_command_the_kit_runs(capsys):
    with pytest.raises(SystemExit):
        service_main(definition, ["--help"])
    # The kit lists its commands one per line, indented under COMMAND.
    kit_commands = re.findall(r"^    ([a-z][a-z-]*)\b", capsys.readouterr().out, flags=re.MULTILINE)
    assert sorted(kit_commands) == sorted(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_a_complete_help_and_is_in_the_readme(capsys, command):
    summary, description = COMMANDS[command]
    text = " ".join(help_of(capsys, command).split())
    assert " ".join(description.split()) in text
    assert "DATABASE_URL" in text and "AMQP_URL" in text and "LINLI_TIMEZONE" in text
    assert f"{command} {summary}" in " ".join(help_of(capsys).split())
    assert f"linli-meetings {command}" in README.read_text()


def test_worker_help_explains_its_option(capsys):
    text = " ".join(help_of(capsys, "worker").split())
    assert "--health-port PORT serve /healthz, /readyz" in text and "WORKER_HEALTH_PORT" in text


def test_migrate_runs_and_bad_arguments_or_settings_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'meetings.db'}", "LOG_JSON": "false"}
    migrated = run("migrate", env=env)
    assert migrated.returncode == 0 and "database at head" in migrated.stdout, migrated.stderr
    assert (tmp_path / "meetings.db").exists()
    assert "check-config" in run("--help", env=env).stdout
    assert run("frobnicate", env=env).returncode == 2
    assert run("worker", "--health-port", "eighty", env=env).returncode == 2
    bad_zone = run("check-config", env=env | {"LINLI_TIMEZONE": "Mars/Olympus"})
    assert bad_zone.returncode == 2 and "LINLI_TIMEZONE" in bad_zone.stderr
