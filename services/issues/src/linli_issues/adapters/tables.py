"""The issues service's own database schema."""

from sqlalchemy import MetaData

from linli_kit.tables import add_directory_replica, add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
replica = add_directory_replica(metadata)
