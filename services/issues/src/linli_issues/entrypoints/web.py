"""The web process: `gunicorn 'linli_issues.entrypoints.web:create_app()'`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask

from linli_issues.adapters.photo_store import photo_store_from
from linli_issues.config import load_issues_config
from linli_issues.definition import definition
from linli_issues.entrypoints import open311
from linli_issues.entrypoints.issues_api import blp as issues_blueprint
from linli_issues.service_layer.issues import utc_now
from linli_kit.db import Database
from linli_kit.web import create_app as create_kit_app


def create_app(clock: Callable[[], datetime] = utc_now) -> Flask:
    """The app; `clock` is the time the use cases see (tests move it instead of waiting)."""
    settings = definition.settings()
    config = load_issues_config()
    app = create_kit_app(settings, Database(settings.database_url), title="Linli issues", blueprints=[issues_blueprint])
    app.extensions["linli.issues.clock"] = clock
    app.extensions["linli.issues.open311_public_url"] = config.open311_public_url
    app.extensions["linli.issues.photo_config"] = config.photos
    app.extensions["linli.issues.photo_store"] = photo_store_from(config.photos, settings.data_dir)
    open311.install(app)
    return app
