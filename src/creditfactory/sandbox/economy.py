"""Monthly household economics of one chunk: the income processes behind the extracts.

Each segment earns differently (amounts in yuan, customer x month matrices):

* salaried: a monthly wage with a spring-festival bonus; unstable, risky workers fall into
  spells without a job (no payroll, no social-security contribution);
* merchants: sales with retail seasonality, a personal trend and volatility that grows as
  stability falls; a share is settled through card/QR acquiring;
* farmers: crop income concentrated in harvest months (rice, wheat and rape, tea), remittances
  from family working in cities, and the cultivated-land subsidy paid each May (plus a rice
  subsidy in November), proportional to the land area;
* others: casual income and, from sixty, the rural basic pension.

Bad months (income cut by more than half) strike riskier, less stable customers more often, and
from the onset of a distress episode income falls and stays down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from creditfactory.sandbox.model import FARMER, MERCHANT, OTHER, SALARIED, Core
from creditfactory.sandbox.people import Profile
from creditfactory.sandbox.rand import sigmoid
from creditfactory.sandbox.timeline import Timeline
from creditfactory.sandbox.vocab import CROP_SHARES


def _normalised(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float64)
    return a / a.sum(axis=-1, keepdims=True)


RETAIL_SEASON = _normalised([[1.45, 1.35, 0.9, 0.9, 0.95, 0.9, 0.85, 0.85, 0.95, 1.1, 1.0, 1.1]]) * 12
SPEND_SEASON = _normalised([[1.5, 1.3, 0.9, 0.9, 0.9, 0.9, 0.95, 1.0, 1.2, 1.0, 0.9, 1.0]]) * 12
#: Share of a year's farm income by calendar month, per crop (CROPS order).
CROP_SEASON = _normalised(
    [
        [0.02, 0.02, 0.02, 0.02, 0.14, 0.20, 0.03, 0.03, 0.18, 0.26, 0.05, 0.03],  # grain
        [0.09, 0.08, 0.07, 0.08, 0.09, 0.08, 0.07, 0.07, 0.08, 0.09, 0.10, 0.10],  # vegetable
        [0.02, 0.02, 0.02, 0.02, 0.04, 0.12, 0.20, 0.22, 0.20, 0.08, 0.04, 0.02],  # fruit
        [0.01, 0.01, 0.22, 0.38, 0.22, 0.06, 0.03, 0.03, 0.02, 0.01, 0.005, 0.005],  # tea
        [0.16, 0.12, 0.06, 0.06, 0.06, 0.06, 0.06, 0.06, 0.07, 0.08, 0.09, 0.12],  # livestock
        [0.14, 0.06, 0.03, 0.03, 0.03, 0.04, 0.05, 0.06, 0.10, 0.16, 0.16, 0.14],  # aquaculture
        [0.08, 0.08, 0.08, 0.08, 0.09, 0.09, 0.08, 0.08, 0.09, 0.09, 0.08, 0.08],  # other
    ]
)
LAND_SUBSIDY_PER_MU = 110.0
RICE_SUBSIDY_PER_MU = 30.0
RURAL_PENSION = 180.0


@dataclass(frozen=True, slots=True)
class Economy:
    active: np.ndarray  # (n, M) bool: customer of the bank at that month end
    distress: np.ndarray  # (n, M) bool: within a distress episode
    bad_month: np.ndarray  # (n, M) bool: income shock
    wage: np.ndarray  # (n,) monthly wage of salaried customers
    employed: np.ndarray  # (n, M) bool (salaried)
    payroll: np.ndarray  # (n, M)
    sales: np.ndarray  # (n, M) merchant revenue
    margin: np.ndarray  # (n,)
    acquiring_share: np.ndarray  # (n,)
    crop: np.ndarray  # (n,) int index into CROPS (farmers)
    land_mu: np.ndarray  # (n,) contracted land area (farmers, 0 otherwise)
    farm_income: np.ndarray  # (n, M)
    subsidy: np.ndarray  # (n, M)
    transfers: np.ndarray  # (n, M) remittances, pension, casual income
    spend_ratio: np.ndarray  # (n,) household spending over income


def draw_economy(rng: np.random.Generator, core: Core, profile: Profile, timeline: Timeline) -> Economy:
    """The monthly economics of a block of customers, drawing from ``rng``."""
    n, months = core.n, timeline.months
    seg = core.segment.astype(np.int64)
    cal = timeline.calendar_month - 1
    m_idx = np.arange(months)
    active = m_idx[None, :] >= profile.opened_month[:, None]
    distress = (core.distress_month[:, None] >= 0) & (m_idx[None, :] >= core.distress_month[:, None])
    bad_p = sigmoid(-4.0 + 0.7 * core.risk - 0.5 * core.stability)
    bad_month = rng.random((n, months)) < bad_p[:, None]
    shock = np.where(bad_month, 0.35, 1.0) * np.where(distress, 0.5, 1.0)
    income_month = core.annual_income / 12.0

    # Salaried: wage, bonus, spells without a job.
    salaried = seg == SALARIED
    wage = np.where(salaried, income_month * rng.uniform(0.75, 0.92, n) * 12 / 13, 0.0)
    lose = sigmoid(-5.2 - 1.0 * core.stability + 0.5 * core.risk)
    regain = np.clip(0.3 + 0.1 * core.stability, 0.1, 0.6)
    employed = np.empty((n, months), dtype=bool)
    state = rng.random(n) > lose * 3
    draws = rng.random((n, months))
    onset_loss = rng.random(n) < 0.6
    for m in range(months):
        state = np.where(state, draws[:, m] >= lose, draws[:, m] < regain)
        state &= ~((core.distress_month == m) & onset_loss)
        state &= ~((core.distress_month >= 0) & (m > core.distress_month) & onset_loss & (draws[:, m] > 0.15))
        employed[:, m] = state
    employed &= salaried[:, None]
    raise_ = 1.0 + 0.03 * np.floor((m_idx - (months - 1)) / 12.0 + 1.0)  # 3% more every twelve months
    bonus = (cal == 0)[None, :] * rng.uniform(0.5, 2.0, n)[:, None]
    payroll = wage[:, None] * raise_[None, :] * (1.0 + bonus) * rng.lognormal(0.0, 0.04, (n, months))
    payroll = np.where(employed & active, payroll * np.where(distress, 0.7, 1.0), 0.0)

    # Merchants: sales with seasonality, trend, volatility; part of it through acquiring.
    merchant = seg == MERCHANT
    margin = rng.uniform(0.12, 0.30, n)
    trend = rng.normal(0.03 - 0.05 * core.risk, 0.08)
    vol = 0.10 + 0.25 * sigmoid(-1.5 * core.stability + 0.5 * core.risk)
    years_back = (m_idx - (months - 1)) / 12.0
    eps = rng.standard_normal((n, months))
    sales = (
        (core.annual_income / margin / 12.0)[:, None]
        * RETAIL_SEASON[0, cal][None, :]
        * np.exp(trend[:, None] * years_back[None, :])
        * np.exp(vol[:, None] * eps - 0.5 * vol[:, None] ** 2)
        * shock
    )
    sales = np.where(merchant[:, None], sales, 0.0)
    acquiring_share = np.where(
        merchant, np.clip(sigmoid(-0.2 + 0.9 * core.digital + 0.3 * core.income), 0.05, 0.95), 0.0
    )

    # Farmers: crop income by season and harvest year, land subsidies.
    farmer = seg == FARMER
    crop = np.searchsorted(np.cumsum(CROP_SHARES) / np.sum(CROP_SHARES), rng.random(n), side="right").clip(
        max=6
    )
    land = np.exp(np.log(7.0) + 0.8 * core.income + rng.normal(0.0, 0.45, n))
    land_mu = np.where(farmer, np.round(np.clip(land, 0.5, 900.0), 1), 0.0)
    farm_share = rng.uniform(0.4, 0.9, n)
    year_of = (timeline.first_month + m_idx) // 12
    year_col = year_of - year_of[0]
    harvest = rng.lognormal(-0.02, 0.2, (n, int(year_col[-1]) + 1))
    harvest = np.where(
        rng.random(harvest.shape) < sigmoid(-2.6 + 0.4 * core.risk)[:, None], harvest * 0.4, harvest
    )
    farm_income = (
        (core.annual_income * farm_share)[:, None]
        * CROP_SEASON[crop][:, cal]
        * harvest[:, year_col]
        * rng.lognormal(-0.01, 0.15, (n, months))
        * np.where(distress, 0.5, 1.0)
    )
    farm_income = np.where(farmer[:, None] & active, farm_income, 0.0)
    subsidy = land_mu[:, None] * (
        LAND_SUBSIDY_PER_MU * (cal == 4)[None, :]
        + RICE_SUBSIDY_PER_MU * ((cal == 10)[None, :] & (crop == 0)[:, None])
    )
    subsidy = np.where(farmer[:, None] & active & (land_mu[:, None] >= 1.0), np.round(subsidy, 2), 0.0)

    # Remittances (farm households), casual income, the rural pension.
    remit = farmer & (rng.random(n) < 0.5)
    festival = np.isin(cal, (0, 1)).astype(np.float64)
    remittance = np.where(
        remit[:, None],
        (core.annual_income * (1 - farm_share) / 12.0)[:, None]
        * (0.6 + 1.6 * festival)[None, :]
        * (rng.random((n, months)) < 0.8),
        0.0,
    )
    casual_scale = np.where(seg == OTHER, 0.8, 0.15) * income_month
    casual = (
        casual_scale[:, None] * (rng.random((n, months)) < 0.6) * rng.lognormal(0.0, 0.5, (n, months)) * shock
    )
    pension = np.where((core.age >= 60)[:, None], RURAL_PENSION * rng.uniform(0.9, 1.6, n)[:, None], 0.0)
    transfers = np.where(active, remittance + casual + pension, 0.0)

    spend_ratio = np.clip(0.86 + 0.10 * core.risk - 0.04 * core.income + rng.normal(0.0, 0.05, n), 0.55, 1.25)
    return Economy(
        active=active,
        distress=distress,
        bad_month=bad_month,
        wage=wage,
        employed=employed,
        payroll=payroll,
        sales=sales,
        margin=margin,
        acquiring_share=acquiring_share,
        crop=crop.astype(np.int64),
        land_mu=land_mu,
        farm_income=farm_income,
        subsidy=subsidy,
        transfers=transfers,
        spend_ratio=spend_ratio,
    )
