"""The command line: every command documented in the README, and each one's help complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "linli-issues"
README = Path(__file__).parents[1] / "README.md"


def _help(*args: str) -> str:
    result = subprocess.run([str(BIN), *args, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_command_is_in_the_readme_and_its_summary_is_a_whole_sentence():
    text = _help()
    listing = text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    commands = re.findall(r"^    ([a-z][a-z-]+)", listing, flags=re.MULTILINE)
    assert {"migrate", "worker", "check-config", "declare", "run-deadlines"} <= set(commands)
    readme = README.read_text()
    for command in commands:
        assert f"`linli-issues {command}" in readme, command
    # The summary of run-deadlines in the listing is its whole first sentence, not a cut-off line.
    listing = " ".join(text.rsplit("run-deadlines", 1)[1].split())
    assert listing.startswith("Escalate every overdue issue now, as the worker's timer does.")


def test_run_deadlines_help_says_what_it_does_and_what_as_of_takes():
    text = " ".join(_help("run-deadlines").split())
    assert "usage: linli-issues run-deadlines [-h] [--as-of INSTANT]" in text
    assert "reported overdue" in text and "one tier up with a fresh deadline" in text
    assert "ISO 8601 with its UTC offset" in text and "default: now" in text


def test_run_deadlines_refuses_an_instant_without_offset_or_out_of_range():
    for value, message in [("2026-12-01T09:00", "no UTC offset"), ("9999-12-31T00:00:00Z", "between 1970")]:
        result = subprocess.run(
            [str(BIN), "run-deadlines", "--as-of", value], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_check_config_checks_the_services_own_settings(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LINLI_DATA_DIR": str(tmp_path), "OPEN311_PUBLIC_URL": "open311.example.org"}
    result = subprocess.run([str(BIN), "check-config"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "OPEN311_PUBLIC_URL" in result.stderr, result.stderr
    env |= {"OPEN311_PUBLIC_URL": "https://open311.example.org/open311/v2", "ISSUES_AUTO_CLOSE_DAYS": "-1"}
    result = subprocess.run([str(BIN), "check-config"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "ISSUES_AUTO_CLOSE_DAYS" in result.stderr, result.stderr
