"""Rows only ever added (``db.append_only``): written at the session's flush with one plain
``INSERT`` per table (on PostgreSQL one statement for every table), after the rows they refer
to, and visible to the session's queries."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    String,
    bindparam,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from creditfactory.db.append_only import AppendOnly, LastWrite, commit_with
from creditfactory.db.engine import create_engine
from creditfactory.db.types import Money, UTCDateTime


class _Base(DeclarativeBase):
    metadata = MetaData()


class Parent(_Base):
    __tablename__ = "parent"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


class Note(AppendOnly, _Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("parent.id"))
    text: Mapped[str] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(40))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = create_engine(f"sqlite:///{(tmp_path / 'append.db').as_posix()}")  # foreign keys on
    _Base.metadata.create_all(eng)
    return eng


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split())[:40])

    return seen


def test_added_rows_are_written_after_the_rows_they_refer_to_in_one_insert(engine: Engine) -> None:
    seen = _statements(engine)
    with Session(engine) as session:
        session.add(Parent(id=1, name="p"))
        notes = [Note(parent_id=1, text=f"n{i}") for i in range(3)]
        session.add_all(notes)
        session.flush()  # the parent by the unit of work, then the notes (the key is enforced)
        assert not any(n in session for n in notes)  # they left the session, without an id
        assert [n.id for n in notes] == [None, None, None]
        session.commit()
    assert [s.split()[2] for s in seen if s.startswith("INSERT")] == ["parent", "note"]
    with Session(engine) as session:
        rows = session.execute(select(Note.text, Note.attempts, Note.error).order_by(Note.id)).all()
    assert [tuple(r) for r in rows] == [("n0", 0, None), ("n1", 0, None), ("n2", 0, None)]


def test_a_query_of_the_session_sees_them_and_a_rollback_takes_them_back(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Parent(id=1, name="p"))
        session.commit()
        session.add(Note(parent_id=1, text="alone", attempts=2))  # nothing else pending
        assert session.scalar(select(func.count()).select_from(Note)) == 1  # autoflush
        assert session.scalar(select(Note.attempts)) == 2
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Note)) == 0


def test_a_note_that_refers_to_nothing_fails_the_flush(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    with Session(engine) as session:
        session.add(Note(parent_id=99, text="orphan"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_a_flush_that_fails_takes_its_added_rows_with_it(engine: Engine) -> None:
    """The rows go out within the flush: a flush whose own writes fail writes none of them, not
    even with the next flush after a rollback of a savepoint or of the whole transaction."""
    from sqlalchemy.exc import IntegrityError

    with Session(engine) as session:
        session.add(Parent(id=1, name="p"))
        session.commit()
        with pytest.raises(IntegrityError):
            with session.begin_nested():
                session.add(Note(parent_id=1, text="lost"))
                session.add(Parent(id=1, name="twice"))  # the unit of work's part fails
                session.flush()
        session.add(Parent(id=2, name="q"))
        session.commit()
        session.add(Note(parent_id=1, text="lost too"))
        session.add(Parent(id=1, name="twice"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
        session.add(Parent(id=3, name="r"))
        session.commit()
        assert session.scalar(select(func.count()).select_from(Note)) == 0
        assert session.scalar(select(func.count()).select_from(Parent)) == 3


def test_added_rows_alone_that_fail_leave_the_transaction_usable(engine: Engine) -> None:
    """Written alone (nothing else pending), they go out in a savepoint of their own: the error
    reaches the caller and the rest of the transaction is still there to commit."""
    from sqlalchemy.exc import IntegrityError

    with Session(engine) as session:
        session.add(Parent(id=1, name="p"))
        session.flush()
        session.add(Note(parent_id=99, text="orphan"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.commit()
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Parent)) == 1
        assert session.scalar(select(func.count()).select_from(Note)) == 0


def test_a_row_held_as_written_leaves_the_session_with_a_rollback(engine: Engine) -> None:
    """``db.base.hold``: a row inserted by the caller's own statement and held as loaded is
    gone from the session after a rollback of its transaction or of a savepoint around it, as a
    row the unit of work inserted would be; SQLite then hands out the same id again."""
    from sqlalchemy import insert

    from creditfactory.db.base import filled, hold

    def write(session: Session, name: str) -> Parent:
        pid = session.connection().execute(insert(Parent).values(name=name).returning(Parent.id)).scalar_one()
        parent = filled(Parent, {"id": pid, "name": name})
        hold(session, parent)
        return parent

    with Session(engine) as session:
        first = write(session, "a")
        first_id = first.id
        assert session.get(Parent, first_id) is first and not session.dirty
        session.rollback()
        assert first not in session
        again = write(session, "b")  # the same id: no stale object in the way
        again_id = again.id
        assert again_id == first_id
        with pytest.raises(RuntimeError), session.begin_nested():
            inner = write(session, "c")
            raise RuntimeError("refused")
        assert inner not in session and again in session
        again.name = "b2"
        session.commit()
    with Session(engine) as session:
        assert session.execute(select(Parent.id, Parent.name)).all() == [(again_id, "b2")]


def test_added_rows_alone_at_a_commit_go_without_a_savepoint(engine: Engine) -> None:
    """The commit's flush writes them straight: a failure fails the commit, which ends the
    transaction (or the savepoint) it commits. A savepoint's commit leaves the next lone flush
    as before, in a savepoint of its own."""
    from sqlalchemy.exc import IntegrityError

    seen = _statements(engine)
    with Session(engine) as session:
        session.add(Parent(id=1, name="p"))
        session.flush()
        seen.clear()
        session.add(Note(parent_id=1, text="n"))
        session.commit()
        assert len(seen) == 1 and seen[0].startswith("INSERT INTO note")
    with Session(engine) as session:
        with session.begin_nested():
            session.add(Note(parent_id=1, text="inner"))
        seen.clear()
        session.add(Note(parent_id=99, text="orphan"))
        with pytest.raises(IntegrityError):
            session.flush()
        assert seen[0].startswith("SAVEPOINT") and seen[-1].startswith("ROLLBACK TO SAVEPOINT")
        session.commit()  # the inner note is still there to commit
    with Session(engine) as session:
        assert session.scalars(select(Note.text).order_by(Note.id)).all() == ["n", "inner"]
    with Session(engine) as session:
        session.add(Note(parent_id=99, text="orphan"))
        with pytest.raises(IntegrityError):
            session.commit()


class Versioned(_Base):
    __tablename__ = "versioned"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column("state", String(20))  # attribute and column named apart
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}


def test_changes_written_at_once_are_the_flushs_update_with_less_work(engine: Engine) -> None:
    """``db.base.write_changes``: one versioned UPDATE of the changed columns, the object left
    unchanged, the version counted up; a row another transaction changed meanwhile updates
    nothing and says so; with anything else pending the flush writes instead."""
    from creditfactory.db.base import write_changes

    with Session(engine) as session:
        session.add(Versioned(id=1, name="a", status="new"))
        session.commit()
    seen = _statements(engine)
    with Session(engine) as session:
        row = session.get(Versioned, 1)
        assert row is not None
        seen.clear()
        row.status, row.name = "moved", "b"
        session.add(Note(parent_id=1, text="apart"))  # written apart: does not hold it up
        assert write_changes(session, row)
        assert len(seen) == 1 and seen[0].startswith("UPDATE versioned SET")
        assert not session.dirty and row.version == 2 and row in session
        session.add(Parent(id=1, name="p"))  # the note refers to it: the commit writes both
        session.commit()
    with Session(engine) as session:
        got = session.execute(select(Versioned.name, Versioned.status, Versioned.version)).one()
        assert tuple(got) == ("b", "moved", 2)
        stale = session.get(Versioned, 1)
        assert stale is not None
        # another request moves the row on meanwhile (here on the same connection: SQLite)
        session.connection().execute(update(Versioned).values(name="c", version=3))
        stale.name = "d"
        assert not write_changes(session, stale)  # version 2 no longer there: nothing updated
        assert session.connection().execute(select(Versioned.name)).scalar() == "c"
        assert stale in session.dirty  # still to write: the caller refuses and rolls back
        session.expunge(stale)
        session.commit()
    with Session(engine) as session:
        row = session.get(Versioned, 1)
        assert row is not None
        session.add(Parent(id=2, name="q"))  # something else pending: the flush writes both
        row.status = "again"
        seen.clear()
        assert write_changes(session, row)
        assert any(s.startswith("INSERT INTO parent") for s in seen) and row.version == 4
        assert write_changes(session, row) is not False  # nothing changed: nothing to write


def test_changes_in_a_savepoint_are_flushed_so_that_its_rollback_expires_them(engine: Engine) -> None:
    from creditfactory.db.base import write_changes

    with Session(engine) as session:
        session.add(Versioned(id=1, name="a", status="new"))
        session.commit()
        row = session.get(Versioned, 1)
        assert row is not None
        with pytest.raises(RuntimeError), session.begin_nested():
            row.status = "moved"
            assert write_changes(session, row)
            raise RuntimeError("a later step of the savepoint fails")
        assert (row.status, row.version) == ("new", 1)  # read again: as the database has it
        row.status = "moved again"
        assert write_changes(session, row) and row.version == 2
        session.commit()
        session.expire(row, ["version"])  # a change to a row whose version is not loaded
        row.name = "b"
        assert write_changes(session, row) and row.version == 3
        session.commit()


def test_a_commit_that_fails_leaves_the_next_lone_flush_its_savepoint(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    seen = _statements(engine)
    with Session(engine) as session:
        session.add(Parent(id=1, name="p"))
        session.commit()
        session.add(Note(parent_id=99, text="orphan"))
        with pytest.raises(IntegrityError):
            session.commit()
        seen.clear()
        session.add(Note(parent_id=98, text="orphan"))
        with pytest.raises(IntegrityError):
            session.flush()
        assert seen[0].startswith("SAVEPOINT")


# ------------------------------------------------------------------ PostgreSQL: one statement


class Level(enum.Enum):
    INFO = "info"
    WARN = "warn"


class Log(AppendOnly, _Base):
    __tablename__ = "log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[Level] = mapped_column(Enum(Level, native_enum=False, length=10))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=7)
    amount: Mapped[Decimal | None] = mapped_column(Money)  # fen at rest
    stamped: Mapped[datetime | None] = mapped_column(UTCDateTime)  # refuses a naive datetime


@pytest.fixture
def pg_engine(postgres_server: Any) -> Iterator[Engine]:
    url = postgres_server.create_database()
    eng = create_engine(url)
    _Base.metadata.create_all(eng)
    try:
        yield eng
    finally:
        eng.dispose()
        postgres_server.drop_database(url)


AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


@pytest.mark.postgres
def test_on_postgresql_the_rows_of_every_table_go_in_one_statement(pg_engine: Engine) -> None:
    seen = _statements(pg_engine)
    with Session(pg_engine) as session:
        session.add(Parent(id=1, name="p"))
        session.commit()
        seen.clear()
        session.add_all([Note(parent_id=1, text="n0"), Note(parent_id=1, text="n1", attempts=3)])
        session.add_all(
            [
                Log(level=Level.WARN, payload={"a": [1, "二"]}, at=AT, amount=Decimal("12.34"), stamped=AT),
                Log(level=Level.INFO, payload={}, at=AT, count=0),
            ]
        )
        session.commit()
    assert len(seen) == 1 and seen[0].startswith("WITH append_0 AS")
    with Session(pg_engine) as session:
        notes = session.execute(
            select(Note.parent_id, Note.text, Note.attempts, Note.error).order_by(Note.text)
        )
        assert [tuple(r) for r in notes] == [(1, "n0", 0, None), (1, "n1", 3, None)]
        logs = session.execute(
            select(Log.level, Log.payload, Log.at, Log.count, Log.amount, Log.stamped).order_by(Log.count)
        ).all()
        assert [tuple(r) for r in logs] == [
            (Level.INFO, {}, AT, 0, None, None),
            (Level.WARN, {"a": [1, "二"]}, AT, 7, Decimal("12.34"), AT),
        ]
        stored = session.connection().execute(text("SELECT level, amount FROM log ORDER BY count")).all()
        assert [tuple(r) for r in stored] == [("INFO", None), ("WARN", 1234)]


@pytest.mark.postgres
def test_on_postgresql_a_row_that_fails_writes_none_written_with_it(pg_engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    with Session(pg_engine) as session:
        session.add(Parent(id=1, name="p"))
        session.flush()
        session.add(Log(level=Level.INFO, payload={}, at=AT))
        session.add(Note(parent_id=99, text="orphan"))  # no such parent
        with pytest.raises(IntegrityError):
            session.flush()  # alone: in a savepoint of its own
        session.commit()  # the parent is still there to commit
    with Session(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(Parent)) == 1
        assert session.scalar(select(func.count()).select_from(Log)) == 0
        assert session.scalar(select(func.count()).select_from(Note)) == 0


@pytest.mark.postgres
@pytest.mark.parametrize("more", [0, 1], ids=["at the cap", "one over"])
def test_on_postgresql_a_large_batch_goes_one_executemany_a_table(pg_engine: Engine, more: int) -> None:
    """Up to :data:`ONE_STATEMENT_VALUES` values (rows times columns) in one statement; more,
    one ``executemany`` a table."""
    from creditfactory.db.append_only import ONE_STATEMENT_VALUES

    log_values = len(Log.__table__.columns) - 1  # its generated key aside
    note_values = len(Note.__table__.columns) - 1
    notes = (ONE_STATEMENT_VALUES - 2 * log_values) // note_values
    assert notes * note_values + 2 * log_values == ONE_STATEMENT_VALUES  # the cap exactly, for these tables
    seen = _statements(pg_engine)
    with Session(pg_engine) as session:
        session.add(Parent(id=1, name="p"))
        session.commit()
        seen.clear()
        session.add_all([Note(parent_id=1, text=f"n{i}") for i in range(notes + more)])
        session.add_all([Log(level=Level.INFO, payload={}, at=AT), Log(level=Level.WARN, payload={}, at=AT)])
        session.commit()
    if more:
        assert sorted(s.split()[2] for s in seen) == ["log", "note"]
    else:
        assert len(seen) == 1 and seen[0].startswith("WITH append_0 AS")
    with Session(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(Note)) == notes + more
        assert session.scalar(select(func.count()).select_from(Log)) == 2


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_value_its_type_refuses_is_a_statement_error_and_nothing_is_written(
    request: pytest.FixtureRequest, database: str
) -> None:
    """A naive datetime for a ``UTCDateTime`` column: SQLAlchemy's ``StatementError`` naming the
    type's complaint, on PostgreSQL's one statement as on SQLite's ``executemany``; the rows
    added with it are not written and the session's transaction goes on."""
    from sqlalchemy.exc import StatementError

    eng = request.getfixturevalue("engine" if database == "sqlite" else "pg_engine")
    with Session(eng) as session:
        session.add(Parent(id=1, name="p"))
        session.flush()
        session.add(Note(parent_id=1, text="with it"))
        session.add(Log(level=Level.INFO, payload={}, at=AT, stamped=datetime(2026, 12, 2, 9, 30)))
        with pytest.raises(
            StatementError, match=r"\(builtins.ValueError\) UTCDateTime needs an aware datetime"
        ):
            session.flush()
        session.commit()
    with Session(eng) as session:
        assert session.scalar(select(func.count()).select_from(Parent)) == 1
        assert session.scalar(select(func.count()).select_from(Note)) == 0
        assert session.scalar(select(func.count()).select_from(Log)) == 0


