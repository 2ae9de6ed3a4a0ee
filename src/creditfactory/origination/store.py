"""Tables of origination: applications, their contacts and transitions, and consents.

Personal data is never stored in clear: ID numbers and phones as keyed tokens (for look-ups
and joins, the same tokens the bank's extracts carry) plus AES-GCM ciphertext; names as
ciphertext only. Amounts are ``BIGINT`` fen and rates ``BIGINT`` at scale 1e-8.

A customer has at most one application in progress: ``in_progress_customer_id`` holds the
customer id while the application is in progress and ``NULL`` afterwards, under a unique
constraint, so that two submissions racing each other cannot both succeed on any database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from creditfactory.db import append_only
from creditfactory.db.append_only import AppendOnly
from creditfactory.db.base import Base, column_defaults, filled, hold, json_rows
from creditfactory.db.types import Money, Rate, UTCDateTime, enum_column
from creditfactory.origination.model import (
    ApplicationStatus,
    Channel,
    ConsentAction,
    ConsentKind,
    Purpose,
    Relation,
)

_ID = BigInteger().with_variant(Integer, "sqlite")


class Application(Base):
    __tablename__ = "origination_application"
    __table_args__ = (
        Index("ix_origination_application_customer", "customer_id", "id"),
        Index("ix_origination_application_status", "status", "id"),
        # a reviewer's view counts the applications sharing each (origination.service.velocity)
        Index("ix_origination_application_id_number", "id_number_token", "submitted_at"),
        Index("ix_origination_application_phone", "phone_token", "submitted_at"),
        Index("ix_origination_application_device", "device_fingerprint", "submitted_at"),
        Index("ix_origination_application_ip", "ip", "submitted_at"),
        Index("ix_origination_application_approval_expiry", "status", "approval_expiry_date"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(20))
    in_progress_customer_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    """The customer id while the application is in progress, ``NULL`` once it is not."""
    status: Mapped[ApplicationStatus] = mapped_column(enum_column(ApplicationStatus, 16))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, 16))
    product_code: Mapped[str] = mapped_column(String(64))
    product_terms: Mapped[str] = mapped_column(Text())
    """JSON: the product's terms when the application was made (bounds, terms, methods, rates)."""
    amount: Mapped[Decimal] = mapped_column(Money)
    term_months: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose, 32))
    repayment_method: Mapped[str] = mapped_column(String(24))
    declared_annual_income: Mapped[Decimal | None] = mapped_column(Money)

    offer_version_id: Mapped[int | None] = mapped_column(BigInteger)
    """The whitelist version whose offer the application was made against (no offer: ``NULL``)."""
    offer_limit: Mapped[Decimal | None] = mapped_column(Money)
    offer_rate: Mapped[Decimal | None] = mapped_column(Rate)
    offer_expiry_date: Mapped[date | None] = mapped_column(Date())

    applicant_name_enc: Mapped[str] = mapped_column(Text())
    id_number_token: Mapped[str] = mapped_column(String(32))
    id_number_enc: Mapped[str] = mapped_column(Text())
    phone_token: Mapped[str] = mapped_column(String(32))
    phone_enc: Mapped[str] = mapped_column(Text())
    birth_date: Mapped[date] = mapped_column(Date())
    sex: Mapped[str] = mapped_column(String(1))
    age: Mapped[int] = mapped_column(Integer)
    """Completed years on the business date of submission, from the ID number."""
    region_code: Mapped[str] = mapped_column(String(6))
    known_customer: Mapped[bool] = mapped_column(Boolean)
    """The bank holds a customer record under this customer id."""
    id_matches_record: Mapped[bool | None] = mapped_column(Boolean)
    phone_matches_record: Mapped[bool | None] = mapped_column(Boolean)
    name_matches_record: Mapped[bool | None] = mapped_column(Boolean)

    device_fingerprint: Mapped[str] = mapped_column(String(128))
    device_os: Mapped[str] = mapped_column(String(32))
    device_model: Mapped[str] = mapped_column(String(64))
    device_is_emulator: Mapped[bool] = mapped_column(Boolean)
    device_is_rooted: Mapped[bool] = mapped_column(Boolean)
    ip: Mapped[str] = mapped_column(String(45))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)

    business_date: Mapped[date] = mapped_column(Date())
    """The business date it was submitted on."""
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_by: Mapped[str] = mapped_column(String(64))

    decision_id: Mapped[str | None] = mapped_column(String(64))
    decision_outcome: Mapped[str | None] = mapped_column(String(16))
    approved_limit: Mapped[Decimal | None] = mapped_column(Money)
    approved_rate: Mapped[Decimal | None] = mapped_column(Rate)
    decision_reasons: Mapped[str | None] = mapped_column(Text())
    """JSON list of the decision's reason codes (for staff)."""
    customer_reasons: Mapped[str | None] = mapped_column(Text())
    """JSON list of ``{"zh": ..., "en": ...}``: what the customer is told."""
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_date: Mapped[date | None] = mapped_column(Date())
    approval_expiry_date: Mapped[date | None] = mapped_column(Date())
    """The last business date on which an approval may be signed."""

    contract_template: Mapped[str | None] = mapped_column(String(32))
    contract_sha256: Mapped[str | None] = mapped_column(String(64))
    contract_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contract_channel: Mapped[Channel | None] = mapped_column(enum_column(Channel, 16))
    contract_ip: Mapped[str | None] = mapped_column(String(45))
    contract_device: Mapped[str | None] = mapped_column(Text())
    """JSON: the device the contract was accepted on."""
    line_id: Mapped[int | None] = mapped_column(BigInteger)

    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    contacts: Mapped[list[ApplicationContact]] = relationship(
        back_populates="application", order_by="ApplicationContact.position", cascade="all, delete-orphan"
    )
    transitions: Mapped[list[ApplicationTransition]] = relationship(
        order_by="ApplicationTransition.id", viewonly=True
    )
    """Its transitions, oldest first (see :func:`transitions_in_memory`)."""


