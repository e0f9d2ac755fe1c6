"""The gateway web process: `gunicorn 'linli_gateway.entrypoints.web:create_app()'`."""

from flask import Flask

from linli_gateway.definition import definition
from linli_gateway.entrypoints.directory_api import blp as directory_blueprint
from linli_kit.db import Database
from linli_kit.web import create_app as create_kit_app


def create_app() -> Flask:
    settings = definition.settings()
    return create_kit_app(
        settings, Database(settings.database_url), title="Linli gateway", blueprints=[directory_blueprint]
    )