# ------------------------------------------------------------------ a last write carried by the commit


class Tally(_Base):
    """A row the commit's last write changes (as a stored response completes its claim)."""

    __tablename__ = "tally"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal | None] = mapped_column(Money)  # fen at rest
    stamped: Mapped[datetime | None] = mapped_column(UTCDateTime)  # refuses a naive datetime


class Refused(Exception):
    pass


_TALLY = Tally.__table__
_SET_TALLY = (
    update(_TALLY)
    .where(_TALLY.c.id == bindparam("t_id"))
    .values(
        label=bindparam("v_label", type_=_TALLY.c.label.type),
        amount=bindparam("v_amount", type_=_TALLY.c.amount.type),
        stamped=bindparam("v_stamped", type_=_TALLY.c.stamped.type),
    )
)


def _last(tally_id: int, label: str, *, stamped: datetime | None = AT, rows: int = 1) -> LastWrite:
    return LastWrite(
        statement=_SET_TALLY,
        params={"t_id": tally_id, "v_label": label, "v_amount": Decimal("12.34"), "v_stamped": stamped},
        rows=rows,
        refused=lambda: Refused(f"no tally {tally_id}"),
    )


def _tallies(eng: Engine) -> list[tuple[Any, ...]]:
    with Session(eng) as session:
        return [tuple(r) for r in session.execute(select(Tally.id, Tally.label, Tally.amount, Tally.stamped))]


