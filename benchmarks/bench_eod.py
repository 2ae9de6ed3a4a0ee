"""Benchmark: one end of day over a book of active loans (``creditfactory bench eod``).

For each database (SQLite, and PostgreSQL when reachable) the benchmark builds a fresh book of
``loans`` active loans on the farmer revolving line product (6 monthly instalments each, start
dates spread over the past 60 days, so that on the business date some instalments fall due,
some are overdue and accrue penalty interest, and the classification moves), with every
disbursement posted to the ledger and the journal folded (``ledger.fold``), as the closes before
the business date would have left it; then it runs one end of day and times each step, the
day's own fold included.
The baseline, in the same process, is a naive loop over a 10,000-loan sample doing the same
day's work one ORM loan at a time with the Decimal model (accrual, due and overdue instalments,
days past due, penalty interest, classification), each posting its own journal entry.

Targets (2 cores): the whole end of day for 1,000,000 loans under 60 s on PostgreSQL and under
120 s on SQLite; at least 50× the per-loan loop's rate; memory bounded by the chunk size.
"""

from __future__ import annotations

import resource
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select, text

from creditfactory import ledger
from creditfactory.bootstrap import Container, build, register_eod_steps
from creditfactory.cli.bench import drop_scratch_database, scratch_database
from creditfactory.clock import FixedClock
from creditfactory.config import Settings
from creditfactory.jobs import open_business_date, run_eod
from creditfactory.servicing import service
from creditfactory.servicing.model import (
    Accrual,
    ClassificationPolicy,
    Tier,
    classify,
    days_past_due,
    load_products,
    months_current,
    sample_products_dir,
)
from creditfactory.servicing.store import CreditLine, Instalment, Loan

BUSINESS_DATE = date(2025, 6, 30)
PRODUCT = "farmer_revolving_line"
TERM = 6
SCRATCH = "cf_bench_eod"  # the PostgreSQL database of a run, dropped after it


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _templates(product: Any) -> list[Any]:
    """Schedules for a grid of amounts × start dates; loans reuse them (identical arithmetic)."""
    out = []
    for days_ago in range(1, 61):
        start = BUSINESS_DATE - timedelta(days=days_ago)
        for amount in range(2_000, 52_000, 5_000):
            out.append(
                product.schedule(
                    principal=Decimal(amount), term=TERM, start=start, method="equal_installment"
                )
            )
    return out


