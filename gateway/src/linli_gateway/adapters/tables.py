"""The gateway's own database schema, and the mapping of directory entries onto it.

Every instant is a `UtcDateTime`: stored in UTC and read back aware on SQLite too (a plain
`DateTime` comes back naive there, and comparing it with an aware "now" is a TypeError). The DDL
is the same `TIMESTAMP WITH TIME ZONE` as before, so no migration is needed.
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import registry

from linli_gateway.domain.accounts import ApiKey, LoginLockout, OneTimeCode, RefreshToken, User
from linli_gateway.domain.directory import Community, Compound, Organisation, Street
from linli_kit.tables import UtcDateTime, add_messaging_tables

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
organisations = Table(
    "organisations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("street_id", String(36), ForeignKey("streets.id"), nullable=True, index=True),
    Column("community_id", String(36), ForeignKey("communities.id"), nullable=True, index=True),
    Column("compound_ids", JSON, nullable=False),
    Column("parent_id", String(36), ForeignKey("organisations.id"), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("revision", Integer, nullable=False),
)
# Which compounds each property company serves and which compound each owners' committee is of, for
# finding them by community or street; one of each kind per compound, which the database holds to.
organisation_compounds = Table(
    "organisation_compounds",
    metadata,
    Column("organisation_id", String(36), ForeignKey("organisations.id"), primary_key=True),
    Column("compound_id", String(36), ForeignKey("compounds.id"), primary_key=True),
    Column("kind", String(32), nullable=False),
    UniqueConstraint("compound_id", "kind", name="uq_organisation_compounds_compound_kind"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("phone", String(20), nullable=True, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(32), nullable=False, index=True),
    Column("street_id", String(36), nullable=True, index=True),
    Column("community_ids", JSON, nullable=False),
    Column("home_community_id", String(36), nullable=True, index=True),
    Column("organisation_id", String(36), nullable=True),
    Column("organisation_name", String(200), nullable=True),
    Column("locale", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("revision", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=True),
    Column("tokens_not_before", UtcDateTime, nullable=True, index=True),
)
login_lockouts = Table(
    "login_lockouts",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id"), primary_key=True),
    Column("client", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=True, index=True),
)
one_time_codes = Table(
    "one_time_codes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("phone", String(20), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("used", Boolean, nullable=False),
)
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("family_id", String(36), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
)
revoked_access_tokens = Table(
    "revoked_access_tokens",
    metadata,
    Column("jti", String(36), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(12), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("street_id", String(36), nullable=True),
    Column("community_ids", JSON, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=True),
)

mapper_registry = registry()
mapper_registry.map_imperatively(User, users)
mapper_registry.map_imperatively(OneTimeCode, one_time_codes)
mapper_registry.map_imperatively(LoginLockout, login_lockouts)
mapper_registry.map_imperatively(RefreshToken, refresh_tokens)
mapper_registry.map_imperatively(ApiKey, api_keys)
mapper_registry.map_imperatively(Street, streets)
mapper_registry.map_imperatively(Community, communities)
mapper_registry.map_imperatively(Compound, compounds)
mapper_registry.map_imperatively(Organisation, organisations)
