"""The `rebuild-counts` command every service with counts shares (`linli_kit.service`)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from linli_kit.config import load_settings
from linli_kit.db import Database
from linli_kit.service import rebuild_counts_command
from linli_kit.testing import probe

DOC = """Build the probe's counts again.

    What it reads and when to run it.
"""


def test_it_builds_in_one_transaction_and_says_how_many(
    sqlite_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    def rebuild(session, settings) -> int:
        session.execute(insert(probe.effects).values(event_id=settings.timezone, n=7))
        return 7

    command = rebuild_counts_command("probe", rebuild, "thing(s)", DOC)
    settings = load_settings("probe")

    assert command(settings, sqlite_database, []) == 0
    assert f"linli-probe: counts of 7 thing(s) built in {settings.timezone}" in capsys.readouterr().out
    with sqlite_database.engine.connect() as conn:
        assert conn.execute(select(probe.effects.c.event_id)).scalars().all() == [settings.timezone]


def test_a_failing_build_leaves_nothing(sqlite_database: Database) -> None:
    def rebuild(session, _settings) -> int:
        session.execute(insert(probe.effects).values(event_id="half", n=1))
        raise RuntimeError("the history could not be read")

    command = rebuild_counts_command("probe", rebuild, "thing(s)", DOC)
    with pytest.raises(RuntimeError):
        command(load_settings("probe"), sqlite_database, [])
    with sqlite_database.engine.connect() as conn:
        assert conn.execute(select(probe.effects)).all() == []


def test_help_is_the_commands_doc_and_it_refuses_unknown_options(capsys: pytest.CaptureFixture[str]) -> None:
    command = rebuild_counts_command("probe", lambda _s, _t: 0, "thing(s)", DOC)
    assert command.__doc__ == DOC
    with pytest.raises(SystemExit) as help_exit:
        command(load_settings("probe"), None, ["--help"])  # type: ignore[arg-type]  # never reached
    assert help_exit.value.code == 0
    out = capsys.readouterr().out
    assert "usage: linli-probe rebuild-counts" in out and "What it reads and when to run it." in out
    with pytest.raises(SystemExit) as usage_exit:
        command(load_settings("probe"), None, ["--everything"])  # type: ignore[arg-type]
    assert usage_exit.value.code == 2
