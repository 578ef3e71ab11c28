"""store/core.py: Core statements on the store's connections, on both backends (compiled once
per shape, values extracted per call, rows read as before, constraint violations translated)."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, delete, func, insert, select, update

from facegate.store import core
from facegate.store.db import IntegrityError, StoreDatabase
from facegate.store.schema import collections, tags


def add_collection(database: StoreDatabase, uid: str) -> None:
    with database.transaction() as conn:
        conn.execute(
            insert(collections).values(
                uid=uid,
                arn=f"arn:{uid}",
                face_model_version="6.0",
                created_at=1.0,
                org_id="org",
                collection_id=uid,
            )
        )


def compiler(database: StoreDatabase) -> core.StatementCompiler:
    return core.POSTGRESQL if database.dialect == "postgresql" else core.SQLITE


def test_select_insert_update_delete_round_trip(database: StoreDatabase) -> None:
    add_collection(database, "c1")
    with database.transaction() as conn:
        conn.executemany(
            insert(tags),
            [
                {"collection_uid": "c1", "tag_key": k, "tag_value": v}
                for k, v in [("b", "2"), ("a", "1")]
            ],
        )
        conn.execute(update(tags).where(tags.c.tag_key == "b").values(tag_value="20% off"))
    with database.read() as conn:
        rows = conn.execute(
            select(tags.c.tag_key, tags.c.tag_value)
            .where(tags.c.collection_uid == "c1")
            .order_by(tags.c.tag_key)
        ).fetchall()
    assert [(r["tag_key"], r[1]) for r in rows] == [("a", "1"), ("b", "20% off")]
    with database.transaction() as conn:
        cursor = conn.execute(delete(tags).where(tags.c.tag_key == "a"))
        assert cursor.rowcount == 1
    with database.read() as conn:
        count = conn.execute(select(func.count()).select_from(tags)).fetchone()[0]
    assert count == 1


def test_each_shape_compiles_once(database: StoreDatabase) -> None:
    for i in range(3):
        add_collection(database, f"c{i}")
    before = compiler(database).compilations
    with database.read() as conn:
        for i in range(3):
            row = conn.execute(select(collections.c.arn).where(collections.c.uid == f"c{i}"))
            assert row.fetchone()[0] == f"arn:c{i}"  # the values differ, the shape does not
    assert compiler(database).compilations - before <= 1


def test_named_bindparams_and_expanding_in(database: StoreDatabase) -> None:
    for uid in ("c1", "c2", "c3"):
        add_collection(database, uid)
    by_uid = select(collections.c.arn).where(collections.c.uid == bindparam("uid"))
    with database.read() as conn:
        assert conn.execute(by_uid, {"uid": "c2"}).fetchone()[0] == "arn:c2"
        rows = conn.execute(
            select(collections.c.uid)
            .where(collections.c.uid.in_(["c1", "c3"]))
            .order_by(collections.c.uid)
        ).fetchall()
        assert [r[0] for r in rows] == ["c1", "c3"]
        with pytest.raises(TypeError, match="named parameters"):
            conn.execute(by_uid, ("c2",))  # type: ignore[arg-type]


def test_rowid_is_insertion_order(database: StoreDatabase) -> None:
    for uid in ("z", "a", "m"):
        add_collection(database, uid)
    with database.read() as conn:
        rows = conn.execute(
            select(collections.c.rowid.label("cursor"), collections.c.uid).order_by(
                collections.c.rowid
            )
        ).fetchall()
    assert [r["uid"] for r in rows] == ["z", "a", "m"]
    assert rows[0]["cursor"] < rows[1]["cursor"] < rows[2]["cursor"]


def test_upsert_and_integrity_error(database: StoreDatabase) -> None:
    add_collection(database, "c1")
    stmt = core.insert_for(database.dialect, tags)
    upsert = stmt.on_conflict_do_update(
        index_elements=[tags.c.collection_uid, tags.c.tag_key],
        set_={"tag_value": stmt.excluded.tag_value},
    )
    with database.transaction() as conn:
        for value in ("1", "2"):
            conn.execute(upsert.values(collection_uid="c1", tag_key="k", tag_value=value))
    with database.read() as conn:
        assert conn.execute(select(tags.c.tag_value)).fetchone()[0] == "2"
    with pytest.raises(IntegrityError), database.transaction() as conn:
        conn.execute(insert(tags).values(collection_uid="c1", tag_key="k", tag_value="3"))
    with pytest.raises(IntegrityError), database.transaction() as conn:
        conn.executemany(
            insert(tags), [{"collection_uid": "gone", "tag_key": "k", "tag_value": "v"}]
        )
    with database.read() as conn:
        assert conn.execute(select(tags.c.tag_value)).fetchall()[0][0] == "2"


def test_insert_for_refuses_an_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="unknown store dialect"):
        core.insert_for("oracle", tags)


def test_executemany_of_no_rows_runs_nothing(database: StoreDatabase) -> None:
    stmt = delete(tags).where(tags.c.tag_key == bindparam("key"))
    with database.transaction() as conn:
        assert conn.executemany(stmt, []).fetchall() == []


def test_expanding_in_is_compiled_once_for_every_length(database: StoreDatabase) -> None:
    for uid in ("c1", "c2", "c3", "c4"):
        add_collection(database, uid)
    before = compiler(database).compilations
    with database.read() as conn:
        for wanted in (["c1"], ["c2", "c4"], ["c1", "c3", "c4", "gone"], []):
            rows = conn.execute(
                select(collections.c.uid)
                .where(collections.c.uid.in_(wanted))
                .order_by(collections.c.uid)
            ).fetchall()
            assert [r[0] for r in rows] == sorted(set(wanted) - {"gone"})
    assert compiler(database).compilations - before <= 1


def test_executemany_refuses_in_lists_of_different_lengths(database: StoreDatabase) -> None:
    stmt = delete(tags).where(tags.c.tag_key.in_(bindparam("keys", expanding=True)))
    with pytest.raises(ValueError, match="different lengths"), database.transaction() as conn:
        conn.executemany(stmt, [{"keys": ["a"]}, {"keys": ["a", "b"]}])