class ApplicationContact(Base):
    """A contact the customer allowed the bank to hold with the application."""

    __tablename__ = "origination_application_contact"
    __table_args__ = (Index("ix_origination_application_contact_application", "application_id", "position"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("origination_application.id"))
    position: Mapped[int] = mapped_column(Integer)
    name_enc: Mapped[str] = mapped_column(Text())
    phone_token: Mapped[str] = mapped_column(String(32))
    phone_enc: Mapped[str] = mapped_column(Text())
    relation: Mapped[Relation] = mapped_column(enum_column(Relation, 16))

    application: Mapped[Application] = relationship(back_populates="contacts")


class ApplicationTransition(AppendOnly, Base):
    """One move of an application's state machine: from, to, who, on which date, why, when."""

    __tablename__ = "origination_application_event"
    __table_args__ = (Index("ix_origination_application_event_application", "application_id", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("origination_application.id"))
    event: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[ApplicationStatus | None] = mapped_column(enum_column(ApplicationStatus, 16))
    to_status: Mapped[ApplicationStatus] = mapped_column(enum_column(ApplicationStatus, 16))
    actor: Mapped[str] = mapped_column(String(64))
    business_date: Mapped[date] = mapped_column(Date())
    reason: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Consent(Base):
    """A consent given or withdrawn: which text (version, language, SHA-256), when, where."""

    __tablename__ = "origination_consent"
    __table_args__ = (
        Index("ix_origination_consent_customer_kind", "customer_id", "kind", "id"),
        Index("ix_origination_consent_kind_action", "kind", "action", "at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(20))
    kind: Mapped[ConsentKind] = mapped_column(enum_column(ConsentKind, 32))
    action: Mapped[ConsentAction] = mapped_column(enum_column(ConsentAction, 16))
    text_version: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    text_sha256: Mapped[str] = mapped_column(String(64))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, 16))
    ip: Mapped[str | None] = mapped_column(String(45))
    actor: Mapped[str] = mapped_column(String(64))
    business_date: Mapped[date] = mapped_column(Date())
    at: Mapped[datetime] = mapped_column(UTCDateTime())


# ------------------------------------------------------------------ queries

# Built once: a statement built per call pays for its construction and its cache key each time.
_IN_PROGRESS = select(Application.id).where(Application.in_progress_customer_id == bindparam("customer_id"))
_CONSENT_ACTIONS = (
    select(Consent.kind, Consent.action)
    .where(Consent.customer_id == bindparam("customer_id"))
    .order_by(Consent.id)
)


#: PostgreSQL: the customer's consent actions as one row, ``{kind: action}`` JSON text whose
#: pairs come in the records' order (the newest last; :func:`consent_actions_of` keeps it), for a
#: caller that sends it with other reads (``db.reads.together``). Parameter ``customer_id``.
CONSENT_ACTIONS_ONE_ROW = select(
    cast(
        func.json_object_agg(Consent.kind, aggregate_order_by(Consent.action, Consent.id)),
        Text,
    )
).where(Consent.customer_id == bindparam("customer_id"))


def consent_actions_of(row: Sequence[Any] | None) -> dict[ConsentKind, ConsentAction]:
    """The newest action per kind from a row of :data:`CONSENT_ACTIONS_ONE_ROW` (JSON keeps the
    last of the same name, and the pairs come oldest first)."""
    if row is None or row[0] is None:
        return {}
    return {ConsentKind(kind): ConsentAction(action) for kind, action in json.loads(row[0]).items()}


_INSERT_CONTACTS = insert(ApplicationContact.__table__).returning(
    ApplicationContact.__table__.c.id, sort_by_parameter_order=True
)


#: Columns of an application that the decision, the contract and the credit line fill in, all
#: empty (NULL, their default) when it is submitted. The submission's ``INSERT`` leaves them
#: out: 41 parameters, not 58. psycopg converts a statement with more than 50 parameters again
#: on every execution (its cache of converted statements stops there), about 0.14 ms each time.
_FILLED_LATER = frozenset(
    {
        "decision_id",
        "decision_outcome",
        "approved_limit",
        "approved_rate",
        "decision_reasons",
        "customer_reasons",
        "decided_by",
        "decided_at",
        "decision_date",
        "approval_expiry_date",
        "contract_template",
        "contract_sha256",
        "contract_accepted_at",
        "contract_channel",
        "contract_ip",
        "contract_device",
        "line_id",
    }
)


@cache
def _insert_application(dialect: str) -> Any:
    """The application's ``INSERT … ON CONFLICT (in_progress_customer_id) DO NOTHING RETURNING
    id`` (built once per dialect): it inserts nothing, and returns no id, when the customer has
    another application in progress."""
    table = Application.__table__
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return ins.on_conflict_do_nothing(index_elements=[table.c.in_progress_customer_id]).returning(table.c.id)


#: The contacts' columns, as the PostgreSQL submission sends them: the rows in one JSON parameter.
_CONTACT_COLUMNS = ("position", "name_enc", "phone_token", "phone_enc", "relation")


@cache
def _contact_processors() -> dict[str, Any]:
    """Each contact column's bind processor on PostgreSQL (its enum's value for ``relation``),
    applied to the rows' values as SQLAlchemy would to a single value."""
    dialect = postgresql.dialect()
    table = ApplicationContact.__table__
    return {
        name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in _CONTACT_COLUMNS
    }


@cache
def _submit_pg(keys: tuple[str, ...]) -> Any:
    """PostgreSQL: the application's insert (as :func:`_insert_application`, of the columns
    ``keys``) and its contacts' in one statement, the contacts' rows in one JSON parameter
    (``c_rows``, ``db.base.json_rows`` of their ``position``, ``name_enc``, ``phone_token``,
    ``phone_enc`` and ``relation``): one row back, the application's id and its contacts' ids by
    position, or no row when the customer has another application in progress (then no contact
    is written either). The contacts' foreign key is checked when the whole statement is
    written. One parameter for the contacts whatever their number: 42 in all, under the 50 past
    which psycopg converts a statement again at every execution."""
    table = Application.__table__
    contact = ApplicationContact.__table__
    dialect = postgresql.dialect()
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(table.c[k].name) for k in keys)
    values = ", ".join(f":{k}" for k in keys)
    names = ", ".join(_CONTACT_COLUMNS)
    typed = ", ".join(f"{name} {contact.c[name].type.compile(dialect=dialect)}" for name in _CONTACT_COLUMNS)
    sql = (
        f"WITH a AS (INSERT INTO {table.name} ({columns}) VALUES ({values}) "
        f"ON CONFLICT ({table.c.in_progress_customer_id.name}) DO NOTHING RETURNING id), "
        f"c AS (INSERT INTO {contact.name} (application_id, {names}) "
        f"SELECT a.id, {', '.join('r.' + name for name in _CONTACT_COLUMNS)} "
        f"FROM a CROSS JOIN json_to_recordset(CAST(:c_rows AS JSON)) AS r({typed}) RETURNING id, position) "
        "SELECT a.id, (SELECT array_agg(c.id ORDER BY c.position) FROM c) FROM a"
    )
    return text(sql).bindparams(*(bindparam(k, type_=table.c[k].type) for k in keys))


def insert_new(
    session: Session, values: dict[str, object], contacts: Sequence[dict[str, object]]
) -> Application | None:
    """Write a new application and its contacts with statements of their own (both in one
    statement on PostgreSQL, :func:`_submit_pg`; on SQLite the application's, then one a
    contact), and hold them in the session
    as loaded rows: later changes of the application (its decision, its moves) are written as
    for any row read (``db.base.write_changes`` or the flush), and a rollback takes them out of the session as it
    would rows the unit of work inserted. The unit of work's own insert would build, track and
    flush the same rows with about twice the work.

    ``None``, writing nothing, when the customer has another application in progress: the
    unique ``in_progress_customer_id`` is the check, in the insert itself (no read before it),
    and a submission racing another one waits for it and then finds it, its transaction still
    usable."""
    session.flush()  # what was pending goes first, as the unit of work would order it
    conn = session.connection()
    values = {**column_defaults(Application.__table__), **values}  # every column: none read back
    # the columns still empty that only a later step fills are left to their default (NULL):
    # one statement of the same shape for every submission, with fewer parameters
    sent = {k: v for k, v in values.items() if not (v is None and k in _FILLED_LATER)}
    if conn.dialect.name == "postgresql":
        processors = _contact_processors().items()
        rows = json_rows(
            [
                {name: c[name] if process is None else process(c[name]) for name, process in processors}
                for c in contacts
            ]
        )
        written = conn.execute(_submit_pg(tuple(sent)), {**sent, "c_rows": rows}).first()
        if written is None:
            return None
        application_id = written[0]
        by_position = dict(zip(sorted(int(c["position"]) for c in contacts), written[1] or [], strict=True))
        rows = [{**c, "application_id": application_id} for c in contacts]
        ids = [by_position[int(c["position"])] for c in contacts]
    else:
        application_id = conn.execute(_insert_application(conn.dialect.name), sent).scalar()
        if application_id is None:
            return None
        rows = [{**c, "application_id": application_id} for c in contacts]
        ids = conn.execute(_INSERT_CONTACTS, rows).scalars().all() if rows else []
    # held as loaded rows: the values become their unchanged state, the ids their keys
    app = hold(session, filled(Application, {**values, "id": application_id}))
    held = [
        hold(session, filled(ApplicationContact, {**row, "id": i})) for row, i in zip(rows, ids, strict=True)
    ]
    for contact in held:
        set_committed_value(contact, "application", app)
    set_committed_value(app, "contacts", held)
    set_committed_value(app, "transitions", [])  # all of them in memory (see transitions_in_memory)
    return app


def get(session: Session, application_id: int) -> Application | None:
    return session.get(Application, application_id)


def held(session: Session, application_id: int) -> Application | None:
    """The application when the session holds it already (its identity map: no SQL), else
    ``None``. The map keeps an unchanged object only while something refers to it."""
    found: Application | None = session.identity_map.get(identity_key(Application, application_id))
    return found


def get_in_progress(session: Session, customer_id: str) -> Application | None:
    # asked on every submission, mostly of customers with none: the id first (one indexed
    # look-up on the connection), the application only when there is one
    session.flush()  # as an ORM query would
    found = session.connection().execute(_IN_PROGRESS, {"customer_id": customer_id}).scalar()
    return None if found is None else session.get(Application, found)


def list_applications(
    session: Session,
    *,
    status: ApplicationStatus | None = None,
    customer_id: str | None = None,
    submitted_from: datetime | None = None,
    submitted_to: datetime | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> Sequence[Application]:
    query = select(Application).order_by(Application.id).limit(limit)
    if status is not None:
        query = query.where(Application.status == status)
    if customer_id is not None:
        query = query.where(Application.customer_id == customer_id)
    if submitted_from is not None:
        query = query.where(Application.submitted_at >= submitted_from)
    if submitted_to is not None:
        query = query.where(Application.submitted_at < submitted_to)
    if after_id is not None:
        query = query.where(Application.id > after_id)
    return session.scalars(query).all()


def transitions_in_memory(app: Application) -> list[ApplicationTransition] | None:
    """The application's transitions when the session holds all of them (an application
    submitted in this unit of work, whose list starts empty and grows with each move), else
    ``None``: a loaded application's are read with :func:`list_transitions` instead of a
    collection load, which each of its moves would otherwise pay for."""
    loaded = inspect(app).dict.get("transitions")
    return None if loaded is None else list(loaded)


def add_transition(session: Session, app: Application, **values: object) -> ApplicationTransition:
    """Store a transition of ``app``, which is written already (it has its id), and keep it in
    the application's list when that is in memory."""
    if app.id is None:
        raise ValueError("a transition needs its application written first (no id yet)")
    row = append_only.add(session, ApplicationTransition, application_id=app.id, **values)
    held = inspect(app).dict.get("transitions")
    if held is not None:
        list.append(held, row)  # a list only read (the relationship is view-only): no events
    return row


def list_transitions(session: Session, application_id: int) -> Sequence[ApplicationTransition]:
    return session.scalars(
        select(ApplicationTransition)
        .where(ApplicationTransition.application_id == application_id)
        .order_by(ApplicationTransition.id)
    ).all()


def count_sharing(
    session: Session, *, values: Mapping[str, str], since: Mapping[str, datetime], until: datetime
) -> dict[tuple[str, str], int]:
    """For each ``column -> value`` of ``values`` and each ``window -> start`` of ``since``: the
    applications submitted in ``[start, until]`` whose ``column`` equals ``value``, keyed
    ``(column, window)``. One statement: a range scan of the ``(column, submitted_at)`` index per
    column, from the earliest start, its windows counted in the same pass."""
    if not values or not since:
        return {}
    t = Application.__table__
    earliest = min(since.values())
    parts = [
        select(
            literal(column).label("col"),
            *(
                func.coalesce(func.sum(case((t.c.submitted_at >= start, 1), else_=0)), 0).label(f"w{i}")
                for i, start in enumerate(since.values())
            ),
        ).where(t.c[column] == value, t.c.submitted_at >= earliest, t.c.submitted_at <= until)
        for column, value in values.items()
    ]
    windows = list(since)
    out: dict[tuple[str, str], int] = {}
    for row in session.execute(union_all(*parts)):
        for i, window in enumerate(windows):
            out[(row[0], window)] = int(row[i + 1])
    return out


def list_consents(session: Session, customer_id: str) -> Sequence[Consent]:
    return session.scalars(
        select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.id)
    ).all()


def latest_consent_actions(session: Session, customer_id: str) -> dict[ConsentKind, ConsentAction]:
    """The newest action per kind (given or withdrawn), without loading the records."""
    session.flush()  # as an ORM query would
    current: dict[ConsentKind, ConsentAction] = {}
    for kind, action in session.connection().execute(_CONSENT_ACTIONS, {"customer_id": customer_id}):
        current[ConsentKind(kind)] = ConsentAction(action)
    return current


def latest_consents(session: Session, customer_id: str) -> dict[ConsentKind, Consent]:
    """The newest record per kind: the customer's current state of each consent."""
    current: dict[ConsentKind, Consent] = {}
    for row in list_consents(session, customer_id):
        current[row.kind] = row
    return current


def add(session: Session, row: Base) -> None:
    session.add(row)
