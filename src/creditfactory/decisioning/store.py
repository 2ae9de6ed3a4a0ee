"""Tables of the decision facts and the queries the gatherers run.

* ``decisioning_seen`` — every application the engine has seen: when, who (tokens only), from
  which device, IP and place, and the outcome once known. Each velocity count is one range scan
  of a ``(key, applied_at)`` index.
* ``decisioning_graph_node`` / ``decisioning_graph_edge`` — the relationship graph. A node is
  ``(kind, key)``: a person (ID-number token), a phone (token), a device (fingerprint), an IP
  address or an address (token), with its flags (on the negative list, declined, defaulted),
  its degree and the day it was first seen. An edge links a person to an attribute and is kept
  in both directions, clustered by ``(src_id, dst_id, kind)`` (a ``WITHOUT ROWID`` table on
  SQLite), so one hop of a search is one range scan per node.
* ``decisioning_graph_build`` — the bulk builds: when, from which lake, what they produced.

Queries use SQLAlchemy Core (no ORM identity map on the hot path).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from creditfactory.db.base import Base, json_rows
from creditfactory.db.types import ScaledInt, UTCDateTime, enum_column
from creditfactory.decisioning.model import WINDOWS, Applicant, EdgeKind, NodeKind, Outcome

_ID = BigInteger().with_variant(Integer, "sqlite")

seen = Table(
    "decisioning_seen",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("application_ref", String(64), nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
    Column("business_date", Date(), nullable=False),
    Column("customer_id", String(20)),
    Column("id_number_token", String(64), nullable=False),
    Column("phone_token", String(64), nullable=False),
    Column("device_fingerprint", String(64)),
    Column("ip_address", String(45)),
    Column("address_token", String(64)),
    Column("contact_tokens", Text()),
    Column("lat", Float()),
    Column("lon", Float()),
    Column("is_emulator", Boolean(), nullable=False),
    Column("is_rooted", Boolean(), nullable=False),
    Column("declared_income", ScaledInt(2)),
    Column("outcome", enum_column(Outcome, 16)),
    Column("outcome_at", UTCDateTime()),
    UniqueConstraint("application_ref"),
    Index("ix_decisioning_seen_id_at", "id_number_token", "applied_at"),
    Index("ix_decisioning_seen_phone_at", "phone_token", "applied_at"),
    Index("ix_decisioning_seen_device_at", "device_fingerprint", "applied_at", "id_number_token"),
    Index("ix_decisioning_seen_ip_at", "ip_address", "applied_at"),
)

node = Table(
    "decisioning_graph_node",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(64), nullable=False),
    Column("customer_id", String(20)),
    Column("negative", Boolean(), nullable=False),
    Column("declined", Boolean(), nullable=False),
    Column("defaulted", Boolean(), nullable=False),
    Column("degree", Integer(), nullable=False),
    Column("first_seen_date", Date()),
    Index("ix_decisioning_graph_node_key_kind", "key", "kind", unique=True),
    Index("ix_decisioning_graph_node_customer_id", "customer_id"),
)

edge = Table(
    "decisioning_graph_edge",
    Base.metadata,
    Column("src_id", BigInteger(), nullable=False),
    Column("dst_id", BigInteger(), nullable=False),
    Column("kind", String(16), nullable=False),
    PrimaryKeyConstraint("src_id", "dst_id", "kind"),
    sqlite_with_rowid=False,
)

build_log = Table(
    "decisioning_graph_build",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("lake", String(500), nullable=False),
    Column("nodes", BigInteger(), nullable=False),
    Column("edges", BigInteger(), nullable=False),
    Column("seconds", Float(), nullable=False),
    Column("summary", Text(), nullable=False),
)

NODE_COLUMNS = (
    "id",
    "kind",
    "key",
    "customer_id",
    "negative",
    "declined",
    "defaulted",
    "degree",
    "first_seen_date",
)
EDGE_COLUMNS = ("src_id", "dst_id", "kind")

#: Rows per IN list.
CHUNK = 500


def _insert(conn: Connection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# ------------------------------------------------------------------ seen applications


def add_seen(
    conn: Connection,
    *,
    applicant: Applicant,
    application_ref: str,
    outcome: Outcome | None = None,
    outcome_at: datetime | None = None,
) -> bool:
    """Record an application (with its outcome when already known); ``False`` (and nothing
    written) when the reference is already there."""
    row = _seen_row(applicant, application_ref, outcome, outcome_at)
    return conn.execute(_ADD_SEEN[conn.dialect.name], row).first() is not None


def _seen_row(
    applicant: Applicant, application_ref: str, outcome: Outcome | None, outcome_at: datetime | None
) -> dict[str, Any]:
    contacts = [[c.phone_token, c.relation] for c in applicant.contacts]
    return {
        "application_ref": application_ref,
        "applied_at": applicant.applied_at,
        "business_date": applicant.business_date,
        "customer_id": applicant.customer_id,
        "id_number_token": applicant.id_number_token,
        "phone_token": applicant.phone_token,
        "device_fingerprint": applicant.device_fingerprint,
        "ip_address": applicant.ip_address,
        "address_token": applicant.address_token,
        "contact_tokens": json.dumps(contacts) if contacts else None,
        "lat": applicant.lat,
        "lon": applicant.lon,
        "is_emulator": applicant.is_emulator,
        "is_rooted": applicant.is_rooted,
        "declared_income": applicant.declared_annual_income,
        "outcome": outcome,
        "outcome_at": outcome_at,
    }


_ADD_SEEN = {
    name: dialect.insert(seen).on_conflict_do_nothing(index_elements=["application_ref"]).returning(seen.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def get_seen(conn: Connection, *, application_ref: str) -> Mapping[str, Any] | None:
    return conn.execute(select(seen).where(seen.c.application_ref == application_ref)).mappings().first()


@dataclass(frozen=True, slots=True)
class SeenRef:
    id_number_token: str
    customer_id: str | None
    business_date: date


def save_outcome(conn: Connection, *, application_ref: str, outcome: Outcome, at: datetime) -> SeenRef | None:
    """Set an application's outcome; returns who applied (``None`` when the reference is unknown)."""
    row = conn.execute(
        update(seen)
        .where(seen.c.application_ref == application_ref)
        .values(outcome=outcome, outcome_at=at)
        .returning(seen.c.id_number_token, seen.c.customer_id, seen.c.business_date)
    ).first()
    return None if row is None else SeenRef(str(row[0]), row[1], row[2])


