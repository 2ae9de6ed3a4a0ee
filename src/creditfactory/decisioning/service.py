"""Use cases of the decision facts: gather them for an application, remember what was seen,
keep the relationship graph (in bulk from the lake, one application at a time after that).

Services take a :class:`~creditfactory.db.uow.UnitOfWork` and never commit: the decision that
calls :func:`gather`, :func:`record_seen` and :func:`add_applicant` commits them together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from creditfactory import contract
from creditfactory.clock import Clock
from creditfactory.db.uow import UnitOfWork
from creditfactory.decisioning import bulk, graph, store
from creditfactory.decisioning.facts import FACTS
from creditfactory.decisioning.model import (
    Applicant,
    Facts,
    FactSettings,
    InvalidApplicant,
    NodeKind,
    Outcome,
    distance_km,
    income_facts,
)
from creditfactory.errors import InvalidInput, NotFound

#: ``progress(stage, done, total)`` of a bulk build.
Progress = Callable[[str, int, int], None]


class GraphInputMissing(InvalidInput):
    code = "graph_input_missing"
    title = "The lake lacks a table the graph is built from"


class ApplicationNotSeen(NotFound):
    code = "application_not_seen"
    title = "No such application among those seen"


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def gather(
    uow: UnitOfWork,
    *,
    applicant: Applicant,
    portrait_row: dict[str, Any] | None,
    settings: FactSettings | None = None,
) -> Facts:
    """Every fact of :func:`~creditfactory.decisioning.facts.fact_schema` for one application,
    with the time each gatherer took. Reads only; the portrait row (as of the portrait date)
    is the caller's, ``None`` when the applicant has none."""
    if not isinstance(applicant, Applicant):
        raise InvalidApplicant(f"gather needs an Applicant, got {type(applicant).__name__}")
    settings = settings or FactSettings()
    started = time.perf_counter()
    conn = uow.session.connection()
    values: dict[str, Any] = {}
    timings: dict[str, float] = {}

    # the velocity counts come with the graph's neighbourhood, in one round trip: "velocity"
    # times that read, "graph" the search on what it brought
    t = time.perf_counter()
    near = graph.neighbourhood(conn, applicant, settings, velocity=True)
    assert near.velocity is not None
    values.update(near.velocity)
    timings["velocity"] = _ms(t)

    t = time.perf_counter()
    home = (
        contract.customer_home(uow, customer_id=applicant.customer_id)
        if applicant.customer_id is not None
        else None
    )
    values["customer_known"] = home is not None
    values["phone_matches_customer"] = None if home is None else home.phone_token == applicant.phone_token
    values["id_matches_customer"] = (
        None if home is None else home.id_number_token == applicant.id_number_token
    )
    values["location_given"] = applicant.has_location
    values["distance_home_branch_km"] = (
        None if home is None else distance_km(applicant.lat, applicant.lon, home.branch_lat, home.branch_lon)
    )
    values["distance_home_km"] = (
        None if home is None else distance_km(applicant.lat, applicant.lon, home.lat, home.lon)
    )
    timings["customer"] = _ms(t)

    t = time.perf_counter()
    found = graph.search(conn, applicant, settings, near)
    values.update(found.values)
    values["device_is_emulator"] = applicant.is_emulator
    values["device_is_rooted"] = applicant.is_rooted
    values["device_shared_people"] = found.device_people
    first_seen = None if found.device is None else found.device.first_seen_date
    values["device_first_seen_date"] = first_seen
    values["device_age_days"] = None if first_seen is None else (applicant.business_date - first_seen).days
    values["device_negative"] = (
        None
        if applicant.device_fingerprint is None
        else bool(found.device is not None and found.device.negative)
    )
    timings["graph"] = _ms(t)

    t = time.perf_counter()
    values.update(income_facts(applicant.declared_annual_income, portrait_row, factor=settings.income_factor))
    timings["income"] = _ms(t)
    timings["total"] = _ms(started)
    return Facts(values={f.name: values[f.name] for f in FACTS}, timings_ms=timings)


def _check_ref(application_ref: str) -> None:
    if not isinstance(application_ref, str) or not 1 <= len(application_ref) <= 64:
        raise InvalidInput(f"an application reference is 1 to 64 characters, got {application_ref!r}")


def record_seen(uow: UnitOfWork, *, applicant: Applicant, application_ref: str) -> bool:
    """Remember an application for the velocity counts (in the decision's transaction).
    Recording the same reference again changes nothing and returns ``False``."""
    _check_ref(application_ref)
    inserted = store.add_seen(uow.session.connection(), applicant=applicant, application_ref=application_ref)
    uow.flush()
    return inserted


