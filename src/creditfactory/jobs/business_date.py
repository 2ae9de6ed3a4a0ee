"""The business date is data: one row, advanced only by the end-of-day close."""

from __future__ import annotations

import weakref
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from creditfactory.clock import Clock
from creditfactory.db import reference
from creditfactory.db.reads import Along
from creditfactory.db.uow import flush_pending
from creditfactory.errors import Conflict, DomainError
from creditfactory.jobs.store import BusinessDateRow

DEFAULT = "default"


class BusinessDateNotOpen(DomainError):
    code = "business_date_not_open"
    http_status = 409
    title = "Business date not open"


def current_business_date(session: Session, *, name: str = DEFAULT) -> date:
    """The open business date: one column read on the session's connection (asked by every
    request that writes; the row itself is loaded only where it changes). The reference data's
    stamp comes with it, noted for the transaction (:mod:`creditfactory.db.reference`). A read
    sent with the transaction's first statement (:func:`business_date_ahead`) answers the first
    ask instead, unless the session holds a business date not yet written or the transaction
    has opened or moved one since."""
    pending = flush_pending(session, BusinessDateRow)  # a date opened or moved here, not yet written
    conn = session.connection()
    held = conn.info.pop(_HELD, None)
    if held is not None and not pending and held[0]() is conn.get_transaction() and held[1] == name:
        on = held[2]  # its stamp was noted when it was read
    else:
        on, stamp = conn.execute(_OPEN_DATE, {"name": name}).one()
        reference.note(conn, stamp)
    if on is None:
        raise BusinessDateNotOpen(
            "no business date is open yet; open one with 'creditfactory eod open --date YYYY-MM-DD'"
        )
    return on


#: One row whether a date is open or not: the date (or NULL) and the reference data's stamp.
_OPEN_DATE = select(
    select(BusinessDateRow.business_date).where(BusinessDateRow.name == bindparam("name")).scalar_subquery(),
    reference.STAMP,
)
#: The business date read ahead in the transaction, for its first ask: (the transaction, weakly;
#: the name; the date).
_HELD = "creditfactory.business_date.held"


def business_date_ahead(name: str = DEFAULT) -> Along:
    """The business date's read, to send with the transaction's first statement where that
    statement takes reads along (``command_log.begin``): the date is then known without a round
    trip of its own when :func:`current_business_date` asks for it first."""

    def keep(conn: Connection, row: tuple[Any, ...] | None) -> None:
        if row is None:  # the read gives one row always; without one, the ask reads again
            return
        on, stamp = row
        reference.note(conn, stamp)
        transaction = conn.get_transaction()
        if transaction is not None:
            conn.info[_HELD] = (weakref.ref(transaction), name, on)

    return Along(read=_OPEN_DATE, keep=keep, params={"name": name})


def open_business_date(session: Session, *, on: date, clock: Clock, name: str = DEFAULT) -> date:
    """Open the first business date (once). Opening again on the same date is a no-op."""
    row = session.get(BusinessDateRow, name)
    if row is not None:
        if row.business_date == on:
            return on
        raise Conflict(
            f"business date is already open at {row.business_date.isoformat()}; it moves only by end of day"
        )
    session.add(BusinessDateRow(name=name, business_date=on, last_closed_date=None, updated_at=clock.now()))
    session.flush()
    _forget_held(session)
    return on


def close_and_open(session: Session, *, closing: date, clock: Clock, name: str = DEFAULT) -> date:
    """Close ``closing`` and open the next calendar day (optimistic lock on the row)."""
    row = session.scalars(select(BusinessDateRow).where(BusinessDateRow.name == name)).one()
    if row.business_date != closing:
        raise BusinessDateNotOpen(
            f"cannot close {closing.isoformat()}: the open business date is {row.business_date.isoformat()}"
        )
    row.last_closed_date = closing
    row.business_date = closing + timedelta(days=1)
    row.updated_at = clock.now()
    session.flush()
    _forget_held(session)
    return row.business_date


def _forget_held(session: Session) -> None:
    """A date read ahead is not the date once the transaction has written another."""
    session.connection().info.pop(_HELD, None)
