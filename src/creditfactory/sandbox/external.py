"""External data obtained with authorisation: farmland, social security, tax and invoices.

* farmland (farmers, 92% on record): the land area and crop of the income process; machinery
  grows with area, cooperative membership with area and income;
* social security (salaried, 85% on record): one row per month; the contribution base is the
  wage within the province's floor and cap; unpaid in months without a job and, more often for
  unstable workers, now and then otherwise;
* tax records (merchants registered for tax, ~75%): quarterly declared revenue is the sales
  process times a declaration ratio (riskier merchants under-declare), tax at the small-scale
  VAT rate, a grade that worsens with risk ("M" for newly registered);
* invoices (merchants issuing VAT invoices, ~60%): a share of monthly sales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from creditfactory.contract.tables import CROPS, FARMLAND, INVOICES, SOCIAL_SECURITY, TAX_RECORDS
from creditfactory.sandbox.economy import Economy
from creditfactory.sandbox.frames import contract_frame, pick
from creditfactory.sandbox.model import FARMER, MERCHANT, SALARIED, Core
from creditfactory.sandbox.people import Profile
from creditfactory.sandbox.rand import sigmoid
from creditfactory.sandbox.timeline import Timeline

CONTRIBUTION_FLOOR = 4_227.0
CONTRIBUTION_CAP = 21_135.0
SMALL_SCALE_VAT = 0.01
#: Cut points of the tax grade latent for A, B, M, C, D.
GRADE_CUTS = np.array([-0.45, 0.75, 1.2, 1.8])


@dataclass(frozen=True, slots=True)
class External:
    farmland: pl.DataFrame
    social_security: pl.DataFrame
    tax_records: pl.DataFrame
    invoices: pl.DataFrame


def build_external(
    rng: np.random.Generator, core: Core, profile: Profile, econ: Economy, timeline: Timeline
) -> External:
    """External-data tables of a block of customers, drawing from ``rng``."""
    n, months = core.n, timeline.months
    seg = core.segment.astype(np.int64)
    ids = profile.customer_id

    # Farmland.
    farm = np.flatnonzero((seg == FARMER) & (rng.random(n) < 0.92))
    land = econ.land_mu[farm]
    machines = rng.poisson(0.12 * land**0.6)
    value = np.round(machines * rng.uniform(8_000.0, 60_000.0, len(farm)) * (1 + land / 200.0), -2)
    farmland = contract_frame(
        FARMLAND,
        {
            "customer_id": ids.gather(farm),
            "land_area_mu": land,
            "main_crop": pick(CROPS, econ.crop[farm]),
            "machinery_count": machines,
            "machinery_value": (value * 100).astype(np.int64),
            "cooperative_member": rng.random(len(farm))
            < sigmoid(-1.3 + 0.012 * land + 0.3 * core.income[farm]),
        },
    )

    # Social security.
    ss = np.flatnonzero((seg == SALARIED) & (rng.random(n) < 0.85))
    k = len(ss)
    base = np.clip(np.round(econ.wage[ss] * rng.uniform(0.8, 1.0, k)), CONTRIBUTION_FLOOR, CONTRIBUTION_CAP)
    skip = rng.random((k, months)) < sigmoid(-4.5 - 0.8 * core.stability[ss])[:, None]
    paid = econ.employed[ss] & ~skip
    cust = np.repeat(ss, months)
    social = contract_frame(
        SOCIAL_SECURITY,
        {
            "customer_id": ids.gather(cust),
            "month": np.tile(timeline.start, k),
            "contribution_base": np.repeat((base * 100).astype(np.int64), months),
            "paid": paid.ravel(),
        },
    )

    # Tax records: quarters wholly inside the window.
    merchants = np.flatnonzero(
        (seg == MERCHANT) & (rng.random(n) < sigmoid(0.9 + 0.5 * core.income + 0.3 * core.digital))
    )
    q_end = np.flatnonzero(np.isin(timeline.calendar_month, (3, 6, 9, 12)) & (np.arange(months) >= 2))
    km, kq = len(merchants), len(q_end)
    sales = econ.sales[merchants]
    quarter = sales[:, q_end] + sales[:, q_end - 1] + sales[:, q_end - 2]
    ratio = np.clip(0.85 - 0.15 * core.risk[merchants] + rng.normal(0.0, 0.1, km), 0.3, 1.0)
    revenue = np.round(quarter * ratio[:, None], 2)
    tax = np.round(revenue * SMALL_SCALE_VAT * rng.uniform(1.0, 1.3, (km, kq)), 2)
    tax = np.where(rng.random((km, kq)) < sigmoid(-3.5 + 0.8 * core.risk[merchants])[:, None], 0.0, tax)
    latent = 0.8 * core.risk[merchants] + 0.6 * rng.standard_normal(km)
    grade = np.searchsorted(GRADE_CUTS, latent, side="right")
    grade = np.where(grade == 2, np.where(rng.random(km) < 0.5, 1, 3), grade)  # M is for new taxpayers
    grade = np.where(profile.opened_month[merchants] >= months - 12, 2, grade)
    tax_records = contract_frame(
        TAX_RECORDS,
        {
            "customer_id": ids.gather(np.repeat(merchants, kq)),
            "period_end": np.tile(timeline.end[q_end], km),
            "revenue": _fen(revenue).ravel(),
            "tax_paid": _fen(tax).ravel(),
            "credit_grade": pick(TAX_RECORDS.column("credit_grade").codes, np.repeat(grade, kq)),
        },
    )

    # Invoices.
    issuers = np.flatnonzero((seg == MERCHANT) & (rng.random(n) < sigmoid(0.2 + 0.6 * core.income)))
    ki = len(issuers)
    share = rng.uniform(0.3, 0.9, ki)
    amount = econ.sales[issuers] * share[:, None] * rng.lognormal(0.0, 0.1, (ki, months))
    ticket = rng.uniform(200.0, 3_000.0, ki)
    count = rng.poisson(amount / ticket[:, None])
    amount = np.where(count > 0, np.round(amount, 2), 0.0)
    invoices = contract_frame(
        INVOICES,
        {
            "customer_id": ids.gather(np.repeat(issuers, months)),
            "month": np.tile(timeline.start, ki),
            "invoice_count": count.ravel(),
            "invoice_amount": _fen(amount).ravel(),
        },
    )
    return External(farmland=farmland, social_security=social, tax_records=tax_records, invoices=invoices)


def _fen(x: np.ndarray) -> np.ndarray:
    return np.round(x * 100.0).astype(np.int64)