def record_outcome(uow: UnitOfWork, *, application_ref: str, outcome: Outcome | str, at: datetime) -> None:
    """Set a seen application's outcome. A person with a declined application is marked in the
    graph (and unmarked when the last decline is overturned), so that the people linked to them
    see it in ``graph_declined_neighbours``; the graph then says what a rebuild would say."""
    outcome = Outcome(outcome)
    conn = uow.session.connection()
    who = store.save_outcome(conn, application_ref=application_ref, outcome=outcome, at=at)
    if who is None:
        raise ApplicationNotSeen(
            f"application {application_ref} has not been seen", application_ref=application_ref
        )
    key = (NodeKind.PERSON.value, who.id_number_token)
    # this application's decline was just saved: no need to ask whether there was one
    if outcome is Outcome.DECLINE or store.ever_declined(conn, id_number_token=who.id_number_token):
        person = store.ensure_nodes(conn, {key: who.business_date}, customer_id=who.customer_id)[key]
        store.save_flag(conn, flag="declined", ids=[person.id], value=True)
    else:
        store.clear_person_flag(conn, flag="declined", id_number_token=who.id_number_token)


def add_applicant(uow: UnitOfWork, *, applicant: Applicant) -> graph.Added:
    """Add an application to the relationship graph (after its facts were gathered)."""
    return graph.add_applicant(uow.session.connection(), applicant)


def remember_application(uow: UnitOfWork, *, applicant: Applicant, application_ref: str) -> bool:
    """:func:`record_seen` and :func:`add_applicant` together, as a decision does after gathering
    its facts; ``False`` when the reference was seen already (the graph is left as it is)."""
    if not record_seen(uow, applicant=applicant, application_ref=application_ref):
        return False
    add_applicant(uow, applicant=applicant)
    return True


def remember_decided(
    uow: UnitOfWork, *, applicant: Applicant, application_ref: str, outcome: Outcome | str, at: datetime
) -> bool:
    """:func:`remember_application` and :func:`record_outcome` together, for an application
    decided when it is first seen, as a decision does after gathering its facts: the seen row is
    written with its outcome, and a decline marks the person's node in the same write that adds
    the node. A person's ``declined`` flag already says whether an application of
    theirs stands declined, so a new one that is not declined leaves it as it is. A reference
    seen already gets its outcome only (as :func:`record_outcome`) and returns ``False``."""
    outcome = Outcome(outcome)
    _check_ref(application_ref)
    conn = uow.session.connection()
    nodes = store.add_seen_and_nodes(  # one statement on PostgreSQL
        conn,
        applicant=applicant,
        application_ref=application_ref,
        outcome=outcome,
        outcome_at=at,
        wanted=graph.wanted_nodes(applicant),
        person_declined=outcome is Outcome.DECLINE,
    )
    if nodes is None:
        record_outcome(uow, application_ref=application_ref, outcome=outcome, at=at)
        return False
    graph.link_applicant(conn, applicant, nodes)
    return True


def mark_defaulted(uow: UnitOfWork, *, customer_ids: list[str]) -> int:
    """Flag customers who defaulted (e.g. from servicing's classification); returns the people
    marked."""
    conn = uow.session.connection()
    return store.save_flag(conn, flag="defaulted", ids=store.person_ids_of_customers(conn, customer_ids))


# ------------------------------------------------------------------ the graph in bulk


@dataclass(frozen=True, slots=True)
class GraphBuild:
    build_id: int
    lake: Path
    nodes: int
    edges: int
    seconds: float
    stage_seconds: dict[str, float]
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "lake": str(self.lake),
            "nodes": self.nodes,
            "edges": self.edges,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            **{k: v for k, v in self.summary.items() if k not in ("nodes", "edges")},
        }


def _scan(lake: Path, table: str) -> pl.LazyFrame | None:
    try:
        return contract.scan(lake, table)
    except FileNotFoundError:
        return None


def graph_inputs(uow: UnitOfWork, *, lake: Path) -> bulk.Inputs:
    """The lake tables (and seen applications) a bulk build reads."""
    customers = _scan(lake, "customers")
    if customers is None:
        raise GraphInputMissing(
            f"the lake at {lake} has no customers; ingest the bank's extracts first", lake=str(lake)
        )
    return bulk.Inputs(
        customers=customers,
        devices=_scan(lake, "devices"),
        contacts=_scan(lake, "contacts"),
        negative_list=_scan(lake, "negative_list"),
        loans=_scan(lake, "loans"),
        loan_performance=_scan(lake, "loan_performance"),
        seen=store.seen_frame(uow.session.connection()),
        defaulted_people=tuple(store.list_flagged_people(uow.session.connection(), flag="defaulted")),
    )