def build_book(c: Container, loans: int, console: Any) -> None:
    register_eod_steps()
    with c.uow() as uow:
        for product in load_products(sample_products_dir()).values():
            service.define_product(uow.session, product, clock=c.clock)
        ledger.ensure_chart(uow.session)
        open_business_date(uow.session, on=BUSINESS_DATE, clock=c.clock)
        product = service.get_product(uow.session, PRODUCT)
        uow.commit()
    templates = _templates(product)
    rng = np.random.default_rng(7)
    pick = rng.integers(0, len(templates), loans)
    now = c.clock.now()
    chunk = 50_000
    t0 = time.perf_counter()
    for lo in range(0, loans, chunk):
        hi = min(lo + chunk, loans)
        with c.uow() as uow:
            s = uow.session
            conn = s.connection()
            line_rows, loan_rows, inst_rows, entries = [], [], [], []
            for k in range(lo, hi):
                sch = templates[int(pick[k])]
                first = sch.instalments[0]
                amount = (
                    sch.total_principal
                    if hasattr(sch, "total_principal")
                    else sum(i.principal for i in sch.instalments)
                )
                loan_id = k + 1
                line_rows.append(
                    {
                        "id": loan_id,
                        "customer_id": f"C{k:010d}",
                        "product_code": PRODUCT,
                        "limit_amount": Decimal(60000),
                        "used_amount": amount,
                        "annual_rate": product.annual_rate,
                        "status": "active",
                        "opened_date": first.start_date,
                        "expiry_date": BUSINESS_DATE + timedelta(days=900),
                        "version": 1,
                        "created_at": now,
                    }
                )
                loan_rows.append(
                    {
                        "id": loan_id,
                        "line_id": loan_id,
                        "customer_id": f"C{k:010d}",
                        "product_code": PRODUCT,
                        "method": "equal_installment",
                        "day_count": str(product.day_count),
                        "rounding": str(product.rounding),
                        "principal": amount,
                        "annual_rate": product.annual_rate,
                        "penalty_rate": product.effective_penalty_rate,
                        "grace_days": product.grace_days,
                        "term": TERM,
                        "start_date": first.start_date,
                        "maturity_date": sch.instalments[-1].due_date,
                        "status": "active",
                        "outstanding_principal": amount,
                        "interest_receivable": Decimal(0),
                        "penalty_receivable": Decimal(0),
                        "accrual_carry": 0,
                        "penalty_carry": 0,
                        "last_accrued_date": BUSINESS_DATE - timedelta(days=1),
                        "dpd": 0,
                        "tier": "normal",
                        "current_since": first.start_date - timedelta(days=1),
                        "version": 1,
                        "created_at": now,
                    }
                )
                for i in sch.instalments:
                    inst_rows.append(
                        {
                            "loan_id": loan_id,
                            "number": i.number,
                            "start_date": i.start_date,
                            "due_date": i.due_date,
                            "days": i.days,
                            "principal": i.principal,
                            "interest": i.interest,
                            "paid_principal": Decimal(0),
                            "paid_interest": Decimal(0),
                            "status": "overdue"
                            if i.due_date < BUSINESS_DATE - timedelta(days=3)
                            else ("due" if i.due_date < BUSINESS_DATE else "pending"),
                        }
                    )
                entries.append(
                    ledger.disbursement(
                        source_key=f"disburse:{loan_id}",
                        value_date=first.start_date,
                        subledger=f"loan:{loan_id}",
                        amount=amount,
                    )
                )
            conn.execute(insert(CreditLine.__table__), line_rows)
            conn.execute(insert(Loan.__table__), loan_rows)
            conn.execute(insert(Instalment.__table__), inst_rows)
            ledger.post_many(s, entries, now=now)
            uow.commit()
        console.print(f"    book: {hi:,} loans ({time.perf_counter() - t0:.0f} s)")
    with c.uow() as uow:  # the journal as the closes before the business date leave it: folded
        folded = ledger.fold(uow.session, now=c.clock.now())
        uow.commit()
    console.print(f"    journal folded: {folded.lines:,} lines")
    with c.uow() as uow:  # fresh planner statistics after the bulk load (PostgreSQL)
        if uow.session.get_bind().dialect.name == "postgresql":
            uow.session.execute(text("ANALYZE"))
            uow.commit()
    with c.uow() as uow:  # loans whose first instalment is overdue start the day overdue
        uow.session.execute(
            text(
                "UPDATE servicing_loan SET status = 'overdue', dpd = 1 WHERE id IN "
                "(SELECT loan_id FROM servicing_instalment WHERE status = 'overdue')"
            )
        )
        uow.commit()


def naive_loop(c: Container, sample: int) -> float:
    """The same day's work, one ORM loan at a time with the Decimal model: accrue the day's
    interest, mark instalments due and overdue, days past due, penalty interest on overdue
    principal, classification; each posting its own journal entry."""
    day = BUSINESS_DATE
    month_end = (day + timedelta(days=1)).day == 1
    policy = ClassificationPolicy()
    t0 = time.perf_counter()
    with c.uow() as uow:
        s = uow.session
        product = service.get_product(s, PRODUCT)
        accrual = Accrual(product.rounding_policy)
        ids = list(s.scalars(select(Loan.id).order_by(Loan.id).limit(sample)))

        def book(entry: Any, key: str, loan_id: int, amount: Decimal) -> None:
            made = entry(source_key=key, value_date=day, subledger=f"loan:{loan_id}", amount=amount)
            ledger.post(s, made, now=c.clock.now())

        for loan_id in ids:
            loan = s.get(Loan, loan_id)
            assert loan is not None
            instalments = list(
                s.scalars(select(Instalment).where(Instalment.loan_id == loan_id).order_by(Instalment.number))
            )
            running = [i for i in instalments if i.start_date <= day < i.due_date]
            if running:
                posted, _carry = accrual.step(
                    loan.outstanding_principal, loan.annual_rate, product.day_count, Decimal(0)
                )
                if posted > 0:
                    book(ledger.interest_accrual, f"naive:{loan_id}:{day}", loan_id, posted)
                    loan.interest_receivable += posted
            overdue_principal = Decimal(0)
            oldest = None
            for inst in instalments:
                if inst.status == "pending" and inst.due_date <= day:
                    inst.status = "due"
                if inst.status == "due" and inst.due_date < day - timedelta(days=loan.grace_days):
                    inst.status = "overdue"
                if inst.status in ("due", "overdue"):
                    oldest = inst.due_date if oldest is None else min(oldest, inst.due_date)
                if inst.status == "overdue":
                    overdue_principal += inst.principal - inst.paid_principal
            loan.dpd = days_past_due(oldest, day, loan.grace_days)
            loan.oldest_unpaid_due = oldest
            loan.status = "overdue" if loan.dpd > 0 else "active"  # cured once nothing is past grace
            if overdue_principal > 0:
                penalty, _carry = accrual.step(
                    overdue_principal, loan.penalty_rate, product.day_count, Decimal(0)
                )
                if penalty > 0:
                    book(ledger.penalty_accrual, f"naive-penalty:{loan_id}:{day}", loan_id, penalty)
                    loan.penalty_receivable += penalty
            restart = month_end and loan.dpd > 0
            months = 0 if restart else months_current(loan.current_since, day)
            loan.tier = classify(
                dpd=loan.dpd, previous=Tier(loan.tier), months_current=months, policy=policy
            ).value
            if restart:
                loan.current_since = day
            s.flush()
        uow.rollback()  # the baseline only measures; the books stay as they were
    return len(ids) / (time.perf_counter() - t0)


