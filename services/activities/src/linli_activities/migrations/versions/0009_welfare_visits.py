"""welfare visits: a visit plan per resident needing support, and the visits made

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 13:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('visit_plans',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('flag_id', sa.String(length=36), nullable=False),
    sa.Column('community_id', sa.String(length=36), nullable=False),
    sa.Column('every_days', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.String(length=36), nullable=False),
    sa.Column('visitor_name', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('next_due_on', sa.Date(), nullable=False),
    sa.Column('last_visited_on', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['support_flags.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flag_id')
    )
    with op.batch_alter_table('visit_plans', schema=None) as batch_op:
        batch_op.create_index('ix_visit_plans_community_due', ['community_id', 'next_due_on'], unique=False)
        batch_op.create_index('ix_visit_plans_visitor', ['visitor_id'], unique=False)
    op.create_table('welfare_visits',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('flag_id', sa.String(length=36), nullable=False),
    sa.Column('community_id', sa.String(length=36), nullable=False),
    sa.Column('visitor_id', sa.String(length=36), nullable=False),
    sa.Column('visited_on', sa.Date(), nullable=False),
    sa.Column('condition', sa.String(length=12), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('booking_id', sa.String(length=36), nullable=True),
    sa.Column('recorded_by', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ),
    sa.ForeignKeyConstraint(['flag_id'], ['support_flags.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['visit_plans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('welfare_visits', schema=None) as batch_op:
        batch_op.create_index('ix_welfare_visits_community_on', ['community_id', 'visited_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_welfare_visits_flag_id'), ['flag_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('welfare_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_welfare_visits_flag_id'))
        batch_op.drop_index('ix_welfare_visits_community_on')
    op.drop_table('welfare_visits')
    with op.batch_alter_table('visit_plans', schema=None) as batch_op:
        batch_op.drop_index('ix_visit_plans_visitor')
        batch_op.drop_index('ix_visit_plans_community_due')
    op.drop_table('visit_plans')