def build_graph(
    uow: UnitOfWork,
    *,
    lake: Path,
    clock: Clock,
    settings: FactSettings | None = None,
    progress: Progress | None = None,
) -> GraphBuild:
    """Rebuild the relationship graph from the lake's customers, devices, contacts, negative
    list and loans, plus every application seen so far, in the unit of work's transaction
    (readers keep the old graph until the boundary commits)."""
    settings = settings or FactSettings()
    started_at = clock.now()
    t0 = time.perf_counter()
    stages: dict[str, float] = {}

    def step(name: str, done: int, total: int) -> None:
        if progress is not None:
            progress(name, done, total)

    step("read lake", 0, 1)
    t = time.perf_counter()
    nodes, edges = bulk.graph_frames(graph_inputs(uow, lake=lake))
    stages["frames"] = time.perf_counter() - t
    conn = uow.session.connection()

    t = time.perf_counter()
    store.clear_graph(conn)
    store.drop_indexes(conn)
    stages["clear"] = time.perf_counter() - t
    t = time.perf_counter()
    step("write nodes", 0, nodes.height)
    store.write_frame(conn, store.node, nodes, on_chunk=lambda n: step("write nodes", n, nodes.height))
    stages["write nodes"] = time.perf_counter() - t
    t = time.perf_counter()
    step("write edges", 0, edges.height)
    store.write_frame(conn, store.edge, edges, on_chunk=lambda n: step("write edges", n, edges.height))
    stages["write edges"] = time.perf_counter() - t
    t = time.perf_counter()
    step("index", 0, 1)
    store.create_indexes(conn)
    stages["index"] = time.perf_counter() - t
    t = time.perf_counter()
    store.after_bulk(conn)
    stages["statistics"] = time.perf_counter() - t

    step("analyse", 0, 1)
    t = time.perf_counter()
    summary = bulk.summarise(nodes, edges, settings)
    stages["analyse"] = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    build_id = store.add_build(
        conn,
        started_at=started_at,
        finished_at=clock.now(),
        lake=str(lake),
        nodes=nodes.height,
        edges=edges.height // 2,
        seconds=seconds,
        summary=summary,
    )
    step("analyse", 1, 1)
    uow.flush()
    return GraphBuild(
        build_id=build_id,
        lake=lake,
        nodes=nodes.height,
        edges=edges.height // 2,
        seconds=seconds,
        stage_seconds=stages,
        summary=summary,
    )


def graph_status(uow: UnitOfWork) -> dict[str, Any]:
    """The graph as it stands (nodes and edges by kind) and its last bulk build."""
    conn = uow.session.connection()
    nodes, edges = store.graph_counts(conn)
    last = store.last_build(conn)
    return {
        "nodes_by_kind": nodes,
        "edges_by_kind": edges,
        "last_build": None
        if last is None
        else {
            "id": last["id"],
            "finished_at": last["finished_at"].isoformat(),
            "lake": last["lake"],
            "nodes": last["nodes"],
            "edges": last["edges"],
            "seconds": last["seconds"],
        },
        "applications": store.outcome_counts(conn),
    }


def graph_frames(uow: UnitOfWork) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The stored graph as frames (nodes; edges in both directions)."""
    conn = uow.session.connection()
    return store.read_nodes(conn), store.read_edges(conn)


def graph_reach(uow: UnitOfWork, *, settings: FactSettings | None = None) -> pl.DataFrame:
    """For every person in the stored graph: ``hops_to_negative`` and ``group_size`` under the
    online search's rules (see :func:`bulk.reach`)."""
    nodes, edges = graph_frames(uow)
    return bulk.reach(nodes, edges, settings or FactSettings())


def measure_reach(
    uow: UnitOfWork, *, labels: pl.DataFrame, settings: FactSettings | None = None
) -> dict[str, Any]:
    """How labelled customers (``customer_id``, ``label``, optional ``stratum``: e.g. known
    fraud-ring members) sit in the graph against everyone else (see :func:`bulk.measure`)."""
    settings = settings or FactSettings()
    return bulk.measure(graph_reach(uow, settings=settings), labels, max_hops=settings.max_hops)