def run_one(label: str, settings: Settings, loans: int, sample: int, console: Any) -> dict[str, Any]:
    c = build(settings, clock=FixedClock(datetime(2025, 6, 30, 20, tzinfo=UTC)))
    try:
        console.print(f"[bold]{label}[/]: building a book of {loans:,} loans …")
        t0 = time.perf_counter()
        build_book(c, loans, console)
        setup = time.perf_counter() - t0
        console.print(f"[bold]{label}[/]: naive per-loan loop over {sample:,} loans …")
        naive_rate = naive_loop(c, sample)
        console.print(f"[bold]{label}[/]: end of day {BUSINESS_DATE} …")
        t0 = time.perf_counter()
        report = run_eod(sessions=c.sessions, clock=c.clock, chunk_size=50_000)
        total = time.perf_counter() - t0
        steps = {s.name: {"seconds": s.seconds, "items": s.items} for s in report.steps}
        return {
            "setup": setup,
            "total": total,
            "steps": steps,
            "naive_rate": naive_rate,
            "peak_mb": _peak_mb(),
        }
    finally:
        c.close()


def run(*, loans: int, sample: int, workdir: Path, postgres_url: str | None, console: Any) -> dict[str, Any]:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    results: dict[str, dict[str, Any]] = {}
    results["sqlite"] = run_one("SQLite", Settings(data_dir=workdir / "sqlite"), loans, sample, console)
    if postgres_url:
        try:
            url = scratch_database(postgres_url, SCRATCH)
        except Exception as exc:  # reported, not hidden
            console.print(f"PostgreSQL not used: {exc}")
        else:
            results["postgresql"] = run_one(
                "PostgreSQL", Settings(data_dir=workdir / "pg", database_url=url), loans, sample, console
            )
    rows = []
    figures: dict[str, Any] = {"loans": loans}
    for db, r in results.items():
        for name, st in r["steps"].items():
            rows.append(
                {
                    "stage": f"{db} {name}",
                    "loans": st["items"],
                    "seconds": st["seconds"],
                    "loans/s": st["items"] / st["seconds"] if st["seconds"] else 0.0,
                    "vs naive": "",
                }
            )
        rate = loans / r["total"]
        rows.append(
            {
                "stage": f"{db} end of day (total)",
                "loans": loans,
                "seconds": r["total"],
                "loans/s": rate,
                "vs naive": f"{rate / r['naive_rate']:.0f}x",
            }
        )
        rows.append(
            {
                "stage": f"{db} naive per-loan ORM loop",
                "loans": sample,
                "seconds": sample / r["naive_rate"],
                "loans/s": r["naive_rate"],
                "vs naive": "1x",
            }
        )
        figures[f"{db}_eod_seconds"] = round(r["total"], 2)
        figures[f"{db}_loans_per_s"] = round(rate)
        figures[f"{db}_naive_loans_per_s"] = round(r["naive_rate"])
        figures[f"{db}_speedup_vs_naive"] = round(rate / r["naive_rate"], 1)
        figures[f"{db}_setup_seconds"] = round(r["setup"], 1)
        figures[f"{db}_peak_mb"] = round(r["peak_mb"])
    shutil.rmtree(workdir, ignore_errors=True)
    if postgres_url and "postgresql" in results:
        drop_scratch_database(postgres_url, SCRATCH)
    notes = {"targets": "1M loans: < 120 s on SQLite, < 60 s on PostgreSQL; >= 50x the per-loan loop"}
    return {"rows": rows, "figures": figures, "notes": notes}
