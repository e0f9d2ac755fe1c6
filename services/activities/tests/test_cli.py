"""The command line: every command documented in its `--help` and in the README, the same commands
as the kit runs, and `check-config` checking the activities service's own settings too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from linli_activities.definition import definition
from linli_activities.entrypoints import cli
from linli_kit.service import service_main

README = Path(__file__).parents[1] / "README.md"


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.run([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_every_command_has_a_complete_help_and_a_readme_entry(capsys):
    top = help_of(capsys)
    readme = README.read_text()
    for name in cli.COMMANDS:
        assert name in top
        own = help_of(capsys, name)
        assert own.startswith(f"usage: linli-activities {name} [-h]")
        assert "Exit status:" in own, name
        assert f"linli-activities {name}" in readme, f"{name} is not in the README"
    assert "--health-port PORT" in help_of(capsys, "worker")
    for variable in ("DATABASE_URL", "AMQP_URL", "JWT_PUBLIC_KEY_FILE", "ACTIVITIES_WALKING_SPEED_M_PER_MIN"):
        assert variable in top and variable in readme


def test_the_documented_commands_are_the_ones_the_kit_runs(capsys):
    with pytest.raises(SystemExit):
        service_main(definition, ["--help"])
    choices = re.findall(r"^    ([a-z][a-z-]+)", capsys.readouterr().out, flags=re.MULTILINE)
    assert sorted(choices) == sorted(cli.COMMANDS)


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.run(["bogus"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_check_config_checks_the_walking_speed(monkeypatch, tmp_path, capsys, amqp_url, token_keys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'activities.db'}")
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("ACTIVITIES_WALKING_SPEED_M_PER_MIN", "500")
    # Was 0 ("configuration ok"): the kit knows only the shared settings.
    assert cli.run(["check-config"]) == 2
    assert "ACTIVITIES_WALKING_SPEED_M_PER_MIN" in capsys.readouterr().err
    monkeypatch.setenv("ACTIVITIES_WALKING_SPEED_M_PER_MIN", "70")
    assert cli.run(["migrate"]) == 0
    assert cli.run(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "ACTIVITIES_WALKING_SPEED_M_PER_MIN=70" in out and "configuration ok" in out
