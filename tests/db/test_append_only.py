"""Rows only ever added (``db.append_only``): written at the session's flush with one plain
``INSERT`` per table, after the rows they refer to, and visible to the session's queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, Integer, MetaData, String, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from creditfactory.db.append_only import AppendOnly
from creditfactory.db.engine import create_engine


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
