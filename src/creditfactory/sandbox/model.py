"""Latent traits, the true default propensity and the behaviour rules (pure NumPy).

Every customer is drawn from five correlated standard-normal traits:

* ``risk`` (R): appetite for and exposure to trouble; the main driver of default,
* ``income`` (I): position in the segment's (lognormal) income distribution,
* ``stability`` (S): steadiness of employment and cash flow,
* ``digital`` (D): use of phones and online channels,
* ``need`` (N): appetite for credit.

The true 12-month default propensity is a logistic function of them::

    eta     = 1.0 R - 0.3 I - 0.4 S + segment + age + 1.1 distress + 3.0 ring
    pd_12m  = sigmoid(b0 + eta)

with ``b0`` solved by bisection so that the population's mean ``pd_12m`` equals the configured
bad rate. ``distress`` marks a customer whose finances turned in the last months of the
history (it shows in flows and in recent bureau inquiries); ``ring`` marks a member of a planted
fraud ring. Past behaviour (historic loans) follows ``pd_hist = sigmoid(b0 + eta_hist)`` where
``eta_hist`` leaves out the recent distress and the ring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from creditfactory.sandbox import vocab
from creditfactory.sandbox.config import SandboxConfig, SandboxError
from creditfactory.sandbox.rand import Family, day_number, logit, sigmoid, stream

FARMER, MERCHANT, SALARIED, OTHER = 0, 1, 2, 3

#: (mean, standard deviation) of age by segment, truncated to 18-75.
AGE_PARAMS = ((50.0, 11.0), (41.0, 9.0), (36.0, 9.0), (46.0, 15.0))
MALE_SHARE = (0.62, 0.56, 0.50, 0.45)
#: Median annual household income in yuan and its log-scale spread, by segment.
INCOME_MEDIAN = (38_000.0, 110_000.0, 68_000.0, 30_000.0)
INCOME_SIGMA = (0.55, 0.70, 0.45, 0.60)

#: Correlation of (risk, income, stability, digital, need).
TRAIT_CORRELATION = np.array(
    [
        [1.00, -0.15, -0.35, 0.00, 0.25],
        [-0.15, 1.00, 0.20, 0.20, 0.00],
        [-0.35, 0.20, 1.00, 0.00, -0.10],
        [0.00, 0.20, 0.00, 1.00, 0.15],
        [0.25, 0.00, -0.10, 0.15, 1.00],
    ]
)

BETA_RISK = 1.0
BETA_INCOME = -0.30
BETA_STABILITY = -0.4
BETA_DISTRESS = 1.1
BETA_RING = 3.0
SEGMENT_EFFECT = (0.10, 0.25, -0.35, 0.30)

#: Months before ``as_of`` within which a distress episode can start.
DISTRESS_WINDOW = 9
#: Horizon of the world's default dates, in days after ``as_of``.
HORIZON_DAYS = 3 * 365
#: Ring sizes run from 3 to 15, each size 0.8 times as likely as the one below.
RING_SIZES = np.arange(3, 16)
RING_SIZE_WEIGHTS = 0.8 ** (RING_SIZES - 3)


@dataclass(frozen=True, slots=True)
class Core:
    """The latent make-up of the customers of one chunk (arrays aligned by position)."""

    index: np.ndarray  # int64, global customer index (customer_id is C + index + 1)
    segment: np.ndarray  # int8, index into SEGMENTS
    male: np.ndarray  # bool
    birth: np.ndarray  # int64, day number of the birth date
    age: np.ndarray  # float64, years at as_of
    region: np.ndarray  # int8, index into vocab.CUSTOMER_REGIONS
    risk: np.ndarray
    income: np.ndarray
    stability: np.ndarray
    digital: np.ndarray
    need: np.ndarray
    annual_income: np.ndarray  # yuan
    is_digital: np.ndarray  # bool, uses mobile banking
    distress_month: np.ndarray  # int64, history month index of onset, -1 if none
    ring: np.ndarray  # int64, ring number within the chunk, -1 if none
    eta: np.ndarray  # linear predictor of pd_12m without intercept
    eta_hist: np.ndarray  # same without the recent distress and the ring

    @property
    def n(self) -> int:
        return len(self.index)

    @property
    def in_ring(self) -> np.ndarray:
        return self.ring >= 0

    @property
    def distressed(self) -> np.ndarray:
        return self.distress_month >= 0


def chunk_bounds(config: SandboxConfig, chunk: int) -> tuple[int, int]:
    lo = chunk * config.chunk_size
    return lo, min(config.customers, lo + config.chunk_size)


def _truncated_normal(
    rng: np.random.Generator, mean: np.ndarray, sd: np.ndarray, lo: float, hi: float
) -> np.ndarray:
    x = rng.normal(mean, sd)
    bad = (x < lo) | (x > hi)
    while bad.any():
        x[bad] = rng.normal(mean[bad], sd[bad])
        bad = (x < lo) | (x > hi)
    return x


def age_effect(age: np.ndarray) -> np.ndarray:
    """Young and old borrowers default a little more (U-shape, zero near 45)."""
    return 0.25 * ((age - 45.0) / 15.0) ** 2 - 0.1


def draw_core(config: SandboxConfig, chunk: int) -> Core:
    """Draw the latent traits of one chunk; a pure function of (config, chunk)."""
    lo, hi = chunk_bounds(config, chunk)
    n = hi - lo
    rng = stream(config.seed, Family.CORE, chunk)
    shares = np.asarray(config.shares())
    cdf = np.cumsum(shares / shares.sum())
    cdf[-1] = 1.0
    segment = np.searchsorted(cdf, rng.random(n), side="right").astype(np.int8)
    male = rng.random(n) < np.asarray(MALE_SHARE)[segment]
    mean = np.asarray([p[0] for p in AGE_PARAMS])[segment]
    sd = np.asarray([p[1] for p in AGE_PARAMS])[segment]
    age = _truncated_normal(rng, mean, sd, 18.05, 75.95)
    birth = day_number(config.as_of) - np.floor(age * 365.2425).astype(np.int64)
    weights = np.asarray([w for _, w in vocab.CUSTOMER_REGIONS])
    rcdf = np.cumsum(weights / weights.sum())
    rcdf[-1] = 1.0
    region = np.searchsorted(rcdf, rng.random(n), side="right").astype(np.int8)

    chol = np.linalg.cholesky(TRAIT_CORRELATION)
    z = rng.standard_normal((n, 5)) @ chol.T
    risk, income, stability, digital, need = (np.ascontiguousarray(z[:, j]) for j in range(5))
    # Younger people borrow more readily and use their phones more.
    need = need - 0.015 * (age - 40.0)
    seg_f = segment.astype(np.int64)
    log_income = (
        np.log(np.asarray(INCOME_MEDIAN))[seg_f]
        + np.asarray(INCOME_SIGMA)[seg_f] * income
        - 0.0004 * (age - 45.0) ** 2
    )
    annual_income = np.round(np.exp(log_income), -2)

    digital_logit = 0.9 + 1.5 * digital - 0.07 * (age - 40.0) + np.asarray([-0.3, 0.5, 0.8, 0.0])[seg_f]
    is_digital = rng.random(n) < sigmoid(digital_logit)

    months = config.months
    window = min(DISTRESS_WINDOW, months)
    distressed = rng.random(n) < sigmoid(-3.0 + 0.6 * risk - 0.3 * stability)
    onset = rng.integers(months - window, months, size=n)
    distress_month = np.where(distressed, onset, -1).astype(np.int64)

    ring = np.full(n, -1, dtype=np.int64)
    target = int(round(n * config.ring_share))
    if target >= RING_SIZES[0]:
        cdf_s = np.cumsum(RING_SIZE_WEIGHTS / RING_SIZE_WEIGHTS.sum())
        sizes = RING_SIZES[np.searchsorted(cdf_s, rng.random(target // 3 + 1), side="right").clip(max=12)]
        ends = np.cumsum(sizes)
        sizes = sizes[: int(np.searchsorted(ends, target)) + 1]
        total = min(int(sizes.sum()), n)
        members = rng.permutation(n)[:total]
        ring[members] = np.repeat(np.arange(len(sizes)), sizes)[:total]
        # Planted rings apply online: every member uses mobile banking.
        is_digital = is_digital | (ring >= 0)

    eta_hist = (
        BETA_RISK * risk
        + BETA_INCOME * income
        + BETA_STABILITY * stability
        + np.asarray(SEGMENT_EFFECT)[seg_f]
        + age_effect(age)
    )
    eta = eta_hist + BETA_DISTRESS * (distress_month >= 0) + BETA_RING * (ring >= 0)
    return Core(
        index=np.arange(lo, hi, dtype=np.int64),
        segment=segment,
        male=male,
        birth=birth,
        age=age,
        region=region,
        risk=risk,
        income=income,
        stability=stability,
        digital=digital,
        need=need,
        annual_income=annual_income,
        is_digital=is_digital,
        distress_month=distress_month,
        ring=ring,
        eta=eta,
        eta_hist=eta_hist,
    )


def solve_intercept(eta: np.ndarray, target: float, *, iterations: int = 100) -> float:
    """The ``b0`` for which ``mean(sigmoid(b0 + eta))`` equals ``target`` (bisection)."""
    if not 0.0 < target < 1.0:
        raise SandboxError(f"target default rate must be in (0, 1), got {target}")
    lo, hi = -30.0, 30.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if float(np.mean(sigmoid(mid + eta))) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth of one chunk: what the bank cannot see."""

    pd_12m: np.ndarray
    pd_hist: np.ndarray
    default_day: np.ndarray  # int64 day number of the default onset within the horizon, -1 if none
    bad_12m: np.ndarray  # bool
    p_respond_sms: np.ndarray
    p_respond_app: np.ndarray
    p_respond_call: np.ndarray
    desired_amount: np.ndarray  # int64 fen
    p_apply: np.ndarray  # at an offer equal to the desired amount


