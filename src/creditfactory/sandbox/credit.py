"""Loans with the bank, their monthly performance, and credit-bureau report summaries.

Loans: about a third of customers (more among merchants and farmers, fewer among the very old,
none among the freshly opened ring accounts) hold one to three loans opened in the six years
before ``as_of``. Repayment is monthly on the day of the month the loan was opened, in equal
principal instalments (one-year agricultural loans pay interest monthly and principal at
maturity).

Delinquency is a small state machine run month by month over the loan's life. A customer with
risk trait ``R`` misses an instalment with monthly chance ``m = max(0.012 exp(1.2 R), 1.25 h)``
(four times that during a distress episode), where ``h = -ln(1 - pd_hist) / 12`` is the monthly
default hazard of the historic propensity; each following month the arrears are cured with
chance ``c = 1 - (h / m)^(1/3)``. Three months without a cure take the loan past 90 days: a
default, written off six to twelve months later unless recovered. So the monthly default hazard
matches ``pd_hist``, while short delinquencies are frequent and rise steeply with risk.

Bureau reports: pulled every six months (at a customer-specific phase) for customers who
authorised it, from the month they became a customer. Counts and utilisation are driven by the
risk trait, persistent per-customer noise and, when a distress episode is under way, more
inquiries and fuller cards. Thin files (no credit history) are commoner among the young, the
``other`` segment and ring members. The worst DPD includes delinquency on loans with this bank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from creditfactory.contract.tables import (
    BUREAU_REPORTS,
    GUARANTEE_TYPES,
    LOAN_PERFORMANCE,
    LOAN_PRODUCTS,
    LOAN_STATUSES,
    LOANS,
)
from creditfactory.sandbox.config import SandboxConfig
from creditfactory.sandbox.frames import contract_frame, pick, prefixed_ids
from creditfactory.sandbox.model import OTHER, Core, Truth
from creditfactory.sandbox.people import Profile
from creditfactory.sandbox.rand import Family, choice_rows, group_offsets, month_first_day, sigmoid, stream
from creditfactory.sandbox.timeline import Timeline

CONSUMER, BUSINESS, AGRICULTURAL, MORTGAGE = 0, 1, 2, 3
CREDIT, GUARANTEED, COLLATERAL, MORTGAGE_SECURITY = 0, 1, 2, 3
ACTIVE, SETTLED, OVERDUE, WRITTEN_OFF = 0, 1, 2, 3
#: Years of loan history simulated before the window.
LOOKBACK_MONTHS = 72

#: Product weights by segment (CONSUMER, BUSINESS, AGRICULTURAL, MORTGAGE).
PRODUCT_BY_SEGMENT = np.array(
    [
        [0.20, 0.00, 0.80, 0.00],  # farmer
        [0.15, 0.85, 0.00, 0.00],  # merchant
        [0.80, 0.00, 0.00, 0.20],  # salaried
        [0.90, 0.00, 0.10, 0.00],  # other
    ]
)
TERMS = np.array([12, 24, 36, 120, 240, 360])
TERM_BY_PRODUCT = np.array(
    [
        [0.40, 0.30, 0.30, 0.0, 0.0, 0.0],
        [0.60, 0.25, 0.15, 0.0, 0.0, 0.0],
        [0.75, 0.25, 0.00, 0.0, 0.0, 0.0],
        [0.00, 0.00, 0.00, 0.3, 0.4, 0.3],
    ]
)
#: (low, high) multiple of annual income, and (floor, cap) in yuan, by product.
PRINCIPAL = np.array(
    [
        [0.3, 1.2, 10_000, 300_000],
        [0.5, 2.5, 30_000, 1_000_000],
        [0.4, 1.5, 10_000, 500_000],
        [3.0, 8.0, 150_000, 1_200_000],
    ]
)
BASE_RATE = np.array([0.055, 0.052, 0.048, 0.039])
GUARANTEE_BY_PRODUCT = np.array(
    [
        [0.70, 0.30, 0.00, 0.00],
        [0.40, 0.35, 0.25, 0.00],
        [0.55, 0.45, 0.00, 0.00],
        [0.00, 0.00, 0.00, 1.00],
    ]
)


@dataclass(frozen=True, slots=True)
class Credit:
    loans: pl.DataFrame
    performance: pl.DataFrame
    bureau: pl.DataFrame
    written_off_customer: np.ndarray  # positions (in chunk) of customers with a written-off loan
    written_off_day: np.ndarray  # day of that write-off
    has_loan: np.ndarray  # bool per customer


def build_credit(
    config: SandboxConfig, chunk: int, core: Core, truth: Truth, profile: Profile, timeline: Timeline
) -> Credit:
    rng = stream(config.seed, Family.CREDIT, chunk)
    n, months = core.n, timeline.months
    seg = core.segment.astype(np.int64)
    as_of = timeline.as_of

    seg_effect = np.array([0.2, 0.5, 0.0, -0.8])[seg]
    p_loan = sigmoid(-0.95 + 0.35 * core.income + 0.25 * core.need + seg_effect - 0.6 * (core.age > 65))
    borrower = (rng.random(n) < p_loan) & ~core.in_ring & (as_of - profile.opened_day > 60)
    u = rng.random(n)
    count = np.where(borrower, 1 + (u < 0.3) + (u < 0.08), 0)
    owner, number = group_offsets(count)
    k = len(owner)

    earliest = np.maximum(profile.opened_day[owner], as_of - LOOKBACK_MONTHS * 30)
    open_day = earliest + np.floor(rng.random(k) * np.maximum(as_of - 10 - earliest, 1)).astype(np.int64)
    dom = open_day - month_first_day(
        open_day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    )
    open_day = open_day - np.maximum(dom - 27, 0)  # repayment days 1..28
    due_dom = open_day - month_first_day(
        open_day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    )
    open_m = timeline.month_index(open_day)

    product = choice_rows(rng, PRODUCT_BY_SEGMENT[seg[owner]])
    term = TERMS[choice_rows(rng, TERM_BY_PRODUCT[product])]
    income = core.annual_income[owner]
    pr = PRINCIPAL[product]
    principal_yuan = np.clip(np.round(income * rng.uniform(pr[:, 0], pr[:, 1]), -3), pr[:, 2], pr[:, 3])
    principal = (principal_yuan * 100).astype(np.int64)
    perceived = core.risk[owner] + rng.normal(0.0, 0.7, k)
    rate = np.clip(BASE_RATE[product] + 0.008 * perceived, 0.0345, 0.15)
    rate_scaled = np.round(rate * 10_000).astype(np.int64) * 10_000
    guarantee = choice_rows(rng, GUARANTEE_BY_PRODUCT[product])
    bullet = (product == AGRICULTURAL) & (term == 12)
    maturity_day = _add_months(open_day, term)

    # --- month-by-month repayment --------------------------------------------------------------
    pd_hist = truth.pd_hist[owner]
    hazard = -np.log1p(-np.clip(pd_hist, 0.0, 0.99)) / 12.0
    miss = np.clip(np.maximum(0.012 * np.exp(1.2 * core.risk[owner]), 1.25 * hazard), 0.0, 0.5)
    cure = 1.0 - np.cbrt(np.minimum(hazard / miss, 1.0))
    prepay = np.where(product == MORTGAGE, 0.004, 0.012)
    instalment_principal = principal // term
    grid = np.arange(-LOOKBACK_MONTHS, months)
    grid_start = month_first_day(timeline.first_month + grid)
    grid_end = month_first_day(timeline.first_month + grid + 1) - 1

    status = np.full(k, ACTIVE)
    paid = np.zeros(k, dtype=np.int64)  # instalments paid
    missed = np.zeros(k, dtype=np.int64)  # instalments due and unpaid
    first_miss = np.full(k, -1, dtype=np.int64)  # day of the first unpaid due date
    defaulted = np.zeros(k, dtype=bool)
    default_m = np.full(k, 10**6, dtype=np.int64)
    writeoff_after = rng.integers(6, 13, k)
    close_day = np.full(k, -1, dtype=np.int64)
    balance_rec = np.zeros((k, months), dtype=np.int64)
    dpd_rec = np.zeros((k, months), dtype=np.int64)
    overdue_rec = np.zeros((k, months), dtype=np.int64)
    live_rec = np.zeros((k, months), dtype=bool)
    distress_m = core.distress_month[owner]

    for g, t in enumerate(grid):
        started = open_m <= t
        is_open = started & (status == ACTIVE)
        j = t - open_m  # instalment number due this month
        due_now = is_open & (j >= 1) & (j <= term)
        due_day = grid_start[g] + due_dom
        u1, u2, u3 = rng.random((3, k))
        strained = (distress_m >= 0) & (t >= distress_m)
        current = is_open & (missed == 0)
        late = is_open & (missed > 0)

        # Current loans: prepay, miss, or pay.
        prepaid = current & due_now & (u1 < prepay) & (j < term)
        status = np.where(prepaid, SETTLED, status)
        close_day = np.where(prepaid, due_day, close_day)
        misses = current & due_now & ~prepaid & (u2 < np.where(strained, np.minimum(4 * miss, 0.6), miss))
        pays = current & due_now & ~prepaid & ~misses
        paid = paid + pays
        first_miss = np.where(misses, due_day, first_miss)
        missed = missed + misses

        # Loans in arrears: cure (pay everything due) before default, or fall further behind.
        cures = late & ~defaulted & (u3 < cure)
        paid = np.where(cures, paid + missed + due_now, paid)
        missed = np.where(cures, 0, missed + (late & ~cures & due_now))
        first_miss = np.where(cures, -1, first_miss)
        recovers = late & defaulted & (u3 < 0.02)
        paid = np.where(recovers, term, paid)
        missed = np.where(recovers, 0, missed)
        status = np.where(recovers, SETTLED, status)
        close_day = np.where(recovers, grid_start[g] + _day_in_month(u1), close_day)

        finished = (status == ACTIVE) & (paid >= term)
        status = np.where(finished, SETTLED, status)
        close_day = np.where(finished & (close_day < 0), due_day, close_day)

        still = status == ACTIVE
        dpd = np.where(still & (missed > 0), grid_end[g] - first_miss, 0)
        newly = still & ~defaulted & (dpd >= 90)
        default_m = np.where(newly, t, default_m)
        defaulted = defaulted | newly
        writes = still & defaulted & (t - default_m >= writeoff_after)
        status = np.where(writes, WRITTEN_OFF, status)
        close_day = np.where(writes, grid_start[g] + _day_in_month(u2), close_day)

        if t >= 0:
            out = (status == ACTIVE) & started
            paid_principal = np.where(
                bullet,
                np.where(paid >= term, principal, 0),
                np.where(paid >= term, principal, instalment_principal * np.minimum(paid, term)),
            )
            bal = principal - paid_principal
            interest = np.round(bal * (rate_scaled / 1e8) / 12.0).astype(np.int64)
            due_principal = np.where(
                bullet,
                np.where(paid + missed >= term, principal, 0),
                np.minimum(instalment_principal * missed, bal),
            )
            live_rec[:, t] = out
            balance_rec[:, t] = np.where(out, bal, 0)
            dpd_rec[:, t] = np.where(out, np.where(missed > 0, grid_end[g] - first_miss, 0), 0)
            overdue_rec[:, t] = np.where(out & (missed > 0), due_principal + missed * interest, 0)

    close_day = np.where(close_day >= 0, np.minimum(np.maximum(close_day, open_day), as_of), -1)
    final_status = np.where(status == ACTIVE, np.where(missed > 0, OVERDUE, ACTIVE), status)

    loan_ids = prefixed_ids("L", (core.index[owner] + 1) * 100 + number + 1, 11)
    closed = close_day >= 0
    close_s = pl.Series(np.where(closed, close_day, 0).astype(np.int32), dtype=pl.Int32).cast(pl.Date)
    close_s = close_s.scatter(np.flatnonzero(~closed), None) if (~closed).any() else close_s
    loans = contract_frame(
        LOANS,
        {
            "loan_id": loan_ids,
            "customer_id": profile.customer_id.gather(owner),
            "product": pick(LOAN_PRODUCTS, product),
            "open_date": open_day,
            "maturity_date": maturity_day,
            "principal": principal,
            "annual_rate": rate_scaled,
            "guarantee_type": pick(GUARANTEE_TYPES, guarantee),
            "status": pick(LOAN_STATUSES, final_status),
            "close_date": close_s,
        },
    )
    flat = np.flatnonzero(live_rec.ravel())
    performance = contract_frame(
        LOAN_PERFORMANCE,
        {
            "loan_id": loan_ids.gather(flat // months),
            "month": timeline.start[flat % months],
            "balance": balance_rec.ravel()[flat],
            "dpd": dpd_rec.ravel()[flat],
            "overdue_amount": overdue_rec.ravel()[flat],
        },
    )

    own_dpd = np.zeros((n, months), dtype=np.int64)
    if k:
        np.maximum.at(own_dpd, owner, dpd_rec)
    wo = final_status == WRITTEN_OFF
    bureau = _bureau(config, chunk, core, profile, timeline, own_dpd, borrower)
    return Credit(
        loans=loans,
        performance=performance,
        bureau=bureau,
        written_off_customer=owner[wo],
        written_off_day=close_day[wo],
        has_loan=borrower,
    )


def _day_in_month(u: np.ndarray) -> np.ndarray:
    """A day offset 0..27 within a month from a uniform draw."""
    return np.floor(u * 28).astype(np.int64)


def _add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    m0 = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    dom = days - month_first_day(m0)
    return month_first_day(m0 + months) + dom


WORST_DPD_CUTS = np.array([1.21, 1.85, 2.25, 2.62])


def _bureau(
    config: SandboxConfig,
    chunk: int,
    core: Core,
    profile: Profile,
    timeline: Timeline,
    own_dpd: np.ndarray,
    borrower: np.ndarray,
) -> pl.DataFrame:
    rng = stream(config.seed, Family.BUREAU, chunk)
    n, months = core.n, timeline.months
    seg = core.segment.astype(np.int64)
    authorised = rng.random(n) < np.where(borrower | core.in_ring, 0.97, 0.85)
    phase = rng.integers(0, 6, n)
    per = -(-months // 6)
    slots = phase[:, None] + 6 * np.arange(per)[None, :]
    first = np.maximum(profile.opened_month, 0)
    ok = authorised[:, None] & (slots < months) & (slots >= first[:, None])
    cust, _ = np.nonzero(ok)
    month = slots[ok]
    r = len(cust)
    report_day = np.minimum(timeline.start[month] + rng.integers(0, 28, r), timeline.as_of)
    report_day = np.maximum(report_day, np.minimum(profile.opened_day[cust], timeline.as_of))

    thin_p = sigmoid(
        -1.2 - 0.06 * (core.age - 30.0) + 0.6 * (seg == OTHER) + 0.4 * core.risk + 2.5 * core.in_ring
    )
    thin = (rng.random(n) < thin_p) & ~borrower
    z1, z2, z3 = rng.standard_normal((3, n))
    has_card = rng.random(n) < sigmoid(-0.6 + 0.8 * core.digital + 0.5 * core.income)
    card_limit = np.round(core.annual_income * rng.uniform(0.2, 0.8, n), -3)
    has_other = rng.random(n) < sigmoid(-1.1 + 0.5 * core.need + 0.3 * core.income + 0.3 * core.risk)
    other_amount = np.round(core.annual_income * rng.lognormal(-0.3 + 0.3 * core.risk, 0.8), -2)

    R = core.risk[cust]
    distress = (core.distress_month[cust] >= 0) & (month >= core.distress_month[cust])
    ring = core.in_ring[cust]
    inq_rate = np.exp(
        -0.45 + 0.65 * R + 0.35 * core.need[cust] + 0.3 * z1[cust] + 0.9 * distress + 1.2 * ring
    )
    inq12 = rng.poisson(inq_rate)
    inq3 = rng.binomial(inq12, np.where(distress, 0.55, 0.25))
    record = ~thin[cust]
    accounts = rng.poisson(np.exp(0.1 + 0.35 * core.income[cust] + 0.2 * core.need[cust] + 0.25 * R)) * record
    util = sigmoid(-1.3 + 1.0 * R + 0.5 * z2[cust] + 0.9 * distress + 0.3 * rng.standard_normal(r))
    limit = np.where(record & has_card[cust], card_limit[cust], 0.0)
    card_balance = np.round(limit * util)
    exposure = np.where(
        record & has_other[cust], np.round(other_amount[cust] * rng.uniform(0.6, 1.1, r), -2), 0.0
    )
    latent = 1.0 * R + 0.4 * z3[cust] + 0.3 * rng.standard_normal(r) + 0.8 * distress
    bucket = np.searchsorted(WORST_DPD_CUTS, latent, side="right")
    low = np.array([0, 1, 30, 60, 90])[bucket]
    high = np.array([0, 29, 59, 89, 180])[bucket]
    external = low + np.floor(rng.random(r) * (high - low + 1)).astype(np.int64)
    own = np.maximum.accumulate(own_dpd, axis=1)[cust, month]
    worst = np.where(record, np.maximum(external, own), 0)
    delinquent = np.where(worst >= 30, 1 + rng.poisson(0.3 + 0.2 * np.maximum(R, 0.0)), 0)

    return contract_frame(
        BUREAU_REPORTS,
        {
            "customer_id": profile.customer_id.gather(cust),
            "report_date": report_day,
            "has_record": record,
            "inquiries_3m": inq3,
            "inquiries_12m": inq12,
            "open_accounts": accounts + (record & has_card[cust]),
            "card_limit": (limit * 100).astype(np.int64),
            "card_balance": (card_balance * 100).astype(np.int64),
            "total_exposure": (exposure * 100).astype(np.int64),
            "worst_dpd_24m": worst,
            "delinquent_accounts": delinquent,
        },
    )
