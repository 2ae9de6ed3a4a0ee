"""Hand-over of lists in the fixed Excel template: export a version, import a hand-approved list.

Import checks every row and keeps nothing it cannot vouch for: the ID number's check character,
that the bank knows the customer (by the ID number's token), that a given customer number, name
and phone agree with the bank's record, the phone's format, the limit and the rate within the
product's bounds, the expiry date, and that no customer appears twice. Good rows become an
``imported`` whitelist version, published like a mined one; rejected rows go to a reject
workbook with their Excel row number and every reason. Importing the same file again finds the
version it made and changes nothing.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import polars as pl
from sqlalchemy import select

from creditfactory import contract
from creditfactory.db.uow import UnitOfWork
from creditfactory.money import to_minor, to_scaled
from creditfactory.security import idcard, phone
from creditfactory.security.pii import PiiVault
from creditfactory.security.roles import Permission, Principal, require
from creditfactory.whitelist import excel, service
from creditfactory.whitelist.model import ImportBounds, Outcome, check_amount, version_identity
from creditfactory.whitelist.store import WhitelistEntry


@dataclass(slots=True)
class ImportResult:
    file: str
    sha256: str
    rows: int
    accepted: int
    rejected: int
    version_id: int | None
    unchanged: bool
    reject_file: Path | None
    reasons: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "version_id": self.version_id,
            "unchanged": self.unchanged,
            "reject_file": str(self.reject_file) if self.reject_file else None,
            "reasons": self.reasons,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


def import_list(
    uow_factory: Any,
    *,
    path: Path,
    name: str,
    lake: Path,
    reject_dir: Path,
    vault: PiiVault,
    bounds: ImportBounds,
    business_date: date,
    expiry_days: int,
    imported_by: str,
    now: datetime,
) -> ImportResult:
    """Validate and publish a hand-approved list (see the module's docstring).

    ``uow_factory()`` gives units of work: the version is claimed in one transaction and
    published in another, so that a crash in between leaves nothing visible.
    """
    started = perf_counter()
    sha = _sha256(path)
    identity = version_identity(
        kind="imported", name=name, as_of=None, strategy_hash=sha, models={}, input_fingerprint=sha
    )
    with uow_factory() as uow:
        existing = service.store.get_by_identity(uow.session, identity)
        if existing is not None and existing.status is not service.VersionStatus.BUILDING:
            return ImportResult(
                file=path.name,
                sha256=sha,
                rows=existing.scored,
                accepted=existing.eligible,
                rejected=0,
                version_id=existing.id,
                unchanged=True,
                reject_file=None,
            )
    raw, _sheet = excel.read_rows(path)
    default_expiry = business_date + timedelta(days=expiry_days)
    latest_expiry = business_date + timedelta(days=bounds.max_expiry_days)

    parsed: list[dict[str, Any]] = []
    for r in raw:
        reasons: list[str] = []
        values: dict[str, Any] = {}
        for col in ("customer_id", "id_number", "name", "phone", "grade", "note"):
            value, problem = excel.text_cell(r.values.get(col), col)
            values[col] = value
            if problem:
                reasons.append(problem)
        for col in ("limit", "annual_rate"):
            value, problem = excel.decimal_cell(r.values.get(col), col)
            values[col] = value
            if problem:
                reasons.append(problem)
        values["expiry_date"], problem = excel.date_cell(r.values.get("expiry_date"), "expiry_date")
        if problem:
            reasons.append(problem)
        if values["id_number"] is None and not any(p.startswith("id_number") for p in reasons):
            reasons.append("id_number: required")
        elif values["id_number"] is not None:
            values["id_number"] = values["id_number"].upper()
            reasons += [f"id_number: {p}" for p in idcard.problems(values["id_number"], as_of=business_date)]
        if values["phone"] is not None:
            reasons += [f"phone: {p}" for p in phone.problems(values["phone"])]
        if values["limit"] is None and not any(p.startswith("limit") for p in reasons):
            reasons.append("limit: required")
        elif values["limit"] is not None:
            reasons += check_amount(
                values["limit"], field_name="limit", low=bounds.min_limit, high=bounds.max_limit, places=2
            )
        if values["annual_rate"] is None and not any(p.startswith("annual_rate") for p in reasons):
            reasons.append("annual_rate: required")
        elif values["annual_rate"] is not None:
            reasons += check_amount(
                values["annual_rate"],
                field_name="annual_rate",
                low=bounds.min_rate,
                high=bounds.max_rate,
                places=8,
            )
        expiry = values["expiry_date"] or default_expiry
        if expiry < business_date:
            reasons.append(f"expiry_date: {expiry.isoformat()} is before the business date {business_date}")
        elif expiry > latest_expiry:
            reasons.append(
                f"expiry_date: {expiry.isoformat()} is more than {bounds.max_expiry_days} days away"
            )
        values["expiry_date"] = expiry
        parsed.append({"row": r.row, "values": values, "raw": r.values, "reasons": reasons})

    # The bank's record, by ID-number token (nothing personal leaves the vault in clear).
    tokens = {
        i: vault.token(p["values"]["id_number"], kind="id_number")
        for i, p in enumerate(parsed)
        if p["values"]["id_number"] and not any(x.startswith("id_number") for x in p["reasons"])
    }
    with uow_factory() as uow:
        known = {
            c.id_number_token: c
            for c in contract.customer_identities(uow, id_number_tokens=list(set(tokens.values())))
        }
    names = dict(
        zip(
            [c.customer_id for c in known.values()],
            vault.decrypt_many([c.name_enc for c in known.values()]),
            strict=True,
        )
    )
    for i, p in enumerate(parsed):
        v = p["values"]
        token = tokens.get(i)
        if token is None:
            continue
        who = known.get(token)
        if who is None:
            p["reasons"].append("id_number: no customer of the bank has this ID number")
            continue
        p["customer"] = who
        if v["customer_id"] is not None and v["customer_id"] != who.customer_id:
            p["reasons"].append(
                f"customer_id: {v['customer_id']} does not hold this ID number (the bank's record says {who.customer_id})"
            )
        if v["name"] is not None and names.get(who.customer_id) not in (None, v["name"]):
            p["reasons"].append("name: does not match the bank's record for this ID number")
        if v["phone"] is not None and not any(x.startswith("phone") for x in p["reasons"]):
            if who.phone_token != vault.token(phone.normalise(v["phone"]), kind="phone"):
                p["reasons"].append("phone: differs from the bank's record for this customer")

    rows_of: dict[str, list[int]] = defaultdict(list)
    for p in parsed:
        if "customer" in p:
            rows_of[p["customer"].customer_id].append(p["row"])
    for p in parsed:
        if "customer" in p:
            where = rows_of[p["customer"].customer_id]
            if len(where) > 1:
                others = ", ".join(str(x) for x in where)
                p["reasons"].append(f"customer_id: {p['customer'].customer_id} appears on rows {others}")

    good = [p for p in parsed if not p["reasons"]]
    bad = [p for p in parsed if p["reasons"]]
    reasons_count: dict[str, int] = defaultdict(int)
    for p in bad:
        for reason in p["reasons"]:
            reasons_count[_reason_kind(reason)] += 1
    reject_file = None
    if bad:
        reject_file = excel.write_workbook(
            reject_dir / f"whitelist-import-{sha[:12]}.xlsx",
            [],
            title=f"退回行 Rejected rows of {path.name}",
            rejects=[{"row": p["row"], "reasons": p["reasons"], "values": p["raw"]} for p in bad],
        )
    if not good:
        return ImportResult(
            file=path.name,
            sha256=sha,
            rows=len(parsed),
            accepted=0,
            rejected=len(bad),
            version_id=None,
            unchanged=False,
            reject_file=reject_file,
            reasons=dict(reasons_count),
        )

    lines = pl.DataFrame(
        {
            "customer_id": [p["customer"].customer_id for p in good],
            "segment": [p["customer"].segment for p in good],
            "branch_id": [p["customer"].branch_id for p in good],
            "outcome": [Outcome.ELIGIBLE.value] * len(good),
            "reason": [None] * len(good),
            "grade": [p["values"]["grade"] for p in good],
            "limit_fen": [to_minor(p["values"]["limit"]) for p in good],
            "annual_rate_e8": [to_scaled(p["values"]["annual_rate"], 8) for p in good],
            "expiry_date": [p["values"]["expiry_date"] for p in good],
        },
        schema_overrides={"reason": pl.String, "grade": pl.String},
    ).sort("customer_id")
    spec = service.VersionSpec(
        identity=identity,
        name=name,
        kind="imported",
        as_of=business_date,
        strategy_hash=sha,
        input_fingerprint=sha,
        strategy_name=path.name,
        engine="excel",
    )
    with uow_factory() as uow:
        version, done = service.begin_version(uow, spec=spec, created_by=imported_by, now=now)
        uow.commit()
        version_id = version.id
    if not done:
        staging = service.fresh_staging(lake, version_id)
        service.write_lines(staging, lines, part=0)
        with uow_factory() as uow:
            service.publish_version(
                uow,
                lake=lake,
                version_id=version_id,
                business_date=business_date,
                expiry_date=max(lines["expiry_date"]),
                seconds=perf_counter() - started,
                now=now,
            )
            uow.commit()
    return ImportResult(
        file=path.name,
        sha256=sha,
        rows=len(parsed),
        accepted=len(good),
        rejected=len(bad),
        version_id=version_id,
        unchanged=done,
        reject_file=reject_file,
        reasons=dict(reasons_count),
    )


def export_version(
    uow: UnitOfWork,
    *,
    version_id: int,
    path: Path,
    vault: PiiVault,
    principal: Principal,
    now: datetime,
) -> int:
    """Write a published version's entries to the template (with each entry's status).

    Names, ID numbers and phones appear in full only for a role that may see personal data,
    masked otherwise; the export is audited. Returns the rows written.
    """
    if not principal.can(Permission.CAMPAIGN_MANAGE):
        require(principal, Permission.WHITELIST_MINE)
    version = service.get_version(uow, version_id=version_id)
    if version.status is service.VersionStatus.BUILDING:
        raise service.VersionNotPublished(f"whitelist version {version_id} is still building")
    entries = uow.session.scalars(
        select(WhitelistEntry)
        .where(WhitelistEntry.version_id == version_id)
        .order_by(WhitelistEntry.customer_id)
    ).all()
    contacts = contract.customer_contacts(
        uow,
        vault=vault,
        principal=principal,
        customer_ids=[e.customer_id for e in entries],
        purpose=f"whitelist export v{version_id}",
        subject=f"whitelist:v{version_id}",
        now=now,
    )
    rows = []
    for e in entries:
        name, number, mobile = contacts.get(e.customer_id, (None, None, None))
        rows.append(
            {
                "customer_id": e.customer_id,
                "id_number": number,
                "name": name,
                "phone": mobile,
                "limit": e.limit_amount,
                "annual_rate": e.annual_rate,
                "grade": e.grade,
                "expiry_date": e.expiry_date,
                "note": e.reasons,
                "segment": e.segment,
                "branch_id": e.branch_id,
                "status": e.status.value,
                "score": None if e.score is None else round(e.score, 1),
            }
        )
    excel.write_workbook(
        path,
        rows,
        title=f"白名单 Whitelist v{version_id} · {version.name} · as of {version.as_of.isoformat()}",
        extra_columns=(
            ("segment", "客群 segment", 10),
            ("branch_id", "网点 branch_id", 10),
            ("status", "状态 status", 10),
            ("score", "评分 score", 8),
        ),
    )
    return len(rows)


__all__ = ["ImportBounds", "ImportResult", "export_version", "import_list"]
