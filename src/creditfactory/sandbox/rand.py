"""Randomness and calendar arithmetic shared by the generator and the world.

Two kinds of randomness:

* **Streams** for generation: one NumPy ``Generator`` per (seed, family, chunk), derived with
  ``SeedSequence(seed, spawn_key=(family, chunk))``. A family is one group of tables; giving
  each its own stream keeps a change in one family from shifting the draws of another.
* **Counter-based hashes** for the world: ``splitmix64`` over a tuple of integer keys, so the
  answer for (customer, date, action) never depends on call order or batch composition.

Dates are carried as ``int32`` days since 1970-01-01 (Polars ``Date``'s physical value) and
months as ``int64`` months since 1970-01.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from enum import IntEnum
from typing import TypeVar

import numpy as np
import polars as pl

_T = TypeVar("_T")

EPOCH = date(1970, 1, 1)


class Family(IntEnum):
    BANK = 1
    CORE = 2
    TRUTH = 3
    PROFILE = 4
    DEPOSITS = 5
    CREDIT = 6
    BUREAU = 7
    EXTERNAL = 8
    DIGITAL = 9
    NEGATIVE = 10
    OUTSIDERS = 11
    ECONOMY = 12


def stream(seed: int, family: Family, chunk: int = -1) -> np.random.Generator:
    """The generator for one family of draws in one chunk (``chunk=-1`` for bank-wide draws)."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(int(family), chunk + 1)))
    )


_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser applied element-wise (``uint64`` in, ``uint64`` out)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _M1
        z = (z ^ (z >> np.uint64(30))) * _M2
        z = (z ^ (z >> np.uint64(27))) * _M3
        return z ^ (z >> np.uint64(31))


def hash_keys(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """A 64-bit hash of ``(seed, *keys)``, broadcast over array keys."""
    h = splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
    for key in keys:
        k = np.asarray(key).astype(np.int64).astype(np.uint64)
        h = splitmix64(h ^ k)
    return np.atleast_1d(h)


def hash_uniform(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """Uniform floats in [0, 1) from :func:`hash_keys` (53 random bits)."""
    return (hash_keys(seed, *keys) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def slice_rows(obj: _T, lo: int, hi: int) -> _T:
    """A copy of a dataclass of per-customer arrays (and Polars series) restricted to rows lo..hi."""
    changes: dict[str, object] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1:
            changes[f.name] = value[lo:hi]
        elif isinstance(value, pl.Series):
            changes[f.name] = value.slice(lo, hi - lo)
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1.0 - p))


def day_number(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def month_number(d: date) -> int:
    """Months since 1970-01."""
    return (d.year - 1970) * 12 + d.month - 1


def month_first_day(months: np.ndarray) -> np.ndarray:
    """First day (days since epoch) of each month number."""
    return np.asarray(months, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month (1-12) and day (1-31) of each day number."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    year = m.astype("datetime64[Y]").astype(np.int64) + 1970
    month = m.astype(np.int64) % 12 + 1
    day = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One index per row of a 2-D weight matrix."""
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(weights.shape[0])[:, None]
    return np.minimum((u > cdf).sum(axis=1), weights.shape[1] - 1).astype(np.int64)


def group_offsets(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items repeated ``counts`` times: the owner of each repeat and its rank within the owner."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(owner), dtype=np.int64) - starts[owner]
    return owner, rank
