"""The demo's applications: the sandbox's applicants apply online, the decision engine decides,
approved customers sign the e-contract and servicing opens their credit lines.

Everything goes through the services the API calls: consents to the current texts, the
submission (with its checks), the decision on submission (the published champion strategy over
the facts, the graph, the portrait and the approved scorecards), the contract's acceptance by its
hash, and the outbox, whose handler opens the line. The sandbox only says who applies, from which
device and place, with what declared income, and what is true of them afterwards.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from time import perf_counter
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable
from sqlalchemy import func, select

from creditfactory import decisioning, strategy
from creditfactory.bootstrap import Container
from creditfactory.cli.decision_truth import applied_decisions, customer_truth, print_quality
from creditfactory.cli.demo_risk import GENERAL, ModelRow, write_if_changed
from creditfactory.errors import DomainError
from creditfactory.origination import REQUIRED_CONSENTS, consents, econtract
from creditfactory.origination import service as origination
from creditfactory.origination.model import Channel, Purpose, Relation
from creditfactory.sandbox.applicants import ApplicantSettings, generate_applicants
from creditfactory.sandbox.measure import decision_quality
from creditfactory.servicing.store import CreditLine

#: Who publishes the demo's decision strategy.
RISK_OFFICER = "S-RISK-HEAD"


@dataclass
class ApplyResult:
    applications: int
    by_kind: dict[str, int]
    outcomes: dict[str, dict[str, int]]  # kind -> outcome -> count
    refused: dict[str, int]  # stable error code -> count (submissions refused before a decision)
    signed: int
    lines: int
    quality: dict[str, Any]
    strategy: str
    seconds: float


def demo_decision_strategy(c: Container, models: list[ModelRow]) -> Path:
    """The shipped decision strategy with each segment scored by the model the demo approved for
    it; applicants new to the bank by the general scorecard when there is one."""
    text = strategy.example_path("decision.yaml").read_text(encoding="utf-8")
    chosen = {m.segment: m.name for m in models}
    for segment, name in chosen.items():
        text = re.sub(rf"(?m)^  {segment}: \{{name: \S+\}}", f"  {segment}: {{name: {name}}}", text, count=1)
    fallback = GENERAL if GENERAL in chosen.values() else next(iter(chosen.values()))
    text = re.sub(r"(?m)^  new_to_bank: \{name: \S+\}", f"  new_to_bank: {{name: {fallback}}}", text, count=1)
    return write_if_changed(c.data_dir / "demo" / "decision.yaml", text)


def _publish(c: Container, path: Path) -> str:
    """Publish the strategy as champion unless the same text already is."""
    text = path.read_text(encoding="utf-8")
    with c.uow() as uow:
        for s in decisioning.list_strategies(uow):
            if s.role == decisioning.CHAMPION and s.active and s.text == text:
                return s.label
        published = decisioning.publish_strategy(
            uow, path=path, clock=c.clock, actor=RISK_OFFICER, lake=c.lake_dir, models_dir=c.models_dir
        )
        uow.commit()
        return published.label


def _request(row: dict[str, Any]) -> origination.ApplicationRequest:
    def yuan(fen: int | None) -> Decimal | None:
        return None if fen is None else Decimal(fen) / 100

    amount = yuan(row["amount_fen"])
    assert amount is not None
    return origination.ApplicationRequest(
        customer_id=row["customer_id"],
        channel=Channel(row["channel"]),
        product_code=row["product_code"],
        amount=amount,
        term_months=int(row["term_months"]),
        purpose=Purpose(row["purpose"]),
        applicant=origination.Applicant(name=row["name"], id_number=row["id_number"], phone=row["phone"]),
        device=origination.Device(
            fingerprint=row["device_fingerprint"],
            os=row["device_os"],
            model=row["device_model"],
            is_emulator=bool(row["is_emulator"]),
            is_rooted=bool(row["is_rooted"]),
        ),
        ip=row["ip"],
        declared_annual_income=yuan(row["declared_income_fen"]),
        offer_version_id=row["offer_version_id"],
        lat=row["lat"],
        lon=row["lon"],
        contacts=tuple(
            origination.Contact(name=x["name"], phone=x["phone"], relation=Relation(x["relation"]))
            for x in row["contacts"] or []
        ),
    )


def _apply_one(c: Container, row: dict[str, Any], *, on: date, texts: dict[Any, Any]) -> tuple[str, bool]:
    """One applicant: consents, submission, decision, and on approval the signed contract.
    Returns the application's status after the decision and whether the contract was signed."""
    now: datetime = row["applied_at"]
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    cid = row["customer_id"]
    actor = f"mb-{cid}"
    with c.uow() as uow:
        for kind, text in texts.items():
            if not consents.has_consent(uow, customer_id=cid, kind=kind):
                consents.give_consent(
                    uow,
                    customer_id=cid,
                    kind=kind,
                    version=text.version,
                    language="zh",
                    text_sha256=text.sha256,
                    channel=row["channel"],
                    actor=actor,
                    business_date=on,
                    now=now,
                    ip=row["ip"],
                )
        view = origination.submit_application(
            uow,
            request=_request(row),
            catalogue=c.catalogue,
            vault=c.vault,
            actor=actor,
            business_date=on,
            now=now,
        )
        if c.decider is not None:
            c.decider(uow, application_id=view.id, now=now)
            view = origination.get_application(uow, application_id=view.id)
        uow.commit()
    status = str(view.status)
    if status != "approved":
        return status, False
    with c.uow() as uow:  # the customer reads the contract and signs it by its hash
        shown = econtract.contract_text(uow, application_id=view.id, vault=c.vault)
        econtract.accept_contract(
            uow,
            application_id=view.id,
            sha256=shown.sha256,
            channel=row["channel"],
            ip=row["ip"],
            device=econtract.AcceptedDevice(
                fingerprint=row["device_fingerprint"],
                os=row["device_os"],
                model=row["device_model"],
                is_emulator=bool(row["is_emulator"]),
                is_rooted=bool(row["is_rooted"]),
            ),
            actor=actor,
            vault=c.vault,
            business_date=on,
            now=now,
        )
        uow.commit()
    return status, True


