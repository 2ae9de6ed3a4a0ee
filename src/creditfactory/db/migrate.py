"""Alembic migrations, run programmatically (``creditfactory db upgrade``) or by the app's start.

The migration environment lives in ``db/migrations``; version files are date-named
(``YYYY-MM-DD_<slug>.py``). Batch mode is on for SQLite so that ALTERs work there too.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

from creditfactory.db.base import Base

#: Modules that declare tables; imported so that ``Base.metadata`` knows every table.
TABLE_MODULES = (
    "creditfactory.db.command_log",
    "creditfactory.db.reference",
    "creditfactory.events.outbox",
    "creditfactory.security.audit",
    "creditfactory.contract.store",
    "creditfactory.ledger.store",
    "creditfactory.jobs.store",
    "creditfactory.servicing.store",
    "creditfactory.modeling.store",
    "creditfactory.whitelist.store",
    "creditfactory.origination.store",
    "creditfactory.decisioning.store",
    "creditfactory.decisioning.records",
)

MIGRATIONS = Path(__file__).with_name("migrations")


def metadata() -> MetaData:
    for name in TABLE_MODULES:
        import_module(name)
    return Base.metadata


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@cache
def head() -> str | None:
    """The newest revision of the migrations shipped with this code: read once a process (Alembic
    compiles every version file to find it, about 30 ms that every start of the app, every
    command and every container paid)."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def is_current(engine: Engine) -> bool:
    return current(engine) == head()