def draw_truth(config: SandboxConfig, chunk: int, core: Core, intercept: float) -> Truth:
    """True propensities and the realised default of one chunk.

    The default time is exponential with the constant hazard ``-ln(1 - pd_12m)`` per year, so
    the chance of a default within 365 days is exactly ``pd_12m``. ``bad_12m`` is that event;
    the world keeps later defaults up to :data:`HORIZON_DAYS`.
    """
    rng = stream(config.seed, Family.TRUTH, chunk)
    pd = sigmoid(intercept + core.eta)
    pd_hist = sigmoid(intercept + core.eta_hist)
    hazard = -np.log1p(-np.clip(pd, 0.0, 1 - 1e-12))
    years = rng.exponential(1.0, core.n) / hazard
    offset = np.ceil(years * 365.0)
    within = offset <= HORIZON_DAYS
    as_of = day_number(config.as_of)
    default_day = np.where(within, as_of + np.where(within, offset, 0).astype(np.int64), -1)
    bad = offset <= 365
    ring = core.in_ring.astype(np.float64)
    p_sms = sigmoid(-3.3 + 0.35 * core.need + 0.2 * core.digital + 0.8 * ring)
    p_app = np.where(core.is_digital, sigmoid(-2.2 + 0.4 * core.need + 0.5 * core.digital + 0.8 * ring), 0.0)
    p_call = sigmoid(-1.6 + 0.35 * core.need - 0.25 * core.digital + 0.01 * (core.age - 45.0) + 0.8 * ring)
    desired = desired_amount(core.annual_income, core.need)
    p_apply = apply_probability(core.need, core.risk, core.in_ring, desired, desired)
    return Truth(
        pd_12m=pd,
        pd_hist=pd_hist,
        default_day=default_day,
        bad_12m=bad,
        p_respond_sms=p_sms,
        p_respond_app=p_app,
        p_respond_call=p_call,
        desired_amount=desired,
        p_apply=p_apply,
    )


