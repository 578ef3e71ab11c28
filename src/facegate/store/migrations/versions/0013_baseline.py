"""Baseline: the store's schema at legacy version 13, created from the frozen declaration.

A new store is created here; a store created before Alembic is brought to version 13 by
``store/legacy_migrations.py`` and stamped with this revision instead (store/migrate.py).

Revision ID: 0013_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from facegate.store.migrations import baseline_tables

revision = "0013_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    metadata = baseline_tables.tables(bind.dialect.name)
    metadata.create_all(bind, checkfirst=False)
    feed_floor = metadata.tables["feed_floor"]
    bind.execute(sa.insert(feed_floor).values(singleton=1, pruned_through=0))


def downgrade() -> None:
    raise NotImplementedError("facegate's store does not migrate down")