def ever_declined(conn: Connection, *, id_number_token: str) -> bool:
    """Whether any application of this ID number stands declined."""
    stmt = (
        select(seen.c.id)
        .where(seen.c.id_number_token == id_number_token, seen.c.outcome == Outcome.DECLINE)
        .limit(1)
    )
    return conn.execute(stmt).first() is not None


def _velocity_parts() -> list[str]:
    """The velocity counts as ``SELECT k, <a count per window>`` parts of a ``UNION ALL``: one row
    per key (``id``, ``phone``, ``device``, ``ip``) and one for the other people of the device.
    The first part names the columns (``k``, ``c0``, …), as a ``UNION`` takes its names from it.

    The text is kept short: psycopg caches its translation of a statement of at most 4,096
    characters, and the neighbourhood's statement, which ends with these, is just under it."""
    windows = list(WINDOWS)
    longest = max(windows, key=lambda w: WINDOWS[w])
    parts = []
    for name, column in (
        ("id", "id_number_token"),
        ("phone", "phone_token"),
        ("device", "device_fingerprint"),
        ("ip", "ip_address"),
    ):
        first = not parts
        # the longest window is the statement's own range
        sums = ", ".join(
            ("COUNT(*)" if w == longest else f"COUNT(*) FILTER (WHERE applied_at >= :start_{w})")
            + (f" AS c{i}" if first else "")
            for i, w in enumerate(windows)
        )
        parts.append(
            f"SELECT '{name}'{' AS k' if first else ''}, {sums} FROM {seen.name} "
            f"WHERE {column} = :{name} AND applied_at >= :start_{longest} AND applied_at < :at"
        )
    zeros = ", 0" * (len(windows) - 1)
    parts.append(
        f"SELECT 'device_people', COUNT(DISTINCT id_number_token){zeros} FROM {seen.name} "
        f"WHERE device_fingerprint = :device AND applied_at >= :start_{longest} AND applied_at < :at "
        "AND id_number_token <> :id"
    )
    return parts


def _velocity_times() -> list[Any]:
    return [bindparam("at", type_=UTCDateTime())] + [
        bindparam(f"start_{w}", type_=UTCDateTime()) for w in WINDOWS
    ]


_VELOCITY = text(" UNION ALL ".join(_velocity_parts())).bindparams(*_velocity_times())


def _velocity_keys(applicant: Applicant) -> dict[str, Any]:
    return {
        "id": applicant.id_number_token,
        "phone": applicant.phone_token,
        "device": applicant.device_fingerprint,
        "ip": applicant.ip_address,
    }


def _velocity_params(applicant: Applicant) -> dict[str, Any]:
    t = applicant.applied_at
    return {
        "at": t,
        **_velocity_keys(applicant),
        **{f"start_{w}": t - length for w, length in WINDOWS.items()},
    }


def _velocity_values(applicant: Applicant, rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """The velocity facts from the rows of :func:`_velocity_parts` (``(k, count, ...)``)."""
    keys = _velocity_keys(applicant)
    out: dict[str, Any] = {}
    for row in rows:
        name = row[0]
        if name == "device_people":
            out["device_applicants_30d"] = None if keys["device"] is None else int(row[1])
            continue
        for i, w in enumerate(WINDOWS):
            out[f"apps_per_{name}_{w}"] = None if keys[name] is None else int(row[1 + i])
    return out


def velocity(conn: Connection, applicant: Applicant) -> dict[str, Any]:
    """Earlier applications per key and window (``[applied_at - window, applied_at)``), and other
    people applying from the device in 30 days: one statement, one index range per key (also
    read with the neighbourhood: :func:`neighbourhood`'s ``velocity_of``)."""
    return _velocity_values(applicant, conn.execute(_VELOCITY, _velocity_params(applicant)))


def outcome_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(seen.c.outcome, func.count()).group_by(seen.c.outcome)).all()
    return {str(o) if o is not None else "pending": int(n) for o, n in rows}


def seen_frame(conn: Connection) -> pl.DataFrame:
    """Every seen application's graph attributes (for a bulk build)."""
    rows = conn.execute(
        select(
            seen.c.customer_id,
            seen.c.id_number_token,
            seen.c.phone_token,
            seen.c.device_fingerprint,
            seen.c.ip_address,
            seen.c.address_token,
            seen.c.contact_tokens,
            seen.c.business_date,
            seen.c.outcome,
        ).order_by(seen.c.id)
    ).all()
    return pl.DataFrame(
        [tuple(r[:-1]) + (None if r[-1] is None else str(r[-1]),) for r in rows],
        schema={
            "customer_id": pl.String,
            "id_number_token": pl.String,
            "phone_token": pl.String,
            "device_fingerprint": pl.String,
            "ip_address": pl.String,
            "address_token": pl.String,
            "contact_tokens": pl.String,
            "business_date": pl.Date,
            "outcome": pl.String,
        },
        orient="row",
    )


# ------------------------------------------------------------------ graph reads


