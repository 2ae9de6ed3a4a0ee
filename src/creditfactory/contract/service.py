"""Use cases of the contract domain: run an ingestion, read what was loaded, read a customer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import bindparam, select

from creditfactory.clock import Clock
from creditfactory.contract import lake as lake_mod
from creditfactory.contract import store
from creditfactory.contract.ingest import Ingestion, IngestResult, IngestSettings, Progress
from creditfactory.contract.tables import TABLES
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import NotFound, PermissionDenied
from creditfactory.security import masking
from creditfactory.security.audit import record_access
from creditfactory.security.pii import PiiVault
from creditfactory.security.roles import Permission, Principal, Role, require


def ingest_directory(
    *,
    directory: Path,
    uow_factory: Any,
    clock: Clock,
    vault: PiiVault,
    settings: IngestSettings,
    progress: Progress | None = None,
    today: date | None = None,
) -> IngestResult:
    """Validate and load every extract file in ``directory`` (see :mod:`contract.ingest`)."""
    return Ingestion(
        sessions=uow_factory, clock=clock, vault=vault, settings=settings, progress=progress
    ).run(directory, today=today)


def table_counts(*, lake: Path) -> dict[str, int]:
    """Rows per contract table in the lake (latest row per key)."""
    return {t.name: lake_mod.row_count(lake, t.name) for t in TABLES}


def segment_counts(*, lake: Path) -> dict[str, int]:
    if not lake_mod.exists(lake, "customers"):
        return {}
    frame = lake_mod.scan(lake, "customers").group_by("segment").len().sort("segment").collect()
    return {str(s): int(n) for s, n in frame.iter_rows()}


def list_runs(uow: UnitOfWork, *, limit: int = 20) -> Sequence[store.IngestRun]:
    return uow.session.scalars(select(store.IngestRun).order_by(store.IngestRun.id.desc()).limit(limit)).all()


def get_run(uow: UnitOfWork, *, run_id: int) -> tuple[store.IngestRun, list[store.IngestFile]]:
    run = uow.session.get(store.IngestRun, run_id)
    if run is None:
        raise NotFound(f"ingestion run {run_id} does not exist", run_id=run_id)
    files = list(
        uow.session.scalars(
            select(store.IngestFile).where(store.IngestFile.run_id == run_id).order_by(store.IngestFile.id)
        )
    )
    return run, files


@dataclass(frozen=True, slots=True)
class CustomerView:
    customer_id: str
    name: str | None
    id_number: str | None
    phone: str | None
    address: str | None
    gender: str
    birth_date: date
    segment: str
    branch_id: str
    manager_id: str | None
    kyc_status: str
    lat: float | None
    lon: float | None
    marketing_consent: bool
    masked: bool


_PII_FIELDS = ("name", "id_number", "phone", "address")


def view_customer(
    uow: UnitOfWork,
    *,
    vault: PiiVault,
    principal: Principal,
    customer_id: str,
    purpose: str,
    now: datetime,
    request_id: str | None = None,
) -> CustomerView:
    """A customer's record for staff: masked unless the role may see personal data; audited.

    Account managers bound to a branch see only that branch's customers.
    """
    require(principal, Permission.CUSTOMER_READ)
    table = store.OPERATIONAL["customers"]
    row = uow.session.execute(select(table).where(table.c.customer_id == customer_id)).mappings().first()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist", customer_id=customer_id)
    if (
        principal.branch_id is not None
        and Role.ACCOUNT_MANAGER in principal.roles
        and not principal.can(Permission.CUSTOMER_READ_PII)
        and row["branch_id"] != principal.branch_id
    ):
        raise PermissionDenied(
            f"{principal.id} serves branch {principal.branch_id}; customer {customer_id} belongs to {row['branch_id']}"
        )
    unmasked = principal.can(Permission.CUSTOMER_READ_PII)
    clear = {f: (vault.decrypt(row[f"{f}_enc"]) if row[f"{f}_enc"] else None) for f in _PII_FIELDS}
    if not unmasked:
        clear = {
            "name": masking.mask_name(clear["name"]),
            "id_number": masking.mask_id_number(clear["id_number"]),
            "phone": masking.mask_phone(clear["phone"]),
            "address": masking.mask_address(clear["address"]),
        }
    record_access(
        uow.session,
        principal=principal,
        action="customer.read",
        subject_type="customer",
        subject_id=customer_id,
        fields=_PII_FIELDS,
        unmasked=unmasked,
        purpose=purpose,
        now=now,
        request_id=request_id,
    )
    return CustomerView(
        customer_id=row["customer_id"],
        gender=row["gender"],
        birth_date=row["birth_date"],
        segment=row["segment"],
        branch_id=row["branch_id"],
        manager_id=row["manager_id"],
        kyc_status=row["kyc_status"],
        lat=row["lat"],
        lon=row["lon"],
        marketing_consent=row["marketing_consent"],
        masked=not unmasked,
        **clear,
    )


def find_customer_by_id_number(uow: UnitOfWork, *, vault: PiiVault, id_number: str) -> str | None:
    """The customer id holding an ID number (looked up by token; the number is never stored)."""
    table = store.OPERATIONAL["customers"]
    token = vault.token(id_number.strip().upper(), kind="id_number")
    return uow.session.scalar(select(table.c.customer_id).where(table.c.id_number_token == token))


@dataclass(frozen=True, slots=True)
class CustomerHome:
    """Where a customer belongs, for the decision engine: tokens (never clear values), the home
    coordinates and the home branch with its coordinates."""

    customer_id: str
    id_number_token: str
    phone_token: str
    branch_id: str
    lat: float | None
    lon: float | None
    branch_lat: float | None
    branch_lon: float | None


def _customer_query(*more: Any) -> Any:
    """One customer by id: the columns of a :class:`CustomerHome` in its order, then ``more``."""
    customers = store.OPERATIONAL["customers"]
    branches = store.OPERATIONAL["branches"]
    return (
        select(
            customers.c.customer_id,
            customers.c.id_number_token,
            customers.c.phone_token,
            customers.c.branch_id,
            customers.c.lat,
            customers.c.lon,
            branches.c.lat,
            branches.c.lon,
            *more,
        )
        .join(branches, branches.c.branch_id == customers.c.branch_id, isouter=True)
        .where(customers.c.customer_id == bindparam("customer_id"))
    )


_CUSTOMER_HOME = _customer_query()


_HOMES = "contract.customer_homes"


def _homes(uow: UnitOfWork) -> dict[str, CustomerHome | None]:
    """The homes read in the unit of work's current transaction (a new transaction starts
    afresh: an ingestion committed meanwhile may have changed them)."""
    session = uow.session
    session.connection()  # begins the transaction when none is open yet
    tx = session.get_transaction()
    held = session.info.get(_HOMES)
    if held is None or held[0] is not tx:
        held = (tx, {})
        session.info[_HOMES] = held
    homes: dict[str, CustomerHome | None] = held[1]
    return homes


def customer_home(uow: UnitOfWork, *, customer_id: str) -> CustomerHome | None:
    """A customer's tokens, home coordinates and home branch (one indexed read; not audited:
    no personal data leaves the database in clear). ``None`` for an unknown customer. Read once
    per transaction: :func:`customer_record` of the same customer in the same transaction
    answers it."""
    homes = _homes(uow)
    if customer_id in homes:
        return homes[customer_id]
    row = uow.session.connection().execute(_CUSTOMER_HOME, {"customer_id": customer_id}).first()
    home = None if row is None else CustomerHome(*row)
    homes[customer_id] = home
    return home


_CUSTOMERS = store.OPERATIONAL["customers"]
#: The read of :func:`customer_record` (parameter ``customer_id``), at most one row, for a caller
#: that sends it with other reads (``db.reads.together``); :func:`record_of` answers it.
CUSTOMER_RECORD = _customer_query(_CUSTOMERS.c.name_enc, _CUSTOMERS.c.segment, _CUSTOMERS.c.manager_id)


def customer_record(uow: UnitOfWork, *, customer_id: str) -> CustomerIdentity | None:
    """One customer's identity (as :func:`customer_identities`) in one indexed read that also
    answers :func:`customer_home` for the rest of the transaction (an application is checked
    against the record, then decided on the home). ``None`` for an unknown customer."""
    uow.session.flush()  # as an ORM query would
    row = uow.session.connection().execute(CUSTOMER_RECORD, {"customer_id": customer_id}).first()
    return record_of(uow, customer_id, row)


def record_of(uow: UnitOfWork, customer_id: str, row: Sequence[Any] | None) -> CustomerIdentity | None:
    """The identity of a row of :data:`CUSTOMER_RECORD` read in ``uow``'s transaction (``None``
    for no row); the row answers :func:`customer_home` for the rest of the transaction too."""
    homes = _homes(uow)
    if row is None:
        homes[customer_id] = None
        return None
    home = CustomerHome(*row[:8])
    homes[customer_id] = home
    name_enc, segment, manager_id = row[8:]
    return CustomerIdentity(
        home.customer_id,
        home.id_number_token,
        home.phone_token,
        name_enc,
        segment,
        home.branch_id,
        manager_id,
    )


def lake_frame(*, lake: Path, table: str) -> pl.LazyFrame:
    """A lake table for analytics (latest row per key)."""
    return lake_mod.scan(lake, table)


@dataclass(frozen=True, slots=True)
class CustomerIdentity:
    """What a hand-over list is checked against: keys, tokens and the (encrypted) name."""

    customer_id: str
    id_number_token: str
    phone_token: str | None
    name_enc: str | None
    segment: str
    branch_id: str
    manager_id: str | None


def customer_identities(
    uow: UnitOfWork,
    *,
    customer_ids: Sequence[str] = (),
    id_number_tokens: Sequence[str] = (),
    chunk: int = 5_000,
) -> list[CustomerIdentity]:
    """Customers by id or by ID-number token (for bulk checks; nothing is decrypted here)."""
    table = store.OPERATIONAL["customers"]
    cols = (
        table.c.customer_id,
        table.c.id_number_token,
        table.c.phone_token,
        table.c.name_enc,
        table.c.segment,
        table.c.branch_id,
        table.c.manager_id,
    )
    found: dict[str, CustomerIdentity] = {}
    for column, values in (
        (table.c.customer_id, list(customer_ids)),
        (table.c.id_number_token, list(id_number_tokens)),
    ):
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            for row in uow.session.execute(select(*cols).where(column.in_(part))):
                found[row[0]] = CustomerIdentity(*row)
    return list(found.values())


def customer_contacts(
    uow: UnitOfWork,
    *,
    vault: PiiVault,
    principal: Principal,
    customer_ids: Sequence[str],
    purpose: str,
    subject: str,
    now: datetime,
    chunk: int = 5_000,
) -> dict[str, tuple[str | None, str | None, str | None]]:
    """Name, ID number and phone of many customers for a list hand-over: in full only for a role
    that may see personal data, masked otherwise; one audit row records the whole read."""
    require(principal, Permission.CUSTOMER_READ)
    unmasked = principal.can(Permission.CUSTOMER_READ_PII)
    table = store.OPERATIONAL["customers"]
    out: dict[str, tuple[str | None, str | None, str | None]] = {}
    ids = list(customer_ids)
    for start in range(0, len(ids), chunk):
        rows = uow.session.execute(
            select(table.c.customer_id, table.c.name_enc, table.c.id_number_enc, table.c.phone_enc).where(
                table.c.customer_id.in_(ids[start : start + chunk])
            )
        ).all()
        names = vault.decrypt_many([r[1] for r in rows])
        numbers = vault.decrypt_many([r[2] for r in rows])
        phones = vault.decrypt_many([r[3] for r in rows])
        for r, name, number, phone in zip(rows, names, numbers, phones, strict=True):
            if unmasked:
                out[r[0]] = (name, number, phone)
            else:
                out[r[0]] = (
                    masking.mask_name(name),
                    masking.mask_id_number(number),
                    masking.mask_phone(phone),
                )
    record_access(
        uow.session,
        principal=principal,
        action="customer.export",
        subject_type="customer_list",
        subject_id=subject,
        fields=("name", "id_number", "phone"),
        unmasked=unmasked,
        purpose=f"{purpose} ({len(out)} customers)",
        now=now,
    )
    return out
