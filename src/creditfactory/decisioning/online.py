"""The decision on submission: origination's :class:`~creditfactory.origination.ApplicationDecider`
port, implemented with the decision engine and wired by the composition root."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from creditfactory.db.uow import UnitOfWork
from creditfactory.decisioning.engine import DecisionEngine, NoChampionStrategy
from creditfactory.decisioning.model import FactSettings

log = logging.getLogger("creditfactory.decisioning")


class OnlineDecider:
    """Decides an application right after it is submitted, inside the submission's transaction.

    With no champion strategy published the application stays ``submitted`` (nothing is written);
    any other error fails the submission, so that an application is never half-decided."""

    def __init__(self, *, lake: Path, models_dir: Path, facts: FactSettings | None = None) -> None:
        self.engine = DecisionEngine(lake=lake, models_dir=models_dir, facts=facts)

    def __call__(self, uow: UnitOfWork, *, application_id: int, now: datetime) -> None:
        try:  # raised before anything is written
            self.engine.decide(uow, application_id=application_id, now=now)
        except NoChampionStrategy:
            log.info("application %s left submitted: no decision strategy is published", application_id)
