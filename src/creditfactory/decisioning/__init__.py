"""Decisioning: the facts a decision is made from.

Anti-fraud on the person and the device (velocity, shared devices, emulator and rooted flags,
distance from home), the relationship graph around the applicant (hops to the negative list,
group size, declined and defaulted neighbours) and the cross-checks of declared income. See
``docs/decisioning.md``.

``gather(uow, applicant=..., portrait_row=..., settings=...)`` returns every fact of
``fact_schema()`` with timings; ``record_seen`` and ``add_applicant`` remember the application
in the same transaction as its decision; ``build_graph`` rebuilds the graph from the lake.
"""

from creditfactory.decisioning.facts import FACTS, FactDef, fact_schema
from creditfactory.decisioning.model import (
    GROUP_EDGES,
    Applicant,
    Contact,
    EdgeKind,
    Facts,
    FactSettings,
    InvalidApplicant,
    NodeKind,
    Outcome,
    haversine_km,
    income_facts,
)
from creditfactory.decisioning.service import (
    ApplicationNotSeen,
    GraphBuild,
    GraphInputMissing,
    add_applicant,
    build_graph,
    gather,
    graph_frames,
    graph_reach,
    graph_status,
    mark_defaulted,
    measure_reach,
    record_outcome,
    record_seen,
    remember_application,
)

__all__ = [
    "FACTS",
    "GROUP_EDGES",
    "Applicant",
    "ApplicationNotSeen",
    "Contact",
    "EdgeKind",
    "FactDef",
    "FactSettings",
    "Facts",
    "GraphBuild",
    "GraphInputMissing",
    "InvalidApplicant",
    "NodeKind",
    "Outcome",
    "add_applicant",
    "build_graph",
    "fact_schema",
    "gather",
    "graph_frames",
    "graph_reach",
    "graph_status",
    "haversine_km",
    "income_facts",
    "mark_defaulted",
    "measure_reach",
    "record_outcome",
    "record_seen",
    "remember_application",
]
