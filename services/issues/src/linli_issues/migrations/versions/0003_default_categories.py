"""the eight default categories a city starts with

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

categories = sa.table(
    'categories',
    sa.column('key', sa.String),
    sa.column('name', sa.String),
    sa.column('default_tier', sa.String),
    sa.column('responsible_body', sa.String),
    sa.column('deadline_hours', sa.JSON),
    sa.column('active', sa.Boolean),
    sa.column('position', sa.Integer),
)


def _hours(low, normal, high, urgent):
    return {'low': low, 'normal': normal, 'high': high, 'urgent': urgent}


# Frozen here (not imported from the domain) so this revision always seeds the same rows.
DEFAULTS = [
    ('safety_hazard', 'Safety hazard', 'community', 'community', _hours(72, 48, 24, 4)),
    ('repairs_facilities', 'Repairs and facilities', 'compound', 'property_company', _hours(720, 336, 120, 24)),
    ('environment_sanitation', 'Environment and sanitation', 'compound', 'property_company', _hours(336, 168, 72, 24)),
    ('property_management', 'Property management', 'compound', 'owners_committee', _hours(720, 336, 120, 48)),
    ('parking', 'Parking', 'compound', 'property_company', _hours(720, 336, 168, 48)),
    ('neighbour_dispute', 'Neighbour dispute', 'community', 'community', _hours(720, 336, 120, 48)),
    ('elderly_vulnerable_support', 'Elderly and vulnerable support', 'community', 'community', _hours(168, 72, 24, 6)),
    ('other', 'Other', 'community', 'community', _hours(720, 336, 168, 48)),
]


def upgrade() -> None:
    op.bulk_insert(
        categories,
        [
            {'key': key, 'name': name, 'default_tier': tier, 'responsible_body': body,
             'deadline_hours': hours, 'active': True, 'position': position}
            for position, (key, name, tier, body, hours) in enumerate(DEFAULTS, start=1)
        ],
    )


def downgrade() -> None:
    op.execute(categories.delete().where(categories.c.key.in_([d[0] for d in DEFAULTS])))