def _stored_amounts(eng: Engine) -> list[Any]:
    with Session(eng) as session:
        return list(session.connection().execute(text("SELECT amount FROM tally ORDER BY id")).scalars())


@pytest.mark.postgres
def test_on_postgresql_the_last_write_goes_in_the_commits_one_statement(pg_engine: Engine) -> None:
    """The rows only ever added and the ``UPDATE`` in ``WITH`` clauses of one statement that
    counts the rows the ``UPDATE`` changed; each value through its column type's processor."""
    seen = _statements(pg_engine)
    with Session(pg_engine) as session:
        session.add_all([Parent(id=1, name="p"), Tally(id=1, label="open")])
        session.commit()
        seen.clear()
        session.add_all([Note(parent_id=1, text="n0"), Log(level=Level.INFO, payload={}, at=AT)])
        commit_with(session, _last(1, "done"))
    assert len(seen) == 1 and seen[0].startswith("WITH append_0 AS")
    assert _tallies(pg_engine) == [(1, "done", Decimal("12.34"), AT)]
    assert _stored_amounts(pg_engine) == [1234]
    with Session(pg_engine) as session:
        assert session.scalars(select(Note.text)).all() == ["n0"]
        assert session.scalar(select(func.count()).select_from(Log)) == 1


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_last_write_that_changes_other_than_its_rows_fails_the_commit(
    request: pytest.FixtureRequest, database: str
) -> None:
    """No row to change (or more than it must): its refusal, raised by the commit, which then
    commits nothing: neither the rows added with it nor the unit of work's."""
    eng = request.getfixturevalue("engine" if database == "sqlite" else "pg_engine")
    with Session(eng) as session:
        session.add_all([Parent(id=1, name="p"), Tally(id=1, label="a"), Tally(id=2, label="b")])
        session.commit()
    for last in (_last(9, "none"), _last(1, "two", rows=2)):
        with Session(eng) as session:
            session.add(Parent(id=2, name="q"))
            session.add(Note(parent_id=1, text="with it"))
            with pytest.raises(Refused):
                commit_with(session, last)
            session.commit()  # the failed commit was rolled back: nothing is left to commit
        with Session(eng) as session:
            assert session.scalar(select(func.count()).select_from(Note)) == 0
            assert session.scalar(select(func.count()).select_from(Parent)) == 1
        assert sorted(_tallies(eng)) == [(1, "a", None, None), (2, "b", None, None)]
    with Session(eng) as session:  # nothing else to write: the last write alone fails as well
        session.add(Note(parent_id=1, text="read back first"))
        session.flush()
        with pytest.raises(Refused):
            commit_with(session, _last(9, "none"))
        session.commit()
    with Session(eng) as session:
        assert session.scalar(select(func.count()).select_from(Note)) == 0


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_last_write_goes_alone_or_after_the_unit_of_works_rows(
    request: pytest.FixtureRequest, database: str
) -> None:
    """With nothing else to write it is the commit's one statement; after rows the unit of work
    writes (a new parent), it comes after them, with the rows only ever added on PostgreSQL; a
    commit without one leaves the next commit as it was."""
    eng = request.getfixturevalue("engine" if database == "sqlite" else "pg_engine")
    seen = _statements(eng)

    def sent() -> list[list[str]]:  # SQLite's BEGIN aside
        return [s.split()[:3] for s in seen if not s.startswith("BEGIN")]

    with Session(eng) as session:
        session.add(Tally(id=1, label="open"))
        session.commit()
        seen.clear()
        commit_with(session, _last(1, "alone"))
        assert sent() == [["UPDATE", "tally", "SET"]]
        seen.clear()
        session.add(Parent(id=1, name="p"))
        session.add(Note(parent_id=1, text="n"))
        commit_with(session, _last(1, "after"))
        if database == "postgresql":
            assert [s[0] for s in sent()] == ["INSERT", "WITH"]
        else:
            assert sent() == [
                ["INSERT", "INTO", "parent"],
                ["INSERT", "INTO", "note"],
                ["UPDATE", "tally", "SET"],
            ]
        seen.clear()
        session.add(Note(parent_id=1, text="later"))
        session.commit()
        assert len(sent()) == 1 and "tally" not in sent()[0]
    assert _tallies(eng) == [(1, "after", Decimal("12.34"), AT)]
    with Session(eng) as session:
        assert session.scalars(select(Note.text).order_by(Note.id)).all() == ["n", "later"]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_last_write_value_its_type_refuses_is_a_statement_error(
    request: pytest.FixtureRequest, database: str
) -> None:
    from sqlalchemy.exc import StatementError

    eng = request.getfixturevalue("engine" if database == "sqlite" else "pg_engine")
    with Session(eng) as session:
        session.add_all([Parent(id=1, name="p"), Tally(id=1, label="open")])
        session.commit()
        session.add(Note(parent_id=1, text="with it"))
        with pytest.raises(StatementError, match=r"UTCDateTime needs an aware datetime"):
            commit_with(session, _last(1, "naive", stamped=datetime(2026, 12, 2, 9, 30)))
        session.rollback()
    assert _tallies(eng) == [(1, "open", None, None)]
    with Session(eng) as session:
        assert session.scalar(select(func.count()).select_from(Note)) == 0


