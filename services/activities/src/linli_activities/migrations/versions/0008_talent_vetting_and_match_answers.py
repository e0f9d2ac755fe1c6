"""talents vetted by staff (note, who, when) and located by compound; matches accepted or declined

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 12:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('talents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('compound_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('vetting_status', sa.String(length=10), server_default='pending', nullable=False))
        batch_op.add_column(sa.Column('vetting_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('vetted_by', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('vetted_at', sa.DateTime(timezone=True), nullable=True))
    # Talents listed before vetting existed were shown to residents: they stay shown, marked so.
    op.execute(
        "UPDATE talents SET vetting_status = 'approved', vetted_at = created_at, "
        "vetting_note = 'listed before vetting was recorded'"
    )
    with op.batch_alter_table('talent_matches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=10), server_default='proposed', nullable=False))
        batch_op.add_column(sa.Column('responded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decline_reason', sa.Text(), nullable=True))
    # Earlier matches took effect at once (a booking's provider was set): they count as accepted.
    op.execute("UPDATE talent_matches SET status = 'accepted', responded_at = matched_at")


def downgrade() -> None:
    with op.batch_alter_table('talent_matches', schema=None) as batch_op:
        batch_op.drop_column('decline_reason')
        batch_op.drop_column('responded_at')
        batch_op.drop_column('status')
    with op.batch_alter_table('talents', schema=None) as batch_op:
        batch_op.drop_column('vetted_at')
        batch_op.drop_column('vetted_by')
        batch_op.drop_column('vetting_note')
        batch_op.drop_column('vetting_status')
        batch_op.drop_column('compound_id')
