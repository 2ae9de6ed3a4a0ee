"""Deposit accounts, their monthly flows and the customers' monthly assets.

Every customer has a settlement account (slot 0: current for merchants, savings otherwise)
opened on the first day of the relationship; it receives payroll, acquiring settlements,
subsidies and all other income and pays the household's spending. Some customers have a
second and third account (savings or time deposits).

Balances follow ``end = max(0, previous + inflow - wanted_outflow)`` and the outflow booked is
``previous + inflow - end``, in integer fen, so every row satisfies
``end_balance = previous end_balance + inflow - outflow`` and no balance is negative. Spending is
``spend_ratio`` times income (riskier households spend more of what they earn) with
festival and school-fee seasonality and occasional large outlays, so risky customers run their
accounts down to zero and their balances swing more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from creditfactory.contract.tables import ACCOUNT_FLOWS, ACCOUNT_PRODUCTS, ASSETS_MONTHLY, DEPOSIT_ACCOUNTS
from creditfactory.sandbox.economy import SPEND_SEASON, Economy
from creditfactory.sandbox.frames import contract_frame, pick, prefixed_ids
from creditfactory.sandbox.model import MERCHANT, Core
from creditfactory.sandbox.people import Profile
from creditfactory.sandbox.rand import sigmoid
from creditfactory.sandbox.timeline import Timeline

CURRENT, SAVINGS, TIME_DEPOSIT = 0, 1, 2
ACTIVE, DORMANT, CLOSED = 0, 1, 2
SLOTS = 3
#: Time-deposit terms in months and their annual rates.
TD_TERMS = np.array([12, 24, 36])
TD_RATES = np.array([0.0145, 0.0165, 0.0175])
#: Main-account transactions per month, by segment.
TXN_BASE = np.array([5.0, 40.0, 14.0, 4.0])


@dataclass(frozen=True, slots=True)
class Deposits:
    accounts: pl.DataFrame
    flows: pl.DataFrame
    assets: pl.DataFrame


def _fen(x: np.ndarray) -> np.ndarray:
    return np.round(x * 100.0).astype(np.int64)


def _run_balances(
    start: np.ndarray, inflow: np.ndarray, wanted_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Month-end balances and booked outflows (int64 fen) from wanted outflows."""
    months = inflow.shape[1]
    balance = np.empty_like(inflow)
    out = np.empty_like(inflow)
    prev = start.copy()
    for m in range(months):
        avail = prev + inflow[:, m]
        # A wanted outflow is never negative (rounding of small wishes can leave -1 fen).
        end = np.minimum(np.maximum(avail - np.maximum(wanted_out[:, m], 0), 0), np.maximum(avail, 0))
        out[:, m] = avail - end
        balance[:, m] = end
        prev = end
    return balance, out