class Tagged(AppendOnly, _Base):
    __tablename__ = "tagged"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(20))
    tag: Mapped[str | None] = mapped_column(String(10), server_default="x")  # the server's, when left out
    level: Mapped[str | None] = mapped_column(String(10), default="low")  # SQLAlchemy's, when left out


@pytest.mark.postgres
def test_on_postgresql_a_column_null_in_every_row_is_left_out_unless_the_server_has_a_default(
    pg_engine: Engine,
) -> None:
    """Fewer parameters: a column NULL in every row of the batch is not sent (NULL all the
    same); one NULL only in some rows is; one with a default, the server's or SQLAlchemy's,
    always is, or its NULL would become the default."""
    seen: list[str] = []

    @event.listens_for(pg_engine, "before_cursor_execute")
    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    with Session(pg_engine) as session:
        session.add_all([Tagged(label="a", level=None), Tagged(label="b", level=None)])
        session.commit()
        session.add_all([Tagged(label="c", note="n"), Tagged(label="d", tag="y")])
        session.commit()
    first, second = (s.split("VALUES")[0] for s in seen)
    assert "note" not in first and "tag" in first and "level" in first
    assert "note" in second and "tag" in second
    with Session(pg_engine) as session:
        rows = session.execute(
            select(Tagged.label, Tagged.note, Tagged.tag, Tagged.level).order_by(Tagged.label)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("a", None, None, None),
        ("b", None, None, None),
        ("c", "n", None, "low"),
        ("d", None, "y", "low"),
    ]


