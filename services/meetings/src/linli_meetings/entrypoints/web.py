"""The web process: `gunicorn 'linli_meetings.entrypoints.web:create_app()'`."""

from flask import Flask

from linli_kit.db import Database
from linli_kit.web import create_app as create_kit_app
from linli_meetings.definition import definition


def create_app() -> Flask:
    settings = definition.settings()
    return create_kit_app(settings, Database(settings.database_url), title="Linli meetings")
