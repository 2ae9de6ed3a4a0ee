"""The composition root: ``build(settings) -> Container``.

The only place that reads :class:`~creditfactory.config.Settings` and wires the engine, the
session factory, the clock, the PII vault, the token signer and the lake. The API, the CLI and
the tests all call :func:`build`; nothing is created at import time anywhere else.

It is also where the domains' reactions are composed: :func:`register_eod_steps` puts every
domain's end-of-day steps in the one registry ``eod run`` reads, and :func:`register_handlers`
subscribes the domains' outbox handlers (servicing opens the credit line of an accepted
contract). :func:`build` calls both.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from creditfactory.clock import Clock, SystemClock
from creditfactory.config import Settings
from creditfactory.db import migrate
from creditfactory.db.engine import create_engine, session_factory
from creditfactory.db.uow import UnitOfWork
from creditfactory.decisioning.online import OnlineDecider
from creditfactory.events import Dispatcher
from creditfactory.jobs import EodStep, registry
from creditfactory.origination.ports import ApplicationDecider, ProductCatalogue
from creditfactory.security.bank_tokens import BankTokenConfig, BankTokenVerifier
from creditfactory.security.pii import PiiVault, load_or_create_key
from creditfactory.security.tokens import TokenSigner
from creditfactory.servicing.catalogue import ServicingCatalogue


@dataclass
class Container:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    vault: PiiVault
    tokens: TokenSigner
    dispatcher: Dispatcher
    catalogue: ProductCatalogue = field(default_factory=ServicingCatalogue)
    """Loan products as origination sees them (served from servicing's products)."""
    bank_tokens: BankTokenVerifier | None = None
    """Verifier of the bank's own customer tokens, when configured."""
    decider: ApplicationDecider | None = None
    """Decides an application when it is submitted (decisioning's engine behind origination's port)."""

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def lake_dir(self) -> Path:
        return self.settings.resolved_lake_dir

    @property
    def models_dir(self) -> Path:
        """Registered model versions (``models/<name>/v<n>/``)."""
        return self.settings.data_dir / "models"

    @property
    def reject_dir(self) -> Path:
        return self.settings.data_dir / "rejects"

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def close(self) -> None:
        self.engine.dispose()


def _pii_key(settings: Settings) -> bytes:
    if settings.security.pii_key is not None:
        try:
            key = base64.b64decode(settings.security.pii_key.get_secret_value(), validate=True)
        except ValueError:
            raise ValueError("CREDITFACTORY_SECURITY__PII_KEY is not valid base64") from None
        if len(key) != 32:
            raise ValueError("CREDITFACTORY_SECURITY__PII_KEY must decode to 32 bytes")
        return key
    return load_or_create_key(settings.resolved_pii_key_file)


def _bank_tokens(settings: Settings, clock: Clock) -> BankTokenVerifier | None:
    cfg = settings.security.bank_token
    if cfg.algorithm is None:
        return None
    if cfg.key is not None:
        key = cfg.key.get_secret_value()
    elif cfg.key_file is not None:
        key = cfg.key_file.read_text(encoding="utf-8")
    else:
        raise ValueError(
            "CREDITFACTORY_SECURITY__BANK_TOKEN__ALGORITHM is set but neither KEY nor KEY_FILE is"
        )
    return BankTokenVerifier(
        BankTokenConfig(
            algorithm=cfg.algorithm,
            key=key,
            issuer=cfg.issuer,
            audience=cfg.audience,
            customer_claim=cfg.customer_claim,
            leeway=timedelta(seconds=cfg.leeway_seconds),
        ),
        clock,
    )


def register_eod_steps() -> list[EodStep]:
    """Register the end-of-day steps of every domain, and return the full ordered list.

    The single place that says what ``eod run`` does; registering again is a no-op. In order:
    servicing's accrual, due/overdue marking with days past due and penalty interest, overdue
    customers leaving the whitelist, classification, line expiry; origination's expired approvals;
    the whitelist's expired offers; the reconciliation of loans and lines with the journal; the
    trial balance.
    """
    from creditfactory.origination import jobs as origination_jobs
    from creditfactory.servicing import jobs as servicing_jobs
    from creditfactory.servicing import reconcile
    from creditfactory.whitelist import jobs as whitelist_jobs

    servicing_jobs.register()
    origination_jobs.register()
    whitelist_jobs.register()
    reconcile.register_step()
    return registry.steps()


def register_handlers(container: Container) -> None:
    """Subscribe the domains' outbox handlers on the container's dispatcher (once per container)."""
    from creditfactory.origination import events as origination_events
    from creditfactory.servicing import handlers as servicing_handlers

    container.dispatcher.register_in_transaction(
        origination_events.CONTRACT_ACCEPTED,
        servicing_handlers.LineOpener(container.clock),
    )


def build(settings: Settings, *, clock: Clock | None = None, upgrade: bool = True) -> Container:
    """Wire the system. With ``upgrade`` the database schema is migrated to head first."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    if upgrade and not migrate.is_current(engine):
        migrate.upgrade(engine)
    clock = clock or SystemClock()
    key = _pii_key(settings)
    secret = (
        settings.security.token_secret.get_secret_value().encode()
        if settings.security.token_secret is not None
        else hashlib.sha256(b"creditfactory-tokens" + key).digest()
    )
    sessions = session_factory(engine)
    decider = (
        OnlineDecider(lake=settings.resolved_lake_dir, models_dir=settings.data_dir / "models")
        if settings.decide_on_submit
        else None
    )
    container = Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        clock=clock,
        vault=PiiVault(key),
        tokens=TokenSigner(secret, clock, ttl=timedelta(seconds=settings.security.token_ttl_seconds)),
        dispatcher=Dispatcher(sessions, clock),
        catalogue=ServicingCatalogue(),
        bank_tokens=_bank_tokens(settings, clock),
        decider=decider,
    )
    register_eod_steps()
    register_handlers(container)
    return container