@pytest.mark.postgres
def test_on_postgresql_a_last_write_must_name_every_value_of_its_statement(pg_engine: Engine) -> None:
    """A literal in the ``UPDATE`` (a parameter the write does not give) is refused before
    anything is sent, rather than sent without its value."""
    with Session(pg_engine) as session:
        session.add_all([Parent(id=1, name="p"), Tally(id=1, label="open")])
        session.commit()
        session.add(Note(parent_id=1, text="with it"))
        literal = LastWrite(
            statement=update(_TALLY)
            .where(_TALLY.c.id == bindparam("t_id"), _TALLY.c.label == "open")
            .values(label=bindparam("v_label", type_=_TALLY.c.label.type)),
            params={"t_id": 1, "v_label": "done"},
            rows=1,
            refused=lambda: Refused("none"),
        )
        with pytest.raises(ValueError, match="every value of its statement"):
            commit_with(session, literal)
    assert _tallies(pg_engine) == [(1, "open", None, None)]


@pytest.mark.postgres
def test_on_postgresql_a_json_none_is_written_as_json_null_whether_or_not_every_row_has_it(
    pg_engine: Engine,
) -> None:
    """``None`` in a ``JSON`` column is JSON's ``null`` (SQLAlchemy's default), not SQL's NULL:
    such a column is sent even when every row has ``None``, as on the other paths."""
    with Session(pg_engine) as session:
        session.add_all(
            [Log(level=Level.INFO, payload=None, at=AT), Log(level=Level.WARN, payload=None, at=AT)]
        )
        session.commit()
        stored = session.connection().execute(text("SELECT payload IS NULL, payload::text FROM log")).all()
    assert [tuple(r) for r in stored] == [(False, "null"), (False, "null")]


