"""The gateway's own database schema, and the mapping of directory entries onto it."""

from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, String, Table, UniqueConstraint
from sqlalchemy.orm import registry

from linli_gateway.domain.directory import Community, Compound, Street
from linli_kit.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)

streets = Table(
    "streets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("city", String(200), nullable=True),
    Column("revision", Integer, nullable=False),
    UniqueConstraint("city", "name", name="uq_streets_city_name"),
)
communities = Table(
    "communities",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("street_id", String(36), ForeignKey("streets.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    UniqueConstraint("street_id", "name", name="uq_communities_street_name"),
)
compounds = Table(
    "compounds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("community_id", String(36), ForeignKey("communities.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("revision", Integer, nullable=False),
    UniqueConstraint("community_id", "name", name="uq_compounds_community_name"),
)

mapper_registry = registry()
mapper_registry.map_imperatively(Street, streets)
mapper_registry.map_imperatively(Community, communities)
mapper_registry.map_imperatively(Compound, compounds)
