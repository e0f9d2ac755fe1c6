"""recurring activity series with exceptions, festivals grouping activities, announcing occurrences

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 11:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('festivals',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('street_id', sa.String(length=36), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('festivals', schema=None) as batch_op:
        batch_op.create_index('ix_festivals_starts_on', ['starts_on'], unique=False)
    op.create_table('activity_series',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('community_ids', sa.JSON(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('place', sa.String(length=300), nullable=True),
    sa.Column('post_id', sa.String(length=36), nullable=True),
    sa.Column('audience', sa.JSON(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('max_party_size', sa.Integer(), nullable=False),
    sa.Column('organiser_type', sa.String(length=10), nullable=False),
    sa.Column('organiser_id', sa.String(length=36), nullable=False),
    sa.Column('frequency', sa.String(length=10), nullable=False),
    sa.Column('interval', sa.Integer(), nullable=False),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('first_date', sa.Date(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=True),
    sa.Column('until', sa.Date(), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('festival_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['festival_id'], ['festivals.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('occurrence_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('series_exception', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('festival_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('announced_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_activities_series_id', 'activity_series', ['series_id'], ['id'])
        batch_op.create_foreign_key('fk_activities_festival_id', 'festivals', ['festival_id'], ['id'])
        batch_op.create_unique_constraint('uq_activities_series_date', ['series_id', 'occurrence_date'])
        batch_op.create_index('ix_activities_festival', ['festival_id'], unique=False)
    # What was published before was announced when it was published (its creation is close enough).
    op.execute("UPDATE activities SET announced_at = created_at WHERE status <> 'draft'")
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index(
            'ix_activities_unannounced', ['starts_at'], unique=False,
            postgresql_where=sa.text('announced_at IS NULL'), sqlite_where=sa.text('announced_at IS NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_unannounced')
        batch_op.drop_index('ix_activities_festival')
        batch_op.drop_constraint('uq_activities_series_date', type_='unique')
        batch_op.drop_constraint('fk_activities_festival_id', type_='foreignkey')
        batch_op.drop_constraint('fk_activities_series_id', type_='foreignkey')
        batch_op.drop_column('announced_at')
        batch_op.drop_column('festival_id')
        batch_op.drop_column('series_exception')
        batch_op.drop_column('occurrence_date')
        batch_op.drop_column('series_id')
    op.drop_table('activity_series')
    with op.batch_alter_table('festivals', schema=None) as batch_op:
        batch_op.drop_index('ix_festivals_starts_on')
    op.drop_table('festivals')
