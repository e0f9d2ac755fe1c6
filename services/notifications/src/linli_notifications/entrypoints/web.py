"""The web process: `gunicorn 'linli_notifications.entrypoints.web:create_app()'`."""

from __future__ import annotations

from flask import Flask

from linli_kit.db import Database
from linli_kit.web import create_app as create_kit_app
from linli_notifications.config import NotificationConfig, load_config
from linli_notifications.definition import definition
from linli_notifications.domain.clock import Clock, system_clock
from linli_notifications.entrypoints.api import blp as api_blp
from linli_notifications.entrypoints.receipts_api import blp as receipts_blp


def create_app(clock: Clock = system_clock, config: NotificationConfig | None = None) -> Flask:
    settings = definition.settings()
    app = create_kit_app(
        settings, Database(settings.database_url), title="Linli notifications", blueprints=[api_blp, receipts_blp]
    )
    app.extensions["linli.clock"] = clock
    app.extensions["linli.notifications_config"] = config or load_config()
    return app
