"""What can go wrong when building or reading a portrait, with stable codes."""

from __future__ import annotations

from creditfactory.errors import Conflict, InvalidInput, NotFound


class PortraitNotFound(NotFound):
    """Nobody built the portrait (or the targets) for that as-of date in this lake."""

    code = "portrait_not_found"
    title = "Portrait not built"


class NoDataAtAsOf(InvalidInput):
    """The lake holds nothing the portrait could be built from at that as-of date."""

    code = "portrait_no_data"
    title = "No data at the as-of date"


class MissingTables(InvalidInput):
    """The lake lacks tables the portrait cannot do without."""

    code = "portrait_missing_tables"
    title = "Lake tables missing"


class UnknownEngine(InvalidInput):
    code = "portrait_unknown_engine"
    title = "Unknown engine"


class EngineUnavailable(Conflict):
    """The engine was asked for but cannot run here (PySpark or Java missing)."""

    code = "portrait_engine_unavailable"
    title = "Engine unavailable"


class CustomerNotInPortrait(NotFound):
    code = "portrait_customer_not_found"
    title = "Customer not in the portrait"
