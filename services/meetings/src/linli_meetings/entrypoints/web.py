"""The web process: `gunicorn 'linli_meetings.entrypoints.web:create_app()'`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask

from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.web import create_app as create_kit_app
from linli_meetings.definition import definition
from linli_meetings.entrypoints.api import blp


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    settings = settings or definition.settings()
    database = database or Database(settings.database_url)
    app = create_kit_app(settings, database, title="Linli meetings", blueprints=[blp])
    if clock is not None:
        # Tests move time (overdue action items) without sleeping.
        app.extensions["meetings.clock"] = clock
    return app
