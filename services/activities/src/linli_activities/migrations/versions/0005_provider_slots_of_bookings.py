"""bookings hold their provider's slot: provider_key and its index; offerings' concurrent_slots

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 09:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Whose slot each existing booking holds, as Provider.of decides it (domain/care.py).
BACKFILL = """
UPDATE bookings SET provider_key = CASE
    WHEN provider_talent_id IS NOT NULL THEN 'talent:' || provider_talent_id
    WHEN (SELECT o.provider_type FROM service_offerings o WHERE o.id = bookings.offering_id) = 'talent'
         AND (SELECT o.provider_id FROM service_offerings o WHERE o.id = bookings.offering_id) IS NOT NULL
        THEN 'talent:' || (SELECT o.provider_id FROM service_offerings o WHERE o.id = bookings.offering_id)
    ELSE 'offering:' || offering_id
END
"""


def upgrade() -> None:
    with op.batch_alter_table('service_offerings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('concurrent_slots', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_key', sa.String(length=50), server_default='', nullable=False))
    op.execute(BACKFILL)
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_provider_slot', ['provider_key', 'slot_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_bookings_provider_slot')
        batch_op.drop_column('provider_key')
    with op.batch_alter_table('service_offerings', schema=None) as batch_op:
        batch_op.drop_column('concurrent_slots')
