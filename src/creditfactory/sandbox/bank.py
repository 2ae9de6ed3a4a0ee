"""The bank itself: branches in the county and the staff who work there."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from creditfactory.contract.tables import BRANCHES, STAFF
from creditfactory.sandbox import vocab
from creditfactory.sandbox.config import SandboxConfig
from creditfactory.sandbox.frames import concat, contract_frame, pick, prefixed_ids, with_nulls
from creditfactory.sandbox.people import PhonePlan, chinese_names, phone_strings
from creditfactory.sandbox.rand import Family, day_number, stream

ROLE_AM, ROLE_UNDERWRITER, ROLE_HEAD, ROLE_OPERATIONS = 0, 1, 2, 3
#: Customers one account manager looks after before the branch gets another (two to eight).
CUSTOMERS_PER_MANAGER = 2_500


@dataclass(frozen=True, slots=True)
class Bank:
    branch_ids: pl.Series
    town: tuple[str, ...]  # town of each branch (for customer addresses)
    in_seat: np.ndarray  # bool, branch in the county seat
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray  # share of customers
    manager_ids: pl.Series  # active account managers, grouped by branch
    manager_start: np.ndarray  # first position in manager_ids of each branch
    manager_count: np.ndarray
    branches: pl.DataFrame
    staff: pl.DataFrame


def township_outlets(customers: int) -> int:
    """15 township outlets for a small bank, 40 from a million customers (log scale between)."""
    x = math.log10(max(customers, 1) / 10_000) / 2
    return int(round(15 + 25 * min(1.0, max(0.0, x))))


def build_bank(config: SandboxConfig) -> Bank:
    rng = stream(config.seed, Family.BANK)
    n_branches = 1 + township_outlets(config.customers)
    outlets = vocab.OUTLETS[:n_branches]
    names = [name for name, _ in outlets]
    towns = tuple(town for _, town in outlets)
    in_seat = np.array([t == vocab.SEAT_TOWN for t in towns])

    # Town centres: the seat in the middle, townships spread over the county (not on top of it).
    seat_lat, seat_lon = vocab.COUNTY_SEAT
    span_lat, span_lon = vocab.COUNTY_SPAN
    unique_towns = list(dict.fromkeys(towns))
    radius = np.sqrt(rng.uniform(0.12, 1.0, len(unique_towns)))
    angle = rng.uniform(0.0, 2 * np.pi, len(unique_towns))
    centre = {
        t: (seat_lat, seat_lon)
        if t == vocab.SEAT_TOWN
        else (seat_lat + span_lat * r * np.sin(a), seat_lon + span_lon * r * np.cos(a))
        for t, r, a in zip(unique_towns, radius, angle, strict=True)
    }
    jitter = rng.normal(0.0, 0.006, (n_branches, 2))
    lat = np.round(np.array([centre[t][0] for t in towns]) + jitter[:, 0], 6)
    lon = np.round(np.array([centre[t][1] for t in towns]) + jitter[:, 1], 6)

    weight = np.where(in_seat, 1.6, rng.lognormal(0.0, 0.35, n_branches))
    weight[0] = 2.5
    weight = weight / weight.sum()

    branch_ids = prefixed_ids("BR", np.arange(n_branches), 3)
    street = pick(vocab.STREETS, rng.integers(0, len(vocab.STREETS), n_branches))
    number = pl.Series(rng.integers(1, 300, n_branches)).cast(pl.String)
    address = concat(vocab.COUNTY_NAME, pl.Series(towns), street, number, "号")
    opened = day_number(config.as_of) - rng.integers(10 * 365, 60 * 365, n_branches)
    opened[0] = day_number(config.as_of) - 70 * 365
    branches = contract_frame(
        BRANCHES,
        {
            "branch_id": branch_ids,
            "branch_name": pl.Series(names),
            "region_code": pl.Series([vocab.COUNTY_CODE] * n_branches),
            "address": address,
            "lat": lat,
            "lon": lon,
            "opened_date": opened,
        },
    )

    # Staff: per branch a head, account managers by size, operations; underwriters at the head office.
    expected = weight * config.customers
    managers = np.clip(np.round(expected / CUSTOMERS_PER_MANAGER), 2, 8).astype(np.int64)
    operations = np.where(np.arange(n_branches) == 0, 2, 1)
    underwriters = np.zeros(n_branches, dtype=np.int64)
    underwriters[0] = min(8, 2 + config.customers // 200_000)
    role_blocks = [
        (np.ones(n_branches, dtype=np.int64), ROLE_HEAD),
        (managers, ROLE_AM),
        (underwriters, ROLE_UNDERWRITER),
        (operations, ROLE_OPERATIONS),
    ]
    branch_of: list[np.ndarray] = []
    role_of: list[np.ndarray] = []
    first_of_kind: list[np.ndarray] = []
    for counts, role in role_blocks:
        b = np.repeat(np.arange(n_branches), counts)
        branch_of.append(b)
        role_of.append(np.full(len(b), role))
        starts = np.cumsum(counts) - counts
        first_of_kind.append(np.arange(len(b)) == starts[b])
    branch_s = np.concatenate(branch_of)
    role_s = np.concatenate(role_of)
    first_s = np.concatenate(first_of_kind)
    order = np.lexsort((role_s, branch_s))
    branch_s, role_s, first_s = branch_s[order], role_s[order], first_s[order]
    n_staff = len(branch_s)
    # A few staff have left; never the first of their kind at a branch.
    active = first_s | (rng.random(n_staff) > 0.05)
    male = rng.random(n_staff) < 0.5
    staff_ids = prefixed_ids("S", np.arange(1, n_staff + 1), 5)
    phones = phone_strings(PhonePlan(config.customers).staff(config.seed, np.arange(n_staff)))
    staff = contract_frame(
        STAFF,
        {
            "staff_id": staff_ids,
            "branch_id": branch_ids.gather(branch_s),
            "name": chinese_names(rng, male),
            "role": pick(STAFF.column("role").codes, role_s),
            "phone": with_nulls(phones, rng.random(n_staff) < 0.03),
            "active": active,
        },
    )
    is_manager = (role_s == ROLE_AM) & active
    manager_ids = staff_ids.filter(pl.Series(is_manager))
    manager_count = np.bincount(branch_s[is_manager], minlength=n_branches).astype(np.int64)
    manager_start = np.cumsum(manager_count) - manager_count
    return Bank(
        branch_ids=branch_ids,
        town=towns,
        in_seat=in_seat,
        lat=lat,
        lon=lon,
        weight=weight,
        manager_ids=manager_ids,
        manager_start=manager_start,
        manager_count=manager_count,
        branches=branches,
        staff=staff,
    )