def build_deposits(
    rng: np.random.Generator, core: Core, profile: Profile, econ: Economy, timeline: Timeline
) -> Deposits:
    """Deposit tables of a block of customers, drawing from ``rng``."""
    n, months = core.n, timeline.months
    seg = core.segment.astype(np.int64)
    cal = timeline.calendar_month - 1
    income_month = core.annual_income / 12.0
    active = econ.active
    opened_m = profile.opened_month
    in_window = opened_m >= 0

    # --- slot 0: the settlement account --------------------------------------------------------
    payroll = _fen(econ.payroll)
    acquiring = _fen(econ.sales * econ.acquiring_share[:, None])
    subsidy = _fen(econ.subsidy)
    banked = rng.uniform(0.3, 0.8, n)  # share of cash takings and farm income paid in
    cash_deposit = econ.sales * ((1 - econ.acquiring_share) * banked)[:, None]
    farm_deposit = econ.farm_income * (0.35 + 0.6 * banked)[:, None]
    gifts = (rng.random((n, months)) < 0.3) * income_month[:, None] * rng.lognormal(
        -1.6, 0.8, (n, months)
    ) + np.isin(cal, (0, 1))[None, :] * income_month[:, None] * 0.15
    opening = np.zeros((n, months))
    rows = np.flatnonzero(in_window)
    opening[rows, opened_m[rows]] = income_month[rows] * rng.lognormal(0.0, 0.6, len(rows))
    other = _fen(np.where(active, cash_deposit + farm_deposit + gifts + econ.transfers + opening, 0.0))
    inflow0 = payroll + acquiring + subsidy + other

    # Spending through the account: merchants pay suppliers for what passed through it; the
    # household spends ``spend_ratio`` of the income it banks on average, smoothly.
    sales_banked = econ.sales * (econ.acquiring_share + (1 - econ.acquiring_share) * banked)[:, None]
    cogs = sales_banked * (1 - econ.margin)[:, None]
    banked_income = np.where(active, inflow0 / 100.0 - opening - cogs, 0.0)
    permanent = banked_income.sum(axis=1) / np.maximum(active.sum(axis=1), 1)
    spend = (
        (permanent * econ.spend_ratio)[:, None]
        * SPEND_SEASON[0, cal][None, :]
        * rng.lognormal(-0.02, 0.2, (n, months))
    )
    big_p = 0.015 + 0.03 * sigmoid(core.risk - 1.0)
    big = (rng.random((n, months)) < big_p[:, None]) * permanent[:, None] * rng.uniform(2.0, 8.0, (n, months))
    wanted0 = _fen(np.where(active, spend + big + cogs * rng.lognormal(0.0, 0.08, (n, months)), 0.0))
    buffer_months = rng.lognormal(0.7 - 0.6 * core.risk + 0.35 * core.income, 0.8)
    start0 = np.where(in_window, 0, _fen(income_month * buffer_months))
    bal0, out0 = _run_balances(start0, inflow0, wanted0)

    activity = (inflow0 + out0).astype(np.float64)
    mean_act = np.maximum(activity.sum(axis=1) / np.maximum(active.sum(axis=1), 1), 1.0)
    lam0 = TXN_BASE[seg] * (0.6 + 0.8 * sigmoid(1.2 * core.digital))
    lam = lam0[:, None] * np.sqrt(np.clip(activity / mean_act[:, None], 0.05, 6.0))
    txn0 = rng.poisson(lam) + (inflow0 > 0) + (out0 > 0)
    txn0 = np.where(active, txn0, 0)

    # --- slots 1 and 2: more savings and time deposits -------------------------------------------
    p_more = sigmoid(-0.3 + 0.6 * core.income + 0.25 * (core.age - 45.0) / 15.0)
    extra = np.where(rng.random(n) < p_more, np.where(rng.random(n) < 0.3, 2, 1), 0)
    has = np.stack([np.ones(n, dtype=bool), extra >= 1, extra >= 2], axis=1)
    product = np.empty((n, SLOTS), dtype=np.int64)
    product[:, 0] = np.where(seg == MERCHANT, CURRENT, SAVINGS)
    product[:, 1] = np.where(rng.random(n) < 0.55, SAVINGS, TIME_DEPOSIT)
    product[:, 2] = np.where(rng.random(n) < 0.3, SAVINGS, TIME_DEPOSIT)
    open_day = np.empty((n, SLOTS), dtype=np.int64)
    open_day[:, 0] = profile.opened_day
    span = np.maximum(timeline.as_of - profile.opened_day, 1)
    for s in (1, 2):
        open_day[:, s] = profile.opened_day + np.floor(rng.random(n) * span).astype(np.int64)
    open_m = timeline.month_index(open_day)
    close_day = np.full((n, SLOTS), -1, dtype=np.int64)

    m_idx = np.arange(months)
    inflow = np.zeros((n, SLOTS, months), dtype=np.int64)
    outflow = np.zeros((n, SLOTS, months), dtype=np.int64)
    balance = np.zeros((n, SLOTS, months), dtype=np.int64)
    txn = np.zeros((n, SLOTS, months), dtype=np.int64)
    inflow[:, 0], outflow[:, 0], balance[:, 0], txn[:, 0] = inflow0, out0, bal0, txn0
    dormant_flag = np.zeros((n, SLOTS), dtype=bool)

    for s in (1, 2):
        # Savings accounts: occasional deposits and withdrawals; some dormant, some closed.
        sv = np.flatnonzero(has[:, s] & (product[:, s] == SAVINGS))
        k = len(sv)
        if k:
            om = open_m[sv, s]
            live = m_idx[None, :] >= om[:, None]
            dormant = (rng.random(k) < 0.25) & (om < -12)
            closing = (rng.random(k) < 0.12) & ~dormant
            lo = np.maximum(open_day[sv, s], timeline.window_start - 365)
            cday = lo + np.floor(rng.random(k) * np.maximum(timeline.as_of - lo, 1)).astype(np.int64)
            cday = np.where(closing, np.maximum(cday, open_day[sv, s]), -1)
            cm = np.where(closing, timeline.month_index(np.maximum(cday, 0)), months)
            scale = income_month[sv] * rng.lognormal(-0.7 + 0.3 * core.income[sv] - 0.3 * core.risk[sv], 0.7)
            ins = (rng.random((k, months)) < 0.3) * scale[:, None] * rng.lognormal(0.0, 0.5, (k, months))
            ins[np.flatnonzero(om >= 0), om[om >= 0]] += scale[om >= 0] * 2
            ins_f = _fen(np.where(live & ~dormant[:, None] & (m_idx[None, :] <= cm[:, None]), ins, 0.0))
            start = np.where(
                om >= 0,
                0,
                _fen(
                    income_month[sv] * rng.lognormal(-0.5 - 0.4 * core.risk[sv] + 0.4 * core.income[sv], 1.0)
                ),
            )
            start = np.where(dormant, _fen(rng.uniform(0.0, 800.0, k)), start)
            wd = rng.random((k, months)) < 0.15
            frac = rng.uniform(0.2, 1.0, (k, months))
            bal = np.empty((k, months), dtype=np.int64)
            out = np.empty((k, months), dtype=np.int64)
            prev = start
            for m in range(months):
                avail = prev + ins_f[:, m]
                want = np.where(wd[:, m] & ~dormant, np.round(avail * frac[:, m]).astype(np.int64), 0)
                want = np.where(m == cm, avail, want)
                want = np.where(m > cm, 0, want)
                end = np.maximum(avail - want, 0)
                out[:, m], bal[:, m] = avail - end, end
                prev = end
            inflow[sv, s], outflow[sv, s], balance[sv, s] = ins_f, out, bal
            t = (ins_f > 0).astype(np.int64) + (out > 0) + rng.poisson(0.3, (k, months)) * ~dormant[:, None]
            txn[sv, s] = np.where(live & (m_idx[None, :] <= cm[:, None]), t, 0)
            close_day[sv, s] = cday
            dormant_flag[sv, s] = dormant

        # Time deposits: principal at opening, interest at each maturity; some withdrawn at maturity.
        td = np.flatnonzero(has[:, s] & (product[:, s] == TIME_DEPOSIT))
        k = len(td)
        if k:
            term_i = rng.integers(0, 3, k)
            term, rate = TD_TERMS[term_i], TD_RATES[term_i]
            principal = np.maximum(
                np.round(
                    income_month[td] * rng.lognormal(1.2 - 0.4 * core.risk[td] + 0.3 * core.income[td], 0.8),
                    -3,
                ),
                1000.0,
            )
            om = open_m[td, s]
            closes_after = rng.geometric(0.3, k)  # the maturity at which it is withdrawn
            last_m = om + closes_after * term  # month of the withdrawal
            closed_before = last_m < 0
            cday = np.where(
                closed_before,
                timeline.window_start + last_m * 30 + 14,
                np.where(last_m <= months - 1, timeline.start[np.clip(last_m, 0, months - 1)] + 14, -1),
            )
            cday = np.where(cday >= 0, np.clip(cday, open_day[td, s], timeline.as_of), -1)
            # Columns for months -1 .. M-1, so the month before the window uses the same formula.
            cols = np.arange(-1, months)
            since = cols[None, :] - om[:, None]
            live = (since >= 0) & (cols[None, :] <= last_m[:, None])
            held = live & (cols[None, :] < last_m[:, None])
            renewals = np.minimum(np.where(since > 0, since // term[:, None], 0), closes_after[:, None] - 1)
            factor = 1.0 + rate * term / 12.0
            level = _fen(np.where(held, principal[:, None] * factor[:, None] ** renewals, 0.0))
            prev_i, bal_i = level[:, :-1], level[:, 1:]
            grew = np.maximum(bal_i - prev_i, 0)
            ins_i = np.where(live[:, 1:], grew, 0)
            out_i = np.where(live[:, 1:], prev_i + ins_i - bal_i, 0)
            inflow[td, s], outflow[td, s], balance[td, s] = ins_i, out_i, bal_i
            txn[td, s] = ((ins_i > 0) | (out_i > 0)).astype(np.int64)
            close_day[td, s] = cday

    # --- which account-months exist -----------------------------------------------------------
    close_m = np.where(close_day >= 0, timeline.month_index(np.maximum(close_day, 0)), months)
    exists = (
        has[:, :, None]
        & (m_idx[None, None, :] >= open_m[:, :, None])
        & (m_idx[None, None, :] <= close_m[:, :, None])
    )
    closed = close_day >= 0
    recent = max(months - 12, 0)
    quiet = txn[:, :, recent:].sum(axis=2) == 0
    status = np.where(
        closed,
        CLOSED,
        np.where(dormant_flag | (quiet & (product != TIME_DEPOSIT) & (open_m < recent)), DORMANT, ACTIVE),
    )

    acc_pos = np.flatnonzero(has.ravel())
    acc_customer, acc_slot = np.divmod(acc_pos, SLOTS)
    acc_ids = prefixed_ids("A", (core.index[acc_customer] + 1) * 10 + acc_slot + 1, 11)
    cids = profile.customer_id
    accounts = contract_frame(
        DEPOSIT_ACCOUNTS,
        {
            "account_id": acc_ids,
            "customer_id": cids.gather(acc_customer),
            "product": pick(ACCOUNT_PRODUCTS, product.ravel()[acc_pos]),
            "opened_date": open_day.ravel()[acc_pos],
            "closed_date": _optional_dates(close_day.ravel()[acc_pos]),
            "status": pick(("active", "dormant", "closed"), status.ravel()[acc_pos]),
        },
    )

    flat = np.flatnonzero(exists.ravel())
    acc_flat = flat // months
    row_customer, row_month = flat // (SLOTS * months), flat % months
    main_row = (acc_flat % SLOTS) == 0
    rank = np.full(n * SLOTS, -1, dtype=np.int64)
    rank[acc_pos] = np.arange(len(acc_pos))
    flows = contract_frame(
        ACCOUNT_FLOWS,
        {
            "account_id": acc_ids.gather(rank[acc_flat]),
            "month": timeline.start[flat % months],
            "inflow": inflow.ravel()[flat],
            "outflow": outflow.ravel()[flat],
            "payroll_in": np.where(main_row, payroll[row_customer, row_month], 0),
            "acquiring_in": np.where(main_row, acquiring[row_customer, row_month], 0),
            "subsidy_in": np.where(main_row, subsidy[row_customer, row_month], 0),
            "txn_count": txn.ravel()[flat],
            "end_balance": balance.ravel()[flat],
        },
    )

    deposit_balance = (balance * exists).sum(axis=1)
    wealth = _wealth(rng, core, econ, income_month, months)
    cust_rows = np.flatnonzero(active.ravel())
    dep_r = deposit_balance.ravel()[cust_rows]
    wealth_r = wealth.ravel()[cust_rows]
    assets = contract_frame(
        ASSETS_MONTHLY,
        {
            "customer_id": cids.gather(cust_rows // months),
            "month": timeline.start[cust_rows % months],
            "deposit_balance": dep_r,
            "wealth_balance": wealth_r,
            "total_assets": dep_r + wealth_r,
        },
    )
    return Deposits(accounts=accounts, flows=flows, assets=assets)


def _optional_dates(days: np.ndarray) -> pl.Series:
    s = pl.Series(days.astype(np.int32), dtype=pl.Int32).cast(pl.Date)
    return s.scatter(np.flatnonzero(days < 0), None) if (days < 0).any() else s


def _wealth(
    rng: np.random.Generator, core: Core, econ: Economy, income_month: np.ndarray, months: int
) -> np.ndarray:
    """Wealth-management holdings (int64 fen): richer, older, safer customers; sold in distress."""
    n = core.n
    holder = rng.random(n) < sigmoid(-2.3 + 1.0 * core.income + 0.02 * (core.age - 45.0) - 0.4 * core.risk)
    level = np.round(income_month * 12 * rng.lognormal(-0.5, 0.7, n), -3)
    change = rng.random((n, months)) < 0.08
    step = np.where(change, rng.uniform(0.6, 1.5, (n, months)), 1.0)
    path = level[:, None] * np.cumprod(step * 1.0025, axis=1)
    path = np.where(econ.distress, path * 0.3, path)
    path = np.round(path, -2)
    return np.where(holder[:, None] & econ.active, np.round(path * 100), 0).astype(np.int64)