# --- behaviour rules used by the world -------------------------------------------------------


def desired_amount(annual_income: np.ndarray, need: np.ndarray) -> np.ndarray:
    """The credit a customer would like, in fen: a third of a year's income, more with need."""
    yuan = np.maximum(5_000.0, np.round(annual_income * 0.35 * np.exp(0.35 * need), -3))
    return (yuan * 100).astype(np.int64)


def apply_probability(
    need: np.ndarray, risk: np.ndarray, in_ring: np.ndarray, offer_fen: np.ndarray, desired_fen: np.ndarray
) -> np.ndarray:
    """Chance of applying after seeing an offer: need, a larger offer, and risk all push up.

    Riskier customers want credit more (adverse selection); ring members nearly always apply.
    """
    ratio = np.maximum(np.asarray(offer_fen, dtype=np.float64), 1.0) / np.maximum(desired_fen, 1.0)
    x = -0.6 + 0.6 * need + 0.3 * risk + 0.4 * np.log(ratio)
    return np.where(in_ring, 0.9, sigmoid(x))


def draw_share(need: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Share of a line drawn by a customer who draws (``u`` uniform), 10% to 100%."""
    return np.clip(0.15 + 0.85 * sigmoid(0.8 * need + 2.0 * (u - 0.5)), 0.1, 1.0)


def late_probability(pd_12m: np.ndarray, bad_rate: float, days_to_default: np.ndarray) -> np.ndarray:
    """Chance that an instalment is paid late: rises with pd and in the 90 days before a default."""
    near = (days_to_default >= 0) & (days_to_default <= 90)
    x = -3.2 + 0.9 * (logit(pd_12m) - logit(bad_rate)) + 1.5 * near
    return sigmoid(x)


def days_late(pd_12m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Days late of a late payment (``u`` uniform): exponential with a mean from 3 to ~30 days."""
    mean = 3.0 + 30.0 * np.clip(pd_12m, 0.0, 1.0)
    return np.minimum(1 + np.floor(-mean * np.log1p(-u)), 89).astype(np.int64)