class NodeRow(tuple[int, str, str, "str | None", bool, bool, bool, int, "date | None"]):
    """A node as read: ``(id, kind, key, customer_id, negative, declined, defaulted, degree,
    first_seen_date)`` with its fields by name. A plain tuple, made from the result row's typed
    values without a Python call: a decision reads about a hundred of them."""

    __slots__ = ()
    id = property(itemgetter(0))
    kind = property(itemgetter(1))
    key = property(itemgetter(2))
    customer_id = property(itemgetter(3))
    negative = property(itemgetter(4))
    declined = property(itemgetter(5))
    defaulted = property(itemgetter(6))
    degree = property(itemgetter(7))
    first_seen_date = property(itemgetter(8))


_NODE_SELECT = (
    node.c.id,
    node.c.kind,
    node.c.key,
    node.c.customer_id,
    node.c.negative,
    node.c.declined,
    node.c.defaulted,
    node.c.degree,
    node.c.first_seen_date,
)
_NODE_COLS = (
    "n.id, n.kind, n.key, n.customer_id, n.negative, n.declined, n.defaulted, n.degree, n.first_seen_date"
)


def _node_columns() -> tuple[Column[Any], ...]:
    """The typed result of a node (``_NODE_COLS``), fresh for each statement that returns one."""
    return (
        Column("id", BigInteger()),
        Column("kind", String()),
        Column("key", String()),
        Column("customer_id", String()),
        Column("negative", Boolean()),
        Column("declined", Boolean()),
        Column("defaulted", Boolean()),
        Column("degree", Integer()),
        Column("first_seen_date", Date()),
    )


_NODES_BY_KEY = (
    text(f"SELECT {_NODE_COLS} FROM {node.name} n WHERE n.key IN :keys")
    .bindparams(bindparam("keys", expanding=True))
    .columns(*_node_columns())
)


def nodes_by_key(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], NodeRow]:
    """The nodes among ``(kind, key)`` pairs that exist (one look-up of the ``(key, kind)`` index)."""
    wanted = set(keys)
    if not wanted:
        return {}
    out: dict[tuple[str, str], NodeRow] = {}
    values = sorted({k for _, k in wanted})
    for i in range(0, len(values), CHUNK):
        for r in conn.execute(_NODES_BY_KEY, {"keys": values[i : i + CHUNK]}):
            if (r[1], r[2]) in wanted:
                out[(r[1], r[2])] = NodeRow(r)
    return out


def nodes_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, NodeRow]:
    out: dict[int, NodeRow] = {}
    wanted = sorted(set(ids))
    for i in range(0, len(wanted), CHUNK):
        for r in conn.execute(select(*_NODE_SELECT).where(node.c.id.in_(wanted[i : i + CHUNK]))):
            out[r[0]] = NodeRow(r)
    return out


class Link(tuple[int, int, str, NodeRow]):
    """An edge as read, ``(src, dst, kind, target)``: the node it leads to is ``target``."""

    __slots__ = ()
    src = property(itemgetter(0))
    dst = property(itemgetter(1))
    kind = property(itemgetter(2))
    target = property(itemgetter(3))


def _link_columns() -> tuple[Column[Any], ...]:
    """The typed result of a link: the edge, then the node it leads to."""
    return (
        Column("src_id", BigInteger()),
        Column("dst_id", BigInteger()),
        Column("edge_kind", String()),
        *_node_columns(),
    )


_LINKS = (
    text(
        f"SELECT e.src_id, e.dst_id, e.kind AS edge_kind, {_NODE_COLS} FROM {edge.name} e "
        f"JOIN {node.name} n ON n.id = e.dst_id WHERE e.src_id IN :ids"
    )
    .bindparams(bindparam("ids", expanding=True))
    .columns(*_link_columns())
)


def links(conn: Connection, ids: Iterable[int]) -> list[Link]:
    """Edges out of ``ids`` with the nodes they lead to (one range scan of the edge key per id)."""
    wanted = sorted(set(ids))
    out: list[Link] = []
    for i in range(0, len(wanted), CHUNK):
        for r in conn.execute(_LINKS, {"ids": wanted[i : i + CHUNK]}):
            out.append(Link((r[0], r[1], r[2], NodeRow(r[3:]))))
    return out


_NEIGHBOURHOODS: dict[tuple[int, int, bool], Any] = {}
#: A neighbourhood row's columns: the level, the link (``_link_columns``), and with the velocity
#: one count per window (``NULL`` on the neighbourhood's rows).
_LEVEL, _NODE = 0, slice(4, 13)


