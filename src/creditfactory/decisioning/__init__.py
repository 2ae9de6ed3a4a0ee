"""Decisioning: the automated decision on an application, and the facts it is made from.

``decide_application(uow, application_id=..., lake=..., models_dir=..., clock=...)`` decides a
submitted application with the published champion strategy (and a challenger for its share of
applicants), stores the decision records and moves the application through origination;
``publish_strategy`` publishes a decision strategy file; ``get_decision`` and
``decisions_of_application`` read the records; replay and back-test are in
:mod:`.replay` and :mod:`.backtest`.

Anti-fraud on the person and the device (velocity, shared devices, emulator and rooted flags,
distance from home), the relationship graph around the applicant (hops to the negative list,
group size, declined and defaulted neighbours) and the cross-checks of declared income. See
``docs/decisioning.md``.

``gather(uow, applicant=..., portrait_row=..., settings=...)`` returns every fact of
``fact_schema()`` with timings; ``record_seen`` and ``add_applicant`` remember the application
in the same transaction as its decision; ``build_graph`` rebuilds the graph from the lake.
"""

from creditfactory.decisioning.engine import (
    CHALLENGER,
    CHAMPION,
    LIVE,
    SHADOW,
    ApplicationNotDecidable,
    DecisionEngine,
    DecisionNotFound,
    DecisionView,
    NoChampionStrategy,
    NotADecisionStrategy,
    PublishedStrategy,
    bucket,
    decide_application,
    decision_schema,
    decisions_of_application,
    get_decision,
    in_challenger,
    list_decisions,
    list_strategies,
    publish_strategy,
    retire_challenger,
)
from creditfactory.decisioning.evaluate import APPLICATION_FIELDS, NEW_TO_BANK, Terms, Verdict, evaluate
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
    remember_decided,
)

__all__ = [
    "APPLICATION_FIELDS",
    "CHALLENGER",
    "CHAMPION",
    "FACTS",
    "LIVE",
    "NEW_TO_BANK",
    "SHADOW",
    "ApplicationNotDecidable",
    "DecisionEngine",
    "DecisionNotFound",
    "DecisionView",
    "NoChampionStrategy",
    "NotADecisionStrategy",
    "PublishedStrategy",
    "Terms",
    "Verdict",
    "bucket",
    "decide_application",
    "decision_schema",
    "decisions_of_application",
    "evaluate",
    "get_decision",
    "in_challenger",
    "list_decisions",
    "list_strategies",
    "publish_strategy",
    "retire_challenger",
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
    "remember_decided",
]
