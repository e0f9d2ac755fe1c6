"""Alembic, one history per service: the service keeps `migrations/` in its package; this runs it."""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import make_url

from linli_kit.db import Database


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    url = make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    # Alembic's config is an INI file underneath: percent signs must be doubled.
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    if database_url.startswith("sqlite"):
        Database(database_url).engine  # noqa: B018 - creates the data folder and WAL mode
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py`."""
    from sqlalchemy import create_engine

    from linli_kit.search import is_search_object

    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    # Text search indexes (FTS5 tables and their triggers, trigram indexes) are made by hand in
    # migrations, for one dialect each; the tables the code maps do not declare them.
    compare = {"include_name": lambda name, type_, parents: not is_search_object(name)}
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True, **compare)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Batch mode lets the same migrations alter tables on SQLite.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, **compare)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
