"""Unit of work: one request, one command, one batch chunk = one transaction.

Services receive a :class:`UnitOfWork`, use ``uow.session`` and ``flush()``; only the boundary
(an API request, a CLI command, a job chunk) calls :meth:`UnitOfWork.commit`. Leaving the block
without a commit rolls back.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy.orm import Session, sessionmaker

from creditfactory.db.append_only import LastWrite, carried, commit_with


def flush_pending(session: Session, *types: type) -> bool:
    """Before a read of rows of ``types`` on the session's connection: write the session if it
    holds a new or changed row of one of them, as an ORM query's autoflush would; otherwise the
    session's other pending rows wait for their own flush instead of paying one here. Whether it
    held one."""
    if any(isinstance(row, types) for row in (*session.new, *session.dirty)):
        session.flush()
        return True
    return False


class UnitOfWork:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._session: Session | None = None
        self._kept: list[Any] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._session

    def __enter__(self) -> Self:
        self._session = self._factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        try:
            self._session.rollback()
        finally:
            self._session.close()
            self._session = None
            self._kept.clear()

    def keep(self, obj: Any) -> None:
        """Hold ``obj`` until the unit of work ends. The session's identity map holds loaded
        objects weakly: a row a use case loads and lets go is read again by the next
        ``session.get`` of the same request; kept, it comes from the identity map (refreshed
        from the database only when expired, as after a rollback)."""
        self._kept.append(obj)

    def flush(self) -> None:
        self.session.flush()

    def commit(self, last: LastWrite | None = None) -> None:
        """Commit; with ``last``, an ``UPDATE`` the commit's own flush writes as well (on
        PostgreSQL in one statement with the rows only ever added: see
        :func:`creditfactory.db.append_only.commit_with`)."""
        if last is None and not carried(self.session):
            self.session.commit()
        else:  # a refused write rolls the transaction back: nothing is committed without it
            commit_with(self.session, last)

    def rollback(self) -> None:
        self.session.rollback()
