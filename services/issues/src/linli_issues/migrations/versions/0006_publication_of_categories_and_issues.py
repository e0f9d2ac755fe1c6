"""publication of categories and issues: who reads them, what Open311 publishes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# Frozen here (not imported from the domain): the categories about a person start private.
PERSONAL = ('elderly_vulnerable_support', 'neighbour_dispute')


def upgrade() -> None:
    with op.batch_alter_table('categories') as batch_op:
        batch_op.add_column(
            sa.Column('publication', sa.String(length=12), nullable=False, server_default='community')
        )
    with op.batch_alter_table('issues') as batch_op:
        batch_op.add_column(
            sa.Column('publication', sa.String(length=12), nullable=False, server_default='community')
        )
        batch_op.add_column(sa.Column('marked_private', sa.Boolean(), nullable=False, server_default=sa.false()))
    categories = sa.table('categories', sa.column('key', sa.String), sa.column('publication', sa.String))
    issues = sa.table('issues', sa.column('category', sa.String), sa.column('publication', sa.String))
    op.execute(categories.update().where(categories.c.key.in_(PERSONAL)).values(publication='private'))
    # Nothing was published by choice before: every issue reads as its category now says
    # (community, or private about a person); no existing issue becomes public.
    op.execute(issues.update().where(issues.c.category.in_(PERSONAL)).values(publication='private'))
    # Open311 lists the public issues of a period, newest first.
    op.create_index('ix_issues_publication_created', 'issues', ['publication', 'created_at'], unique=False)
    # A resident's lists read the private issues they support.
    op.create_index('ix_issue_supporters_user', 'issue_supporters', ['user_id', 'issue_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_issue_supporters_user', table_name='issue_supporters')
    op.drop_index('ix_issues_publication_created', table_name='issues')
    with op.batch_alter_table('issues') as batch_op:
        batch_op.drop_column('marked_private')
        batch_op.drop_column('publication')
    with op.batch_alter_table('categories') as batch_op:
        batch_op.drop_column('publication')
