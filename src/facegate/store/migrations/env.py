"""Alembic's environment for the store: runs the revisions of ``versions/`` on the connection
facegate hands over (``config.attributes["connection"]``, :mod:`facegate.store.migrate`), inside
the transaction facegate began, under its writer lock. Facegate never reads an ``alembic.ini``.

For a developer's ``alembic`` command (writing a revision, ``--autogenerate`` against a store):
``alembic -c /dev/null -x url=sqlite:///path/to/facegate.sqlite3 ...`` with ``script_location``
set to this directory (docs/store.md shows the command).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy
from alembic import context

from facegate.store import schema

RUNTIME_TABLES = ("face_vectors", "face_vector_counts")
"""pgvector's tables, created at run time by store/pgvectors.py: never part of a revision."""


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Leave pgvector's tables (and their partitions) out of autogenerate's comparison."""
    return not (type_ == "table" and name is not None and name.startswith(RUNTIME_TABLES))


def run(connection: sqlalchemy.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=schema.metadata,
        include_object=include_object,
        render_as_batch=True,  # SQLite's ALTER TABLE limits: op.batch_alter_table
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise RuntimeError(
            "give the store: alembic -x url=sqlite:///... (or postgresql+psycopg://...)"
        )
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        run(conn)
    engine.dispose()


main()