def run_applications(
    c: Container,
    sandbox_dir: Path,
    *,
    on: date,
    models: list[ModelRow],
    offers: pl.DataFrame,
    version_id: int,
    seed: int,
    console: Console,
) -> ApplyResult | None:
    """A day of online applications on business date ``on`` (open), decided and signed; the
    outbox then opens the lines. ``None`` when an earlier run already did it."""
    started = perf_counter()
    with c.uow() as uow:
        if uow.session.scalar(select(func.count()).select_from(origination.Application)):
            return None
        status = decisioning.graph_status(uow)
    if not status.get("nodes"):
        with c.uow() as uow:
            decisioning.build_graph(uow, lake=c.lake_dir, clock=c.clock)
            uow.commit()
    label = _publish(c, demo_decision_strategy(c, models))
    stream = generate_applicants(
        sandbox_dir,
        offers=offers,
        offer_version_id=version_id,
        settings=ApplicantSettings(seed=seed, start=on, days=1),
    )
    requests = stream.requests
    kinds = dict(zip(stream.truth["application_ref"], stream.truth["kind"], strict=True))
    texts = {k: consents.consent_text(k, language="zh") for k in REQUIRED_CONSENTS}
    outcomes: dict[str, Counter[str]] = {k: Counter() for k in ("offer", "existing", "ring")}
    refused: Counter[str] = Counter()
    signed = 0
    with Progress(
        TextColumn("[bold]{task.description:<30}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("applications decided", total=requests.height)
        for row in requests.iter_rows(named=True):
            kind = kinds[row["application_ref"]]
            try:
                status, did_sign = _apply_one(c, row, on=on, texts=texts)
            except DomainError as exc:  # refused at submission: the customer sees why
                refused[exc.code] += 1
                outcomes[kind]["refused"] += 1
            else:
                outcomes[kind][status] += 1
                signed += did_sign
            bar.update(task, advance=1)
    while c.dispatcher.run_once().delivered:  # servicing opens the lines of the signed contracts
        pass
    with c.uow() as uow:
        lines = uow.session.scalar(
            select(func.count()).select_from(CreditLine).where(CreditLine.application_id.is_not(None))
        )
    quality = decision_quality(applied_decisions(c), customer_truth(sandbox_dir))
    return ApplyResult(
        applications=requests.height,
        by_kind=stream.counts(),
        outcomes={k: dict(v) for k, v in outcomes.items()},
        refused=dict(refused),
        signed=signed,
        lines=int(lines or 0),
        quality=quality,
        strategy=label,
        seconds=perf_counter() - started,
    )


def print_applications(console: Console, result: ApplyResult) -> None:
    table = RichTable(
        title=f"A day of online applications, decided by {result.strategy}", title_justify="left"
    )
    for col in ("applicants", "applied", "approved", "referred", "declined", "refused at submission"):
        table.add_column(col, justify="left" if col == "applicants" else "right")
    names = {
        "offer": "with a pre-approved offer",
        "existing": "customers without an offer",
        "ring": "fraud-ring members",
    }
    total: Counter[str] = Counter()
    for kind, label in names.items():
        o = result.outcomes.get(kind, {})
        n = sum(o.values())
        total.update(o)
        table.add_row(
            label,
            f"{n:,}",
            f"{o.get('approved', 0):,}",
            f"{o.get('referred', 0):,}",
            f"{o.get('declined', 0):,}",
            f"{o.get('refused', 0):,}",
        )
    table.add_row(
        "[bold]all",
        f"[bold]{sum(total.values()):,}",
        f"[bold]{total.get('approved', 0):,}",
        f"{total.get('referred', 0):,}",
        f"{total.get('declined', 0):,}",
        f"{total.get('refused', 0):,}",
    )
    console.print(table)
    if result.refused:
        console.print(
            "  refused at submission: "
            + ", ".join(f"{code} {n:,}" for code, n in sorted(result.refused.items()))
        )
    console.print(
        f"  {result.signed:,} approved customers signed the e-contract; servicing opened {result.lines:,} "
        "credit lines from the accepted contracts."
    )
    print_quality(console, result.quality)
