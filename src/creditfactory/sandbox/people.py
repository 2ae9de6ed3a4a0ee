"""People: names, mobile numbers, resident ID numbers, addresses and the customers table.

Uniqueness without global state:

* **Phones** come from a bijection of the whole number plan: person ``k`` (customers first,
  then staff, then people who are only contacts) gets ``(k * a + b) mod (P * 10^8)``, split into
  one of ``P`` operator prefixes and eight digits. Any two people have different numbers, and a
  customer's number is known from its index alone, so contacts can point at customers in any
  chunk.
* **ID numbers** need a sequence number that is unique among people of the same region, birth
  date and sex. A first pass over the population ranks everyone within that group (by
  customer index) and maps the rank to a sequence number (odd for men, even for women).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from creditfactory.contract.tables import CUSTOMERS, EDUCATION, KYC_STATUSES, MARITAL, SEGMENTS
from creditfactory.sandbox import vocab
from creditfactory.sandbox.config import SandboxConfig, SandboxError
from creditfactory.sandbox.frames import (
    ascii_strings,
    concat,
    contract_frame,
    digit_matrix,
    pick,
    prefixed_ids,
    with_nulls,
)
from creditfactory.sandbox.model import FARMER, MERCHANT, SALARIED, Core
from creditfactory.sandbox.rand import Family, choice_rows, hash_keys, stream, ymd
from creditfactory.sandbox.timeline import Timeline
from creditfactory.security.idcard import CHECK_CHARS, WEIGHTS

if TYPE_CHECKING:
    from creditfactory.sandbox.bank import Bank

_PREFIXES = np.asarray(vocab.PHONE_PREFIXES, dtype=np.int64)
PHONE_SPACE = len(_PREFIXES) * 100_000_000
#: Odd and not a multiple of five, hence invertible modulo PHONE_SPACE (= 2^11 * 5^9).
_PHONE_MULTIPLIER = 2_862_933_557
#: Room in the number plan for staff between customers and outsiders.
_STAFF_ROOM = 10_000


@dataclass(frozen=True, slots=True)
class PhonePlan:
    """Who gets which slot of the number plan: customers, staff, then everybody else."""

    customers: int

    @property
    def outsider_start(self) -> int:
        return self.customers + _STAFF_ROOM

    @property
    def outsiders(self) -> int:
        """Size of the pool of non-customers (relatives, friends) who appear as contacts."""
        return 2 * self.customers + 1_000

    def customer(self, seed: int, index: np.ndarray) -> np.ndarray:
        return phone_numbers(seed, np.asarray(index, dtype=np.int64))

    def staff(self, seed: int, index: np.ndarray) -> np.ndarray:
        return phone_numbers(seed, self.customers + np.asarray(index, dtype=np.int64))

    def outsider(self, seed: int, index: np.ndarray) -> np.ndarray:
        return phone_numbers(seed, self.outsider_start + np.asarray(index, dtype=np.int64))

    def fraud_line(self, seed: int, index: np.ndarray) -> np.ndarray:
        """Numbers used by ring organisers (outside the contacts pool)."""
        return phone_numbers(seed, self.outsider_start + self.outsiders + np.asarray(index, dtype=np.int64))


def phone_numbers(seed: int, person: np.ndarray) -> np.ndarray:
    """The 11-digit mobile number (as int64) of each person index; distinct people, distinct numbers."""
    offset = int(hash_keys(seed, 0x50484F4E45)[0] % np.uint64(PHONE_SPACE))
    v = (np.asarray(person, dtype=np.int64) * _PHONE_MULTIPLIER + offset) % PHONE_SPACE
    return _PREFIXES[v // 100_000_000] * 100_000_000 + v % 100_000_000


def phone_strings(numbers: np.ndarray) -> pl.Series:
    return ascii_strings(digit_matrix(numbers, 11))


def chinese_names(rng: np.random.Generator, male: np.ndarray) -> pl.Series:
    """Surname by frequency, then one or two given-name characters chosen by sex."""
    n = len(male)
    surnames = [s for s, _ in vocab.SURNAMES]
    weights = np.asarray([w for _, w in vocab.SURNAMES])
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    surname = pick(surnames, np.searchsorted(cdf, rng.random(n), side="right"))
    male_chars = list(vocab.GIVEN_MALE)
    female_chars = list(vocab.GIVEN_FEMALE)
    first = np.where(
        male, rng.integers(0, len(male_chars), n), len(male_chars) + rng.integers(0, len(female_chars), n)
    )
    second = np.where(
        male, rng.integers(0, len(male_chars), n), len(male_chars) + rng.integers(0, len(female_chars), n)
    )
    chars = male_chars + female_chars
    two = rng.random(n) < 0.72
    given2 = with_nulls(pick(chars, second), ~two).fill_null("")
    return concat(surname, pick(chars, first), given2)


def id_sequences(region: np.ndarray, birth: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Three-digit ID sequence numbers, unique within (region, birth date, sex), odd for men."""
    key = (region.astype(np.int64) * 200_000 + (birth.astype(np.int64) + 100_000)) * 2 + male.astype(np.int64)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    n = len(key)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    is_start = np.empty(n, dtype=bool)
    is_start[0] = True
    is_start[1:] = sorted_key[1:] != sorted_key[:-1]
    start_pos = np.maximum.accumulate(np.where(is_start, np.arange(n), 0))
    rank_sorted = np.arange(n) - start_pos
    rank = np.empty(n, dtype=np.int64)
    rank[order] = rank_sorted
    if rank.max() >= 500:
        raise SandboxError("more than 500 people share a region, birth date and sex; use fewer customers")
    mix = (birth.astype(np.int64) * 7 + region.astype(np.int64) * 13) % 500
    slot = (rank * 191 + mix) % 500
    return slot * 2 + male.astype(np.int64)


