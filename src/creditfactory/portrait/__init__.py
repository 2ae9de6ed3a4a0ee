"""The customer portrait: point-in-time features of every customer, built from the lake.

``build(lake, as_of=...)`` computes one row per customer known at the as-of date from the
feature catalogue (:data:`FEATURES`) and publishes it to ``LAKE/portrait/as_of=<date>/``;
``build_targets`` does the same for the outcome (``bad_12m``) in ``LAKE/portrait_target/``.
``read``, ``read_targets``, ``schema`` and ``available`` give them back. See ``docs/portrait.md``.
"""

from creditfactory.portrait.errors import (
    CustomerNotInPortrait,
    EngineUnavailable,
    MissingTables,
    NoDataAtAsOf,
    PortraitNotFound,
    UnknownEngine,
)
from creditfactory.portrait.features import COLUMNS, FEATURES, KEY_COLUMNS, POLICY_FACTS, SOURCES
from creditfactory.portrait.model import Agg, AggKind, ColumnDef, DType, FeatureDef, Source
from creditfactory.portrait.service import (
    REQUIRED_TABLES,
    BuildResult,
    TargetResult,
    available,
    build,
    build_targets,
    customer,
    files,
    manifest,
    read,
    read_targets,
    schema,
    targets_available,
)

__all__ = [
    "COLUMNS",
    "FEATURES",
    "KEY_COLUMNS",
    "POLICY_FACTS",
    "REQUIRED_TABLES",
    "SOURCES",
    "Agg",
    "AggKind",
    "BuildResult",
    "ColumnDef",
    "CustomerNotInPortrait",
    "DType",
    "EngineUnavailable",
    "FeatureDef",
    "MissingTables",
    "NoDataAtAsOf",
    "PortraitNotFound",
    "Source",
    "TargetResult",
    "UnknownEngine",
    "available",
    "build",
    "build_targets",
    "customer",
    "files",
    "manifest",
    "read",
    "read_targets",
    "schema",
    "targets_available",
]
