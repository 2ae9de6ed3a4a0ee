"""Reads of at most one row each, sent together: one round trip for what a request reads first.

A request that reads several things before it writes (an application reads the customer's
offer, consents and record) pays a round trip a read, each about as dear as the read itself
when the reads are small. :func:`together` sends such reads in one statement on PostgreSQL:
``SELECT … FROM (SELECT 1) AS one LEFT JOIN LATERAL (<read>) AS r0 ON true LEFT JOIN LATERAL
(…) AS r1 ON true …``, each read's columns typed as its own statement types them. On SQLite
each read is a statement of its own (SQLite has no ``LATERAL``, and a read there costs no round
trip). Each read gives at most one row (a ``LIMIT 1``, a key, or an aggregate); its parameters
share one namespace: the same name is the same value in every read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, literal_column, select, true
from sqlalchemy.exc import MultipleResultsFound


@dataclass(frozen=True)
class Along:
    """A read of at most one row that may ride with another statement of the transaction (on
    PostgreSQL; see :func:`after`), and ``keep``, which is given the connection and the read's
    row (or ``None``) when it did: its module then answers from it rather than read again."""

    read: Select[Any]
    keep: Callable[[Connection, tuple[Any, ...] | None], None]
    params: Mapping[str, Any] = field(default_factory=dict)


def together(
    conn: Connection, reads: Sequence[Select[Any]], params: Mapping[str, Any]
) -> list[tuple[Any, ...] | None]:
    """Each read's row (its columns' values, as ``conn.execute(read, params).first()`` gives
    them) or ``None`` when it has none, in one statement on PostgreSQL (see the module). A read
    that gives more than one row is ``MultipleResultsFound``, on every database."""
    if conn.dialect.name != "postgresql":
        out: list[tuple[Any, ...] | None] = []
        for read in reads:
            rows = conn.execute(read, dict(params)).fetchmany(2)
            if len(rows) > 1:  # as the one statement finds it on PostgreSQL
                raise MultipleResultsFound(f"a read sent together gave more than one row: {read}")
            out.append(tuple(rows[0]) if rows else None)
        return out
    statement, widths = _together(tuple(reads))
    return _answers(conn.execute(statement, dict(params)).one(), widths)


def after(
    conn: Connection, first: ColumnElement[Any], reads: Sequence[Select[Any]], params: Mapping[str, Any]
) -> tuple[Any, list[tuple[Any, ...] | None]]:
    """``first`` (one value: a scalar subquery, of a data-modifying ``WITH`` clause say) and each
    read's row as :func:`together` gives it, in one statement: PostgreSQL only (SQLite has
    neither ``LATERAL`` nor a write in a ``WITH`` clause)."""
    if conn.dialect.name != "postgresql":
        raise ValueError(f"reads sent after a value need PostgreSQL, not {conn.dialect.name}")
    statement, widths = _after(first, tuple(reads))
    row = conn.execute(statement, dict(params)).one()
    return row[-1], _answers(row, widths)


@lru_cache(maxsize=16)  # one a statement and its reads
def _after(first: ColumnElement[Any], reads: tuple[Select[Any], ...]) -> tuple[Select[Any], list[int]]:
    statement, widths = _together(reads)
    return statement.add_columns(first.label("_first")), widths


def _answers(row: Sequence[Any], widths: list[int]) -> list[tuple[Any, ...] | None]:
    answers: list[tuple[Any, ...] | None] = []
    at = 0
    for width in widths:
        found, values = row[at], tuple(row[at + 1 : at + 1 + width])
        answers.append(values if found else None)
        at += 1 + width
    return answers


@lru_cache(maxsize=64)  # one a mix of reads
def _together(reads: tuple[Select[Any], ...]) -> tuple[Select[Any], list[int]]:
    """The statement of :func:`together` and each read's number of columns: each read a
    ``LATERAL`` subquery with a first column saying whether it found its row."""
    one = select(literal_column("1").label("one")).subquery("one")
    joined: Any = one
    columns: list[Any] = []
    widths: list[int] = []
    for k, read in enumerate(reads):
        widths.append(len(read.selected_columns))
        marked = read.add_columns(literal_column("true").label("_found")).lateral(f"r{k}")
        joined = joined.join(marked, true(), isouter=True)
        sub = list(marked.c)
        columns += [sub[-1], *sub[:-1]]
    return select(*columns).select_from(joined), widths