class VersionRefused(Exception):
    pass


def _moved_meanwhile() -> VersionRefused:
    return VersionRefused("moved meanwhile")


def _versioned_row(eng: Engine) -> tuple[Any, ...]:
    """Versioned row 1 as stored: name, status, version."""
    with Session(eng) as session:
        return tuple(session.execute(select(Versioned.name, Versioned.status, Versioned.version)).one())


def _with_a_versioned_row(eng: Engine, *, tally: bool = False) -> None:
    """Parent 1 and versioned row 1 (``a``, ``new``, version 1); with ``tally``, tally 1 too."""
    with Session(eng) as session:
        session.add_all([Parent(id=1, name="p"), Versioned(id=1, name="a", status="new")])
        if tally:
            session.add(Tally(id=1, label="open"))
        session.commit()


def _versioned_engine(request: pytest.FixtureRequest, database: str, *, tally: bool = False) -> Engine:
    """The test's engine of ``database`` with :func:`_with_a_versioned_row` written."""
    eng: Engine = request.getfixturevalue("engine" if database == "sqlite" else "pg_engine")
    _with_a_versioned_row(eng, tally=tally)
    return eng


def _versioned(session: Session) -> Versioned:
    """Versioned row 1, loaded in ``session``."""
    row = session.get(Versioned, 1)
    assert row is not None
    return row


