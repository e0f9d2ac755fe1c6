"""The web process: `gunicorn 'linli_activities.entrypoints.web:create_app()'`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask

from linli_activities.config import load_activities_config
from linli_activities.definition import definition
from linli_activities.domain.common import now_utc
from linli_activities.entrypoints.activities_api import blp as activities_blueprint
from linli_activities.entrypoints.care_api import blp as care_blueprint
from linli_activities.entrypoints.patrols_api import blp as patrols_blueprint
from linli_activities.entrypoints.places_api import blp as places_blueprint
from linli_activities.entrypoints.programmes_api import blp as programmes_blueprint
from linli_activities.entrypoints.proposals_api import blp as proposals_blueprint
from linli_activities.entrypoints.search_api import blp as search_blueprint
from linli_activities.entrypoints.stats_api import blp as stats_blueprint
from linli_kit.db import Database
from linli_kit.web import create_app as create_kit_app


def create_app(clock: Callable[[], datetime] = now_utc) -> Flask:
    """The app; tests pass a clock to stand at a chosen moment (registration windows, check-in)."""
    settings = definition.settings()
    app = create_kit_app(
        settings,
        Database(settings.database_url),
        title="Linli activities",
        blueprints=[
            activities_blueprint,
            places_blueprint,
            care_blueprint,
            patrols_blueprint,
            programmes_blueprint,
            proposals_blueprint,
            stats_blueprint,
            search_blueprint,
        ],
    )
    app.extensions["activities.clock"] = clock
    app.extensions["activities.config"] = load_activities_config()
    return app
