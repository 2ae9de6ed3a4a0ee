"""The decision on submission: origination's :class:`~creditfactory.origination.ApplicationDecider`
port, implemented with the decision engine and wired by the composition root."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from creditfactory.db.uow import UnitOfWork
from creditfactory.decisioning.engine import DecisionEngine, NoChampionStrategy
from creditfactory.decisioning.model import FactSettings
from creditfactory.errors import DomainError

log = logging.getLogger("creditfactory.decisioning")


class OnlineDecider:
    """Decides an application right after it is submitted, inside the submission's transaction.

    When the decision cannot be made (no champion strategy published, a model the strategy
    names is not approved, an outcome origination refuses, ...) nothing of it is written: the
    engine asks all of that before its first write, so no savepoint is needed. The application
    stays ``submitted`` for ``creditfactory decision decide`` or a person, and the customer still
    gets their application. An unexpected error fails the submission as a whole."""

    def __init__(self, *, lake: Path, models_dir: Path, facts: FactSettings | None = None) -> None:
        self.engine = DecisionEngine(lake=lake, models_dir=models_dir, facts=facts)

    def warm(self, uow: UnitOfWork) -> list[str]:
        """Make ready what the first decision would otherwise pay for (see
        :meth:`DecisionEngine.warm`); what cannot be made ready now is logged and left to the
        first decision, which then names the problem. Returns what was made ready."""
        try:
            return self.engine.warm(uow)
        except DomainError as exc:
            log.warning("decisions not warmed up: %s (%s)", exc, exc.code)
            return []

    def __call__(self, uow: UnitOfWork, *, application_id: int, now: datetime) -> None:
        try:
            self.engine.decide(uow, application_id=application_id, now=now, view=False, no_savepoint=True)
        except NoChampionStrategy:
            log.info("application %s left submitted: no decision strategy is published", application_id)
        except DomainError as exc:
            log.error("application %s left submitted: %s (%s)", application_id, exc, exc.code)