def _carry(session: Session, row: Versioned, **values: Any) -> None:
    """``row`` given ``values`` and written with ``at_commit=_moved_meanwhile``: carried to the
    commit, or written at once inside a savepoint."""
    from creditfactory.db.base import write_changes

    for name, value in values.items():
        setattr(row, name, value)
    assert write_changes(session, row, at_commit=_moved_meanwhile)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_changes_carried_by_the_commit_go_in_its_statement_with_the_last_write(
    request: pytest.FixtureRequest, database: str
) -> None:
    """``write_changes(..., at_commit=...)`` sends nothing: the commit writes the versioned
    ``UPDATE`` with the rows only ever added and the last write, in one statement on
    PostgreSQL (each write's rows counted), one by one on SQLite; the object is as written at
    once."""
    from creditfactory.db.append_only import carried

    eng = _versioned_engine(request, database, tally=True)
    seen = _statements(eng)
    with Session(eng) as session:
        row = _versioned(session)
        seen.clear()
        _carry(session, row, status="moved", name="b")
        assert seen == [] and not session.dirty and row.version == 2 and len(carried(session)) == 1
        session.add(Note(parent_id=1, text="with it"))
        commit_with(session, _last(1, "done"))
        assert carried(session) == []
    sent = [s for s in seen if not s.startswith("BEGIN")]
    if database == "postgresql":
        assert len(sent) == 1 and sent[0].startswith("WITH append_0 AS")
    else:
        assert [s.split()[:3] for s in sent] == [
            ["INSERT", "INTO", "note"],
            ["UPDATE", "versioned", "SET"],
            ["UPDATE", "tally", "SET"],
        ]
    assert _versioned_row(eng) == ("b", "moved", 2)
    with Session(eng) as session:
        assert session.scalars(select(Note.text)).all() == ["with it"]
    assert _tallies(eng) == [(1, "done", Decimal("12.34"), AT)]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_carried_change_of_a_row_changed_meanwhile_fails_the_commit(
    request: pytest.FixtureRequest, database: str
) -> None:
    """Another transaction moved the row on before the commit: the commit raises the carried
    write's refusal and writes nothing (the rows added with it, the last write, the change)."""

    eng = _versioned_engine(request, database, tally=True)
    with Session(eng) as session:
        row = _versioned(session)
        _carry(session, row, status="moved")
        # another request moves the row on meanwhile (on the same connection: SQLite's lock)
        session.connection().execute(update(Versioned).values(name="other", version=5))
        session.add(Note(parent_id=1, text="with it"))
        with pytest.raises(VersionRefused):
            commit_with(session, _last(1, "done"))
        session.commit()  # rolled back: nothing left to commit, nothing carried
    with Session(eng) as session:
        assert tuple(session.execute(select(Versioned.name, Versioned.version)).one()) == ("a", 1)
        assert session.scalar(select(func.count()).select_from(Note)) == 0
    assert _tallies(eng) == [(1, "open", None, None)]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_carried_changes_end_with_the_transaction_and_a_later_write_sends_them_first(
    request: pytest.FixtureRequest, database: str
) -> None:
    """A rollback forgets a carried change; a plain commit writes it; a second change of the
    table before the commit sends the first at once (the second follows its version), and in
    a savepoint a change is written at once."""
    from creditfactory.db.append_only import carried

    eng = _versioned_engine(request, database)
    seen = _statements(eng)

    with Session(eng) as session:
        row = _versioned(session)
        _carry(session, row, name="forgotten")
        session.rollback()
        assert carried(session) == [] and _versioned_row(eng) == ("a", "new", 1)
        row = _versioned(session)
        assert row.name == "a"
        _carry(session, row, name="b")
        seen.clear()
        _carry(session, row, status="moved")  # the first goes now
        assert [s.split()[:3] for s in seen if not s.startswith("BEGIN")] == [["UPDATE", "versioned", "SET"]]
        assert len(carried(session)) == 1 and row.version == 3
        session.commit()
        assert carried(session) == []
    assert _versioned_row(eng) == ("b", "moved", 3)
    with Session(eng) as session:
        row = _versioned(session)
        with session.begin_nested():
            _carry(session, row, name="in a savepoint")
            assert carried(session) == []
        session.commit()
    assert _versioned_row(eng) == ("in a savepoint", "moved", 4)