def _neighbourhood_sql(seeds: int, levels: int, velocity: bool = False) -> Any:
    """One statement for an applicant's neighbourhood, ``levels`` hops deep.

    ``p0`` is the applicant's person node, ``s1`` the nodes of the application's attributes;
    level 1 is every link of ``p0``; level k+1 every link of the nodes reached at level k (and,
    for k = 1, of ``s1``) that have at most ``:cap`` links. Row ``lvl = 0`` gives the start
    nodes themselves. Rows come ordered by level and stop at ``:limit``.

    With ``velocity`` the applicant's velocity counts come in the same answer, after the
    neighbourhood's rows and outside its limit: rows ``lvl = -1``, the count's key in
    ``edge_kind`` and one count per window in the columns after the node's.
    """
    key = (seeds, levels, velocity)
    if key in _NEIGHBOURHOODS:
        return _NEIGHBOURHOODS[key]
    e, n = edge.name, node.name
    match = " OR ".join(f"(key = :k{i} AND kind = :t{i})" for i in range(seeds)) or "1 = 0"
    # Each level's links carry the node they lead to, looked up once by its id: the next level's
    # sources are filtered on the degree it carries, and the answer is the levels as they are.
    # Joins, not IN (subquery) or OR: PostgreSQL then estimates each level from the one before
    # and walks the indexes instead of scanning the tables.
    cols = _NODE_COLS.replace("n.", "")
    link = f"e.src_id, e.dst_id, e.kind AS edge_kind, {_NODE_COLS}"
    ctes = [
        f"p0 AS (SELECT {cols} FROM {n} WHERE key = :person AND kind = 'person')",
        f"s1 AS (SELECT {cols} FROM {n} WHERE {match})",
        f"l1 AS (SELECT {link} FROM p0 JOIN {e} e ON e.src_id = p0.id JOIN {n} n ON n.id = e.dst_id)",
        "g1 AS (SELECT id FROM l1 WHERE degree <= :cap UNION SELECT id FROM s1 WHERE degree <= :cap)",
    ]
    for k in range(2, levels + 1):
        ctes.append(
            f"l{k} AS (SELECT {link} FROM g{k - 1} g JOIN {e} e ON e.src_id = g.id "
            f"JOIN {n} n ON n.id = e.dst_id)"
        )
        if k < levels:
            ctes.append(f"g{k} AS (SELECT DISTINCT id FROM l{k} WHERE degree <= :cap)")
    parts = ["SELECT 0 AS lvl, NULL, NULL, NULL, z.* FROM (SELECT * FROM p0 UNION SELECT * FROM s1) z"]
    for k in range(1, levels + 1):
        parts.append(f"SELECT {k} AS lvl, l.* FROM l{k} l")
    near = f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS x ORDER BY lvl LIMIT :limit"
    result: list[Column[Any]] = [Column("lvl", Integer()), *_link_columns()]
    if not velocity:
        stmt = text(f"WITH {', '.join(ctes)} {near}").columns(*result)
    else:
        no_node = ", ".join("NULL" for _ in range(_NODE.stop - _NODE.start))
        windows = ", ".join(f"v.c{i}" for i in range(len(WINDOWS)))
        counted = f"SELECT -1, NULL, NULL, v.k, {no_node}, {windows} FROM ({' UNION ALL '.join(_velocity_parts())}) AS v"
        no_counts = ", ".join("CAST(NULL AS BIGINT)" for _ in WINDOWS)
        stmt = (
            text(f"WITH {', '.join(ctes)} SELECT y.*, {no_counts} FROM ({near}) AS y UNION ALL {counted}")
            .bindparams(*_velocity_times())
            .columns(*result, *(Column(f"v_{w}", BigInteger()) for w in WINDOWS))
        )
    _NEIGHBOURHOODS[key] = stmt
    return stmt


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    start: dict[tuple[str, str], NodeRow]
    levels: list[list[Link]]
    complete: bool
    velocity: dict[str, Any] | None = None  # read with it (``velocity_of``): as :func:`velocity`


def neighbourhood(
    conn: Connection,
    *,
    person_key: str,
    seeds: Sequence[tuple[str, str]],
    levels: int,
    cap: int,
    limit: int,
    velocity_of: Applicant | None = None,
) -> Neighbourhood:
    """The start nodes (the person and the ``seeds`` that exist) and the links found level by
    level, in one round trip; ``complete`` is false when ``limit`` rows cut the answer. With
    ``velocity_of`` the applicant's velocity counts come in the same round trip."""
    params: dict[str, Any] = {"person": person_key, "cap": cap, "limit": limit + 1}
    for i, (kind, key) in enumerate(seeds):
        params[f"k{i}"] = key
        params[f"t{i}"] = kind
    if velocity_of is not None:
        params.update(_velocity_params(velocity_of))
    start: dict[tuple[str, str], NodeRow] = {}
    found: list[list[Link]] = [[] for _ in range(levels)]
    rows = conn.execute(_neighbourhood_sql(len(seeds), levels, velocity_of is not None), params).all()
    counts = []
    if velocity_of is not None:
        # in level order whatever order the database appended the two answers in
        near = sorted((r for r in rows if r[_LEVEL] >= 0), key=itemgetter(_LEVEL))
        counts = [(r[3], *r[_NODE.stop :]) for r in rows if r[_LEVEL] < 0]
        rows = near
    for r in rows[:limit]:
        target = NodeRow(r[_NODE])
        if r[0] == 0:
            start[(target[1], target[2])] = target
        else:
            found[r[0] - 1].append(Link((r[1], r[2], r[3], target)))
    return Neighbourhood(
        start=start,
        levels=found,
        complete=len(rows) <= limit,
        velocity=None if velocity_of is None else _velocity_values(velocity_of, counts),
    )


