"""party organisations: a party organisation as a participant and as the owner of an action item;
participants marked as party members

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organisation_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('party_member', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('action_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_organisation_name', sa.String(length=200), nullable=True))
    # Whoever took part in the role of a party member is one.
    op.execute("UPDATE participants SET party_member = true WHERE role = 'party_member'")


def downgrade() -> None:
    with op.batch_alter_table('action_items', schema=None) as batch_op:
        batch_op.drop_column('owner_organisation_name')
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_column('party_member')
        batch_op.drop_column('organisation_name')