_ID_WEIGHTS = np.asarray(WEIGHTS, dtype=np.int64)
_CHECK = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)


def id_numbers(region_codes: np.ndarray, birth: np.ndarray, sequence: np.ndarray) -> pl.Series:
    """18-character resident ID numbers with their ISO 7064 MOD 11-2 check character."""
    year, month, day = ymd(birth)
    first17 = (
        np.asarray(region_codes, dtype=np.int64) * 10**11
        + (year * 10_000 + month * 100 + day) * 1_000
        + np.asarray(sequence, dtype=np.int64)
    )
    chars = np.empty((len(first17), 18), dtype=np.uint8)
    chars[:, :17] = digit_matrix(first17, 17)
    total = ((chars[:, :17].astype(np.int64) - 48) * _ID_WEIGHTS).sum(axis=1)
    chars[:, 17] = _CHECK[total % 11]
    return ascii_strings(chars)


def customer_ids(index: np.ndarray) -> pl.Series:
    return prefixed_ids("C", np.asarray(index) + 1, 10)


@dataclass(frozen=True, slots=True)
class Profile:
    """What the bank knows of each customer of a chunk, beyond the latent core."""

    customer_id: pl.Series
    phone: np.ndarray  # int64
    id_number: pl.Series
    branch: np.ndarray  # int64 index into the bank's branches
    opened_day: np.ndarray  # int64 day number
    opened_month: np.ndarray  # history month index (negative: before the window)
    married: np.ndarray  # bool