def graph_counts(conn: Connection) -> tuple[dict[str, int], dict[str, int]]:
    """Nodes by kind and (undirected) edges by kind."""
    nodes = {k: int(n) for k, n in conn.execute(select(node.c.kind, func.count()).group_by(node.c.kind))}
    edges = {k: int(n) // 2 for k, n in conn.execute(select(edge.c.kind, func.count()).group_by(edge.c.kind))}
    return nodes, edges


def last_build(conn: Connection) -> Mapping[str, Any] | None:
    return conn.execute(select(build_log).order_by(build_log.c.id.desc()).limit(1)).mappings().first()


# ------------------------------------------------------------------ graph writes (one application)


def _upsert_nodes(dialect: str) -> Any:
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(node)
    new_day = ins.excluded.first_seen_date
    return ins.on_conflict_do_update(
        index_elements=["key", "kind"],
        set_={
            # first seen moves back, never forward; a person node keeps its first customer id
            "first_seen_date": case(
                (
                    and_(
                        new_day.is_not(None),
                        or_(node.c.first_seen_date.is_(None), new_day < node.c.first_seen_date),
                    ),
                    new_day,
                ),
                else_=node.c.first_seen_date,
            ),
            "customer_id": func.coalesce(node.c.customer_id, ins.excluded.customer_id),
            # a flag given is set; one not given is left as it is
            "declined": or_(node.c.declined, ins.excluded.declined),
        },
    ).returning(*_NODE_SELECT)


def _upsert_nodes_pg_sql(prefix: str = "", only_if: str = "", before: str = "", after: str = "") -> str:
    """The nodes' upsert on PostgreSQL with its rows in one JSON parameter, ``{prefix}rows``
    (``db.base.json_rows`` of ``kind``, ``key``, ``customer_id``, ``declined`` and
    ``first_seen_date``, see :func:`_node_rows`): one statement text whatever the number of
    rows, so that the server prepares it once. ``only_if`` is a condition on the rows; ``before`` are ``WITH`` clauses that go first,
    ``after`` a ``SELECT`` of more rows of the same columns.

    A node is written only when the upsert changes it: when it is new, when its first seen
    date moves back, when it gets its customer id, or when it becomes declined. An application
    mostly brings nodes the graph holds already and changes none of them; rewriting them would
    write a new version of each row (a new index entry in every index of the table when its
    page is full) and leave the old one for vacuum, at every application that shares a phone,
    a device or an IP address. ``ON CONFLICT DO UPDATE … WHERE`` still locks the rows it leaves
    as they are (the lock order :func:`add_edges` relies on), but returns only the rows it
    writes: the others are read in the same statement, as the statement's snapshot has them
    (a change another transaction committed while the upsert waited for the row does not
    show), and :func:`_read_missing` reads any node that a transaction created and committed
    after that snapshot. Each of those is read by its key (a ``LATERAL`` look-up, ``LIMIT 1``):
    the planner takes a set-returning function for a hundred rows, and joined to the table it
    would rather scan the whole table than look a hundred keys up."""
    p = prefix
    rows = (
        f"json_to_recordset(CAST(:{p}rows AS JSON))"
        " AS r(kind VARCHAR, key VARCHAR, customer_id VARCHAR, declined BOOLEAN, first_seen_date DATE)"
    )
    when = f"WHERE {only_if}" if only_if else ""
    also = f"AND {only_if}" if only_if else ""
    return f"""
    WITH {before + ", " if before else ""}up AS (
        INSERT INTO {node.name} AS n (kind, key, customer_id, negative, declined, defaulted, degree, first_seen_date)
        SELECT kind, key, customer_id, false, declined, false, 0, first_seen_date FROM {rows}
        {when}
        ON CONFLICT (key, kind) DO UPDATE SET
            first_seen_date = CASE
                WHEN excluded.first_seen_date IS NOT NULL
                     AND (n.first_seen_date IS NULL OR excluded.first_seen_date < n.first_seen_date)
                THEN excluded.first_seen_date ELSE n.first_seen_date END,
            customer_id = coalesce(n.customer_id, excluded.customer_id),
            declined = n.declined OR excluded.declined
        WHERE (excluded.first_seen_date IS NOT NULL
               AND (n.first_seen_date IS NULL OR excluded.first_seen_date < n.first_seen_date))
           OR (n.customer_id IS NULL AND excluded.customer_id IS NOT NULL)
           OR (excluded.declined AND NOT n.declined)
        RETURNING {_NODE_COLS}
    )
    SELECT * FROM up
    UNION ALL
    SELECT {_NODE_COLS} FROM json_to_recordset(CAST(:{p}rows AS JSON)) AS w(kind VARCHAR, key VARCHAR)
    CROSS JOIN LATERAL (
        SELECT {_NODE_COLS} FROM {node.name} n WHERE n.key = w.key AND n.kind = w.kind LIMIT 1
    ) AS n
    WHERE n.id NOT IN (SELECT id FROM up) {also}
    {"UNION ALL " + after if after else ""}
    """


_READ_NODES = (
    select(*_NODE_SELECT)
    .where(
        tuple_(node.c.key, node.c.kind).in_(bindparam("keys", expanding=True)),
    )
    .order_by(node.c.key, node.c.kind)
)


def _read_missing(
    conn: Connection, wanted: Sequence[tuple[str, str]], out: dict[tuple[str, str], NodeRow]
) -> dict[tuple[str, str], NodeRow]:
    """Add to ``out`` the wanted nodes it lacks (none, mostly: no statement then), read in a
    statement of their own: nodes that another transaction added after the upsert's snapshot,
    and that the upsert, waiting for that transaction, found committed and then locked as they
    were (see :func:`_upsert_nodes_pg_sql`). A statement of its own has a snapshot that sees
    them."""
    if len(out) >= len(wanted):
        return out
    missing = sorted((key, kind) for kind, key in wanted if (kind, key) not in out)
    for i in range(0, len(missing), CHUNK):
        for r in conn.execute(_READ_NODES, {"keys": missing[i : i + CHUNK]}):
            found = NodeRow(r)
            out[(found.kind, found.key)] = found
    return out


_UPSERT_NODES_PG = text(_upsert_nodes_pg_sql()).columns(*_node_columns())
#: PostgreSQL: the links inserted and both ends' degree raised by the links actually added, in
#: one statement. The ends' rows are already locked by this transaction (the upsert of the nodes
#: just before, in key order), so raising their degree waits on no one. The ends are found by
#: their ids as one array (``= ANY``), an index look-up whatever the planner makes of the rows'
#: number: joined to the links added, which it takes for a hundred, its generic plan scanned
#: the whole node table.
_LINK_EDGES_PG = text(
    f"""
    WITH added AS (
        INSERT INTO {edge.name} (src_id, dst_id, kind)
        SELECT * FROM json_to_recordset(CAST(:rows AS JSON)) AS r(src_id BIGINT, dst_id BIGINT, kind VARCHAR)
        ON CONFLICT (src_id, dst_id, kind) DO NOTHING
        RETURNING src_id
    ), raised AS (
        UPDATE {node.name} AS n SET degree = n.degree + (SELECT count(*) FROM added WHERE added.src_id = n.id)
        WHERE n.id = ANY (ARRAY(SELECT src_id FROM added))
        RETURNING n.id
    )
    SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM raised)
    """
)


def _link_edges(dialect: str) -> Any:
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(edge)
    return ins.on_conflict_do_nothing(index_elements=["src_id", "dst_id", "kind"]).returning(edge.c.src_id)


# Built once: a statement given its rows as parameters (``executemany``, which SQLAlchemy sends as
# one multi-row INSERT … RETURNING) is compiled once, where rows in ``.values()`` are not.
_UPSERT_NODES = {d: _upsert_nodes(d) for d in ("postgresql", "sqlite")}
_LINK_EDGES = {d: _link_edges(d) for d in ("postgresql", "sqlite")}
_BUMP_DEGREE = (
    update(node).where(node.c.id == bindparam("node_id")).values(degree=node.c.degree + bindparam("n"))
)


def ensure_nodes(
    conn: Connection,
    wanted: Mapping[tuple[str, str], date | None],
    *,
    customer_id: str | None = None,
    person_declined: bool = False,
) -> dict[tuple[str, str], NodeRow]:
    """Create the missing nodes among ``(kind, key) -> first seen``, move ``first_seen_date``
    back where it is later than given, and return every wanted node.

    One statement (``INSERT … ON CONFLICT (key, kind) DO UPDATE … WHERE``, see
    :func:`_upsert_nodes_pg_sql`), and one more in the rare case that another writer committed
    a wanted node while it waited: a concurrent writer that creates the same node first wins
    quietly and the node comes back either way. ``customer_id`` goes on the person node when it
    has none yet; ``person_declined`` sets the person node's ``declined`` flag (it is never
    cleared here). On PostgreSQL a node this call leaves as it is comes back as the statement's
    snapshot has it: another transaction's change committed while the call waited for the row
    (a degree raised, a flag set) may not show. The callers use the nodes' ids."""
    if not wanted:
        return {}
    ordered = sorted(wanted, key=lambda k: (k[1], k[0]))  # one lock order for every writer
    out: dict[tuple[str, str], NodeRow] = {}
    if conn.dialect.name == "postgresql":
        for i in range(0, len(ordered), CHUNK):
            part = ordered[i : i + CHUNK]
            params = {"rows": _node_rows(part, wanted, customer_id, person_declined)}
            for r in conn.execute(_UPSERT_NODES_PG, params):
                found = NodeRow(r)
                out[(found.kind, found.key)] = found
        return _read_missing(conn, ordered, out)
    rows = [
        {
            "kind": kind,
            "key": key,
            "customer_id": customer_id if kind == NodeKind.PERSON else None,
            "negative": False,
            "declined": person_declined and kind == NodeKind.PERSON,
            "defaulted": False,
            "degree": 0,
            "first_seen_date": wanted[(kind, key)],
        }
        for kind, key in ordered
    ]
    for i in range(0, len(rows), CHUNK):
        for r in conn.execute(_UPSERT_NODES[conn.dialect.name], rows[i : i + CHUNK]):
            found = NodeRow(r)
            out[(found.kind, found.key)] = found
    return out


def _node_rows(
    ordered: Sequence[tuple[str, str]],
    wanted: Mapping[tuple[str, str], date | None],
    customer_id: str | None,
    person_declined: bool,
) -> str:
    """The rows of :func:`_upsert_nodes_pg_sql`, in the lock order given: the customer id and
    the declined flag go on the person node only."""
    return json_rows(
        [
            {
                "kind": kind,
                "key": key,
                "customer_id": customer_id if kind == NodeKind.PERSON else None,
                "declined": person_declined and kind == NodeKind.PERSON,
                "first_seen_date": wanted[(kind, key)],
            }
            for kind, key in ordered
        ]
    )


#: The kind of the row that says the seen row was written (no node has an empty kind).
_SEEN_WRITTEN = ""


def _seen_then_nodes_pg() -> Any:
    """PostgreSQL: the seen row's insert (``ON CONFLICT (application_ref) DO NOTHING``) and the
    nodes' upsert in one statement; the nodes are written, and returned, only when the seen row
    was. The seen row's values go through their columns' types, as in :data:`_ADD_SEEN`; the
    nodes' rows are the parameter ``node_rows``."""
    columns = [c for c in seen.columns if c.name != "id"]
    names = ", ".join(c.name for c in columns)
    values = ", ".join(f":{c.name}" for c in columns)
    return (
        text(
            _upsert_nodes_pg_sql(
                "node_",
                "EXISTS (SELECT 1 FROM s)",
                f"s AS (INSERT INTO {seen.name} ({names}) VALUES ({values}) "
                "ON CONFLICT (application_ref) DO NOTHING RETURNING id)",
                # one row more, of no node (an empty kind), when the seen row was written
                f"SELECT s.id, '{_SEEN_WRITTEN}', '', NULL, false, false, false, 0, NULL FROM s",
            )
        )
        .bindparams(*(bindparam(c.name, type_=c.type) for c in columns))
        .columns(*_node_columns())
    )


_SEEN_THEN_NODES_PG = _seen_then_nodes_pg()


def add_seen_and_nodes(
    conn: Connection,
    *,
    applicant: Applicant,
    application_ref: str,
    outcome: Outcome | None,
    outcome_at: datetime | None,
    wanted: Mapping[tuple[str, str], date | None],
    person_declined: bool = False,
) -> dict[tuple[str, str], NodeRow] | None:
    """:func:`add_seen`, then :func:`ensure_nodes` of ``wanted`` (the applicant's person node
    and attribute nodes) when the seen row was new; ``None``, and nothing written, when the
    reference was seen already. One statement on PostgreSQL (and one more when another writer
    committed a wanted node meanwhile, see :func:`ensure_nodes`), two on SQLite."""
    if conn.dialect.name != "postgresql" or not wanted or len(wanted) > CHUNK:
        if not add_seen(
            conn, applicant=applicant, application_ref=application_ref, outcome=outcome, outcome_at=outcome_at
        ):
            return None
        return ensure_nodes(conn, wanted, customer_id=applicant.customer_id, person_declined=person_declined)
    ordered = sorted(wanted, key=lambda k: (k[1], k[0]))  # the lock order of ensure_nodes
    params = _seen_row(applicant, application_ref, outcome, outcome_at)
    params["node_rows"] = _node_rows(ordered, wanted, applicant.customer_id, person_declined)
    out: dict[tuple[str, str], NodeRow] = {}
    written = False
    for r in conn.execute(_SEEN_THEN_NODES_PG, params):
        found = NodeRow(r)
        if found.kind == _SEEN_WRITTEN:
            written = True
        else:
            out[(found.kind, found.key)] = found
    if not written:  # the seen row was there already: nothing written
        return None
    return _read_missing(conn, ordered, out)  # nodes committed meanwhile by another writer (rare)


def add_edges(conn: Connection, pairs: Iterable[tuple[int, int, str]]) -> int:
    """Link ``(person id, attribute id, kind)`` in both directions where not linked yet, and
    raise both ends' degree by the links actually added. Returns the links added.

    The caller has locked both ends first, in key order (:func:`ensure_nodes` in the same
    transaction, as :func:`graph.add_applicant` does): on PostgreSQL the degrees are raised in
    the order the join gives, which would otherwise let two writers deadlock."""
    rows = {(a, b, k) for a, b, k in pairs} | {(b, a, k) for a, b, k in pairs}
    if not rows:
        return 0
    values = [{"src_id": a, "dst_id": b, "kind": k} for a, b, k in sorted(rows)]
    if conn.dialect.name == "postgresql":
        added_rows = conn.execute(_LINK_EDGES_PG, {"rows": json_rows(values)}).one()[0]
        return int(added_rows) // 2
    added = conn.execute(_LINK_EDGES[conn.dialect.name], values).all()
    bump: dict[int, int] = {}
    for (src,) in added:
        bump[int(src)] = bump.get(int(src), 0) + 1
    if bump:
        conn.execute(_BUMP_DEGREE, [{"node_id": node_id, "n": n} for node_id, n in sorted(bump.items())])
    return len(added) // 2


FLAGS = ("negative", "declined", "defaulted")


def save_flag(conn: Connection, *, flag: str, ids: Iterable[int], value: bool = True) -> int:
    """Set (or clear) ``negative``, ``declined`` or ``defaulted`` on nodes; returns the nodes changed."""
    if flag not in FLAGS:
        raise ValueError(f"unknown node flag {flag!r}")
    wanted = sorted(set(ids))
    done = 0
    for i in range(0, len(wanted), CHUNK):
        done += conn.execute(_SAVE_FLAG[flag], {"ids": wanted[i : i + CHUNK], "value": value}).rowcount
    return done


_SAVE_FLAG = {
    flag: update(node)
    .where(node.c.id.in_(bindparam("ids", expanding=True)), node.c[flag] != bindparam("value"))
    .values({flag: bindparam("value")})
    for flag in FLAGS
}


def clear_person_flag(conn: Connection, *, flag: str, id_number_token: str) -> int:
    """Clear a flag on a person's node (one UPDATE by the ``(key, kind)`` index); returns the
    nodes changed (0 when the person is not in the graph or the flag is not set)."""
    if flag not in FLAGS:
        raise ValueError(f"unknown node flag {flag!r}")
    return conn.execute(
        update(node)
        .where(node.c.key == id_number_token, node.c.kind == NodeKind.PERSON.value, node.c[flag].is_(True))
        .values({flag: False})
    ).rowcount


def list_flagged_people(conn: Connection, *, flag: str) -> list[str]:
    """Keys (ID-number tokens) of the people carrying a flag."""
    if flag not in FLAGS:
        raise ValueError(f"unknown node flag {flag!r}")
    return list(
        conn.scalars(select(node.c.key).where(node.c.kind == NodeKind.PERSON, node.c[flag].is_(True)))
    )


def defaulted_customers(conn: Connection) -> set[str]:
    """Customer ids of the people flagged defaulted."""
    stmt = select(node.c.customer_id).where(
        node.c.kind == NodeKind.PERSON, node.c.defaulted.is_(True), node.c.customer_id.is_not(None)
    )
    return {str(c) for c in conn.scalars(stmt)}


def person_ids_of_customers(conn: Connection, customer_ids: Iterable[str]) -> list[int]:
    wanted = sorted(set(customer_ids))
    out: list[int] = []
    for i in range(0, len(wanted), CHUNK):
        out += [
            int(r[0])
            for r in conn.execute(
                select(node.c.id).where(
                    node.c.kind == NodeKind.PERSON, node.c.customer_id.in_(wanted[i : i + CHUNK])
                )
            )
        ]
    return out


# ------------------------------------------------------------------ graph writes (bulk)


def clear_graph(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"TRUNCATE {edge.name}, {node.name}"))
    else:
        conn.execute(delete(edge))
        conn.execute(delete(node))


