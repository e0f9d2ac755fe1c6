"""The web process: `gunicorn 'linli_activities.entrypoints.web:create_app()'`."""

from flask import Flask

from linli_activities.definition import definition
from linli_kit.db import Database
from linli_kit.web import create_app as create_kit_app


def create_app() -> Flask:
    settings = definition.settings()
    return create_kit_app(settings, Database(settings.database_url), title="Linli activities")