def build_customers(
    config: SandboxConfig,
    chunk: int,
    core: Core,
    sequence: np.ndarray,
    bank: Bank,
    timeline: Timeline,
) -> tuple[pl.DataFrame, Profile]:
    """The customers table of one chunk and the profile other tables build on."""
    rng = stream(config.seed, Family.PROFILE, chunk)
    n = core.n
    seg = core.segment.astype(np.int64)
    ids = customer_ids(core.index)
    region_codes = np.asarray([int(c) for c, _ in vocab.CUSTOMER_REGIONS], dtype=np.int64)[core.region]
    id_number = id_numbers(region_codes, core.birth, sequence)
    phone = PhonePlan(config.customers).customer(config.seed, core.index)

    # Home branch: salaried workers and merchants live in the county seat more often.
    seat_boost = np.asarray([0.7, 1.8, 2.2, 1.0])[seg]
    w = np.tile(bank.weight, (n, 1))
    w[:, bank.in_seat] *= seat_boost[:, None]
    branch = choice_rows(rng, w)
    has_manager = rng.random(n) < 0.86
    m_count = bank.manager_count[branch]
    m_pos = bank.manager_start[branch] + np.floor(rng.random(n) * m_count).astype(np.int64)
    manager = with_nulls(
        bank.manager_ids.gather(np.where(m_count > 0, m_pos, 0)), ~has_manager | (m_count == 0)
    )

    # Address: a street number in the seat, a village group elsewhere.
    towns = np.asarray(bank.town, dtype=object)[branch]
    seat = bank.in_seat[branch]
    street = pick(vocab.STREETS, rng.integers(0, len(vocab.STREETS), n))
    house = pl.Series(rng.integers(1, 320, n)).cast(pl.String)
    village = pick(vocab.VILLAGES, rng.integers(0, len(vocab.VILLAGES), n))
    group = pl.Series(rng.integers(1, 16, n)).cast(pl.String)
    town_s = pl.Series(towns.tolist(), dtype=pl.String)
    seat_address = concat(vocab.COUNTY_NAME, town_s, street, house, "号")
    rural_address = concat(vocab.COUNTY_NAME, town_s, village, "村", group, "组")
    address = pl.select(
        pl.when(pl.lit(pl.Series(seat))).then(seat_address).otherwise(rural_address)
    ).to_series()
    no_address = rng.random(n) < 0.02
    address = with_nulls(address, no_address)
    spread = np.where(seat, 0.012, 0.035)
    lat = np.round(bank.lat[branch] + rng.normal(0.0, 1.0, n) * spread, 6)
    lon = np.round(bank.lon[branch] + rng.normal(0.0, 1.2, n) * spread, 6)
    no_geo = no_address | (rng.random(n) < 0.03)

    # Relationship start: rings opened accounts recently; some customers are new in the window.
    as_of = timeline.as_of
    adult_since = core.birth + np.ceil(16 * 365.25).astype(np.int64)
    window_days = as_of - timeline.window_start
    new = rng.random(n) < 0.09
    tenure_cap = np.maximum(as_of - window_days - adult_since, 0)
    long_tenure = (
        as_of
        - window_days
        - np.floor(rng.beta(1.3, 1.6, n) * np.minimum(tenure_cap, 25 * 365)).astype(np.int64)
    )
    recent = as_of - np.floor(rng.random(n) * window_days).astype(np.int64)
    ring_recent = as_of - 20 - np.floor(rng.random(n) * 330).astype(np.int64)
    opened = np.where(core.in_ring, ring_recent, np.where(new, recent, long_tenure))
    opened = np.maximum(opened, adult_since)
    opened = np.minimum(opened, as_of - 1)
    opened_month = timeline.month_index(opened)

    # KYC: mostly complete; files expire more often on old relationships.
    expire_p = np.where(as_of - opened > 10 * 365, 0.06, 0.02)
    u = rng.random(n)
    kyc = np.where(u < expire_p, 2, np.where(u < expire_p + 0.05, 1, 0))
    kyc = np.where(core.in_ring, 0, kyc)

    age = core.age
    marital_w = np.stack(
        [
            np.where(age < 25, 0.8, np.where(age < 35, 0.28, 0.05)),
            np.where(age < 25, 0.2, np.where(age < 35, 0.68, 0.83)),
            np.full(n, 0.04),
            np.where(age > 60, 0.14, 0.01),
        ],
        axis=1,
    )
    marital = choice_rows(rng, marital_w)
    edu_w = np.stack(
        [
            np.where(age > 50, 0.45, 0.12) * np.where(seg == FARMER, 1.6, 1.0),
            np.full(n, 0.45),
            np.where(seg == MERCHANT, 0.2, 0.14),
            np.where(seg == SALARIED, 0.35, 0.06) * np.where(age < 40, 1.5, 0.8),
            np.where(seg == SALARIED, 0.05, 0.005),
        ],
        axis=1,
    )
    education = choice_rows(rng, edu_w)
    consent = rng.random(n) < np.where(age > 65, 0.8, 0.9)

    frame = contract_frame(
        CUSTOMERS,
        {
            "customer_id": ids,
            "id_number": id_number,
            "name": chinese_names(rng, core.male),
            "gender": pick(("M", "F"), np.where(core.male, 0, 1)),
            "birth_date": core.birth,
            "phone": phone_strings(phone),
            "segment": pick(SEGMENTS, seg),
            "branch_id": bank.branch_ids.gather(branch),
            "manager_id": manager,
            "address": address,
            "lat": with_nulls(pl.Series(lat), no_geo),
            "lon": with_nulls(pl.Series(lon), no_geo),
            "kyc_status": pick(KYC_STATUSES, kyc),
            "marital_status": with_nulls(pick(MARITAL, marital), rng.random(n) < 0.05),
            "education": with_nulls(pick(EDUCATION, education), rng.random(n) < 0.1),
            "opened_date": opened,
            "marketing_consent": consent,
        },
    )
    profile = Profile(
        customer_id=ids,
        phone=phone,
        id_number=id_number,
        branch=branch,
        opened_day=opened,
        opened_month=opened_month,
        married=marital == 1,
    )
    return frame, profile