def _sqlite_rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    cast = [
        pl.col(c).cast(pl.String)
        if dt == pl.Date
        else (pl.col(c).cast(pl.Int8) if dt == pl.Boolean else pl.col(c))
        for c, dt in frame.schema.items()
    ]
    return frame.select(cast).rows()


def write_frame(
    conn: Connection,
    table: Table,
    frame: pl.DataFrame,
    *,
    chunk: int = 200_000,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Append a frame to a table: ``COPY`` on PostgreSQL, the driver's ``executemany`` on SQLite.
    ``on_chunk(rows written so far)`` is called after each chunk."""
    if frame.is_empty():
        return 0
    names = frame.columns
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            for start in range(0, frame.height, chunk):
                buf = io.BytesIO()
                frame.slice(start, chunk).write_csv(buf, include_header=False, null_value="")
                cols = ", ".join(f'"{n}"' for n in names)
                with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN WITH (FORMAT csv)') as copy:
                    copy.write(buf.getvalue())
                if on_chunk:
                    on_chunk(min(start + chunk, frame.height))
        return frame.height
    cols = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join("?" for _ in names)
    sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})'
    for start in range(0, frame.height, chunk):
        conn.exec_driver_sql(sql, _sqlite_rows(frame.slice(start, chunk)))
        if on_chunk:
            on_chunk(min(start + chunk, frame.height))
    return frame.height


def drop_indexes(conn: Connection) -> None:
    """Drop the graph's secondary indexes (and PostgreSQL's edge key) before a bulk load: building
    them once afterwards is several times faster than maintaining them row by row."""
    for index in sorted(node.indexes, key=lambda i: str(i.name)):
        index.drop(conn)
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ALTER TABLE {edge.name} DROP CONSTRAINT pk_{edge.name}"))


def create_indexes(conn: Connection) -> None:
    """Build again what :func:`drop_indexes` dropped, exactly as the schema declares it (on
    PostgreSQL with more sort memory than its default 64 MB, for this transaction only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
    for index in sorted(node.indexes, key=lambda i: str(i.name)):
        index.create(conn)
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(f"ALTER TABLE {edge.name} ADD CONSTRAINT pk_{edge.name} PRIMARY KEY (src_id, dst_id, kind)")
        )