@pytest.mark.postgres
def test_on_postgresql_a_value_the_same_in_every_row_is_sent_once(pg_engine: Engine) -> None:
    """Rows of a table that share a value (the same parent, the same time) take it as one
    parameter used by each row: psycopg translates a statement of more than 50 parameters
    again at every execution. A value equal but not of the same type (``True`` and ``1``),
    and a value of one row alone, are sent for each row."""
    sent: list[dict[str, Any]] = []

    @event.listens_for(pg_engine, "before_cursor_execute")
    def keep(_conn: Any, _cursor: Any, _statement: str, parameters: Any, *_: Any) -> None:
        sent.append(dict(parameters or {}))

    with Session(pg_engine) as session:
        session.add_all([Parent(id=1, name="p"), Parent(id=2, name="q")])
        session.commit()
        sent.clear()
        session.add_all([Note(parent_id=1, text=f"n{i}") for i in range(3)])
        session.add_all(
            [Log(level=Level.INFO, payload={"a": a}, at=AT, count=c) for a, c in ((1, True), (1.0, 1))]
        )
        session.commit()
        (params,) = sent
        # the notes' parent and attempts once, their texts each; the logs' level and time once,
        # their payloads and counts each (True is not 1, nor {"a": 1} {"a": 1.0})
        assert sorted(k for k in params if k.startswith("a0_")) == [
            "a0_0_1",
            "a0_1_1",
            "a0_2_1",
            "a0_s_0",
            "a0_s_2",
        ]
        assert sorted(k for k in params if k.startswith("a1_")) == [
            "a1_0_1",
            "a1_0_3",
            "a1_1_1",
            "a1_1_3",
            "a1_s_0",
            "a1_s_2",
        ]
        sent.clear()
        session.add(Note(parent_id=2, text="alone"))
        session.commit()
        assert "_s_" not in "".join(sent[0])
    with Session(pg_engine) as session:
        notes = session.execute(select(Note.parent_id, Note.text, Note.attempts).order_by(Note.text)).all()
        assert [tuple(r) for r in notes] == [(2, "alone", 0), (1, "n0", 0), (1, "n1", 0), (1, "n2", 0)]
        counts = session.scalars(select(Log.count).order_by(Log.id)).all()
        assert counts == [1, 1]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_carried_change_waits_out_savepoints_and_flushes_for_the_commit(
    request: pytest.FixtureRequest, database: str
) -> None:
    """A savepoint's release runs ``before_commit`` too: neither it, nor a flush of rows only
    ever added alone (in a savepoint of its own), nor a query's autoflush writes a carried
    change; the transaction's commit does. Written again inside a savepoint, the row whose
    change is carried is refused (the savepoint's rollback would take the change)."""
    from creditfactory.db.append_only import carried
    from creditfactory.db.base import write_changes

    eng = _versioned_engine(request, database)
    seen = _statements(eng)
    with Session(eng) as session:
        row = _versioned(session)
        _carry(session, row, status="moved")
        seen.clear()
        session.add(Note(parent_id=1, text="alone"))
        session.flush()  # in a savepoint of its own, released
        with session.begin_nested():
            session.add(Note(parent_id=1, text="in a savepoint"))
        session.add(Note(parent_id=1, text="autoflushed"))
        assert len(session.scalars(select(Note.text)).all()) == 3  # the query's autoflush
        assert not any("UPDATE versioned" in s for s in seen) and len(carried(session)) == 1
        with pytest.raises(RuntimeError, match="inside a savepoint"), session.begin_nested():
            row.name = "again"
            write_changes(session, row)
        assert len(carried(session)) == 1
        session.commit()
    assert _versioned_row(eng) == ("a", "moved", 2)
    with Session(eng) as session:
        assert session.scalar(select(func.count()).select_from(Note)) == 3


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_change_carried_between_transactions_begins_one_and_a_refusal_commits_nothing(
    request: pytest.FixtureRequest, database: str
) -> None:
    """Carried by a session whose transaction had ended, a change begins the next one (so that
    its rollback forgets it); a unit of work's plain commit that a carried change refuses is
    rolled back, leaving nothing of what it was to commit."""
    from sqlalchemy.orm import sessionmaker

    from creditfactory.db.append_only import carried
    from creditfactory.db.uow import UnitOfWork

    eng = _versioned_engine(request, database)
    with Session(eng, expire_on_commit=False) as session:
        row = _versioned(session)
        session.commit()  # the transaction ends; the row stays loaded
        _carry(session, row, name="forgotten")
        assert session.in_transaction()
        session.rollback()
        assert carried(session) == []
    with UnitOfWork(sessionmaker(eng)) as uow:
        row = _versioned(uow.session)
        _carry(uow.session, row, status="moved")
        uow.session.connection().execute(update(Versioned).values(version=9))  # moved on meanwhile
        uow.session.add(Note(parent_id=1, text="with it"))
        with pytest.raises(VersionRefused):
            uow.commit()
        assert not uow.session.in_transaction() and carried(uow.session) == []
        uow.commit()  # nothing left to commit
    assert _versioned_row(eng) == ("a", "new", 1)
    with Session(eng) as session:
        assert session.scalar(select(func.count()).select_from(Note)) == 0
