"""The web process: `gunicorn 'linli_issues.entrypoints.web:create_app()'`."""

from flask import Flask

from linli_issues.definition import definition
from linli_kit.db import Database
from linli_kit.web import create_app as create_kit_app


def create_app() -> Flask:
    settings = definition.settings()
    return create_kit_app(settings, Database(settings.database_url), title="Linli issues")