def after_bulk(conn: Connection) -> None:
    """Move PostgreSQL's id sequence past the ids a bulk build wrote and refresh the planner's
    statistics; SQLite needs neither (its next rowid follows the largest)."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{node.name}', 'id'), "
            f"COALESCE((SELECT max(id) FROM {node.name}), 0) + 1, false)"
        )
    )
    conn.execute(text(f"ANALYZE {node.name}"))
    conn.execute(text(f"ANALYZE {edge.name}"))


def add_build(
    conn: Connection,
    *,
    started_at: datetime,
    finished_at: datetime,
    lake: str,
    nodes: int,
    edges: int,
    seconds: float,
    summary: dict[str, Any],
) -> int:
    result = conn.execute(
        build_log.insert()
        .values(
            started_at=started_at,
            finished_at=finished_at,
            lake=lake,
            nodes=nodes,
            edges=edges,
            seconds=seconds,
            summary=json.dumps(summary, sort_keys=True),
        )
        .returning(build_log.c.id)
    )
    return int(result.scalar_one())


def read_nodes(conn: Connection) -> pl.DataFrame:
    """The whole node table as a frame (analysis and tests)."""
    rows = conn.execute(select(*_NODE_SELECT).order_by(node.c.id)).all()
    return pl.DataFrame(
        [tuple(r) for r in rows],
        schema={
            "id": pl.Int64,
            "kind": pl.String,
            "key": pl.String,
            "customer_id": pl.String,
            "negative": pl.Boolean,
            "declined": pl.Boolean,
            "defaulted": pl.Boolean,
            "degree": pl.Int64,
            "first_seen_date": pl.Date,
        },
        orient="row",
    )


def read_edges(conn: Connection) -> pl.DataFrame:
    """The whole edge table as a frame (both directions)."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        buf = io.BytesIO()
        with raw.cursor() as cur:
            with cur.copy(
                f"COPY (SELECT src_id, dst_id, kind FROM {edge.name}) TO STDOUT WITH (FORMAT csv)"
            ) as copy:
                for data in copy:
                    buf.write(data)
        buf.seek(0)
        return (
            pl.read_csv(
                buf,
                has_header=False,
                new_columns=list(EDGE_COLUMNS),
                schema_overrides={"src_id": pl.Int64, "dst_id": pl.Int64, "kind": pl.String},
            )
            if buf.getbuffer().nbytes
            else pl.DataFrame(schema={"src_id": pl.Int64, "dst_id": pl.Int64, "kind": pl.String})
        )
    rows = conn.execute(select(edge.c.src_id, edge.c.dst_id, edge.c.kind)).all()
    return pl.DataFrame(
        [tuple(r) for r in rows],
        schema={"src_id": pl.Int64, "dst_id": pl.Int64, "kind": pl.String},
        orient="row",
    )


__all__ = [
    "EDGE_COLUMNS",
    "NODE_COLUMNS",
    "EdgeKind",
    "Link",
    "NodeKind",
    "NodeRow",
    "add_build",
    "defaulted_customers",
    "add_edges",
    "add_seen",
    "add_seen_and_nodes",
    "after_bulk",
    "build_log",
    "clear_graph",
    "clear_person_flag",
    "edge",
    "ensure_nodes",
    "get_seen",
    "graph_counts",
    "last_build",
    "links",
    "FLAGS",
    "SeenRef",
    "ever_declined",
    "list_flagged_people",
    "save_flag",
    "node",
    "nodes_by_id",
    "nodes_by_key",
    "outcome_counts",
    "person_ids_of_customers",
    "read_edges",
    "read_nodes",
    "save_outcome",
    "seen",
    "seen_frame",
    "velocity",
    "write_frame",
]
