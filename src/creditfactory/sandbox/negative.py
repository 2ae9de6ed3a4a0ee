"""The negative list: exposed fraud rings, written-off borrowers, court-enforced debtors.

* 40% of rings have been exposed: their shared device fingerprints and organiser's phone are
  listed, with half of the members' ID numbers (fraud or identity theft) and a third of their
  phones;
* 60% of customers with a written-off loan are listed for default on the day of the write-off;
* customers under court enforcement (commoner as risk rises) are listed by the court;
* people who are not customers: court-enforced debtors (born outside the customers' counties,
  so their numbers never collide with a customer's), and phones and devices flagged by the
  industry's fraud-sharing platform.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from creditfactory.contract.tables import NEGATIVE_LIST
from creditfactory.sandbox import vocab
from creditfactory.sandbox.config import SandboxConfig
from creditfactory.sandbox.credit import Credit
from creditfactory.sandbox.digital import Digital, fingerprint_words, ring_stride, ring_value
from creditfactory.sandbox.frames import contract_frame, hex_strings, prefixed_ids
from creditfactory.sandbox.model import Core
from creditfactory.sandbox.people import PhonePlan, Profile, id_numbers, id_sequences, phone_strings
from creditfactory.sandbox.rand import Family, sigmoid, stream
from creditfactory.sandbox.timeline import Timeline

_SCHEMA = {
    "kind": pl.String,
    "value": pl.String,
    "reason": pl.String,
    "listed_date": pl.Int64,
    "source": pl.String,
}
_FP_OUTSIDER = 0xF4


def _part(
    kind: str, values: pl.Series, reason: pl.Series | str, days: np.ndarray, source: pl.Series | str
) -> pl.DataFrame:
    n = len(values)
    return pl.DataFrame(
        {
            "kind": pl.Series([kind] * n, dtype=pl.String),
            "value": values.cast(pl.String),
            "reason": reason if isinstance(reason, pl.Series) else pl.Series([reason] * n, dtype=pl.String),
            "listed_date": pl.Series(np.asarray(days, dtype=np.int64)),
            "source": source if isinstance(source, pl.Series) else pl.Series([source] * n, dtype=pl.String),
        },
        schema=_SCHEMA,
    )


def chunk_entries(
    config: SandboxConfig,
    chunk: int,
    core: Core,
    profile: Profile,
    credit: Credit,
    digital: Digital,
    timeline: Timeline,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Negative-list entries of one chunk (without entry ids) and which of its rings are exposed."""
    rng = stream(config.seed, Family.NEGATIVE, chunk)
    as_of = timeline.as_of
    rings = digital.rings
    n_rings = len(rings.ring_global)
    exposed = rng.random(n_rings) < 0.4
    parts: list[pl.DataFrame] = []

    members = np.flatnonzero(core.in_ring & (ring_value(exposed.astype(np.int64), core.ring) == 1))
    m = len(members)
    listed_id = members[rng.random(m) < 0.5]
    reason = np.where(rng.random(len(listed_id)) < 0.7, "fraud", "identity_theft")
    parts.append(
        _part(
            "id_number",
            profile.id_number.gather(listed_id),
            pl.Series(reason.tolist(), dtype=pl.String),
            as_of - rng.integers(10, 400, len(listed_id)),
            "police",
        )
    )
    listed_phone = members[rng.random(m) < 0.33]
    parts.append(
        _part(
            "phone",
            phone_strings(profile.phone[listed_phone]),
            "fraud",
            as_of - rng.integers(10, 400, len(listed_phone)),
            "internal",
        )
    )
    fps = [fp for fp, e in zip(rings.fingerprints, exposed, strict=True) if e for fp in fp]
    parts.append(
        _part(
            "device",
            pl.Series(fps, dtype=pl.String),
            "fraud",
            as_of - rng.integers(10, 400, len(fps)),
            "internal",
        )
    )
    organisers = rings.organiser_phone[exposed]
    parts.append(
        _part(
            "phone",
            phone_strings(organisers),
            "fraud",
            as_of - rng.integers(10, 400, len(organisers)),
            "police",
        )
    )

    wo = rng.random(len(credit.written_off_customer)) < 0.6
    who, when = credit.written_off_customer[wo], credit.written_off_day[wo]
    # One entry per customer, at the first write-off.
    order = np.lexsort((when, who))
    first = np.ones(len(order), dtype=bool)
    first[1:] = who[order][1:] != who[order][:-1]
    who, when = who[order][first], when[order][first]
    parts.append(
        _part(
            "id_number",
            profile.id_number.gather(who),
            "default",
            np.minimum(when + rng.integers(0, 30, len(who)), as_of),
            "internal",
        )
    )

    court = np.flatnonzero(rng.random(core.n) < sigmoid(-6.2 + 1.3 * core.risk + 0.8 * core.distressed))
    parts.append(
        _part(
            "id_number",
            profile.id_number.gather(court),
            "court_enforced",
            as_of - rng.integers(5, 3 * 365, len(court)),
            "court",
        )
    )
    return pl.concat(parts), exposed


def outsider_entries(config: SandboxConfig, timeline: Timeline) -> pl.DataFrame:
    """Entries about people who are not customers."""
    rng = stream(config.seed, Family.OUTSIDERS)
    as_of = timeline.as_of
    n = config.customers
    k = max(3, round(n * 0.004))
    region = rng.integers(0, len(vocab.OUTSIDER_REGIONS), k)
    age = rng.uniform(25.0, 70.0, k)
    birth = as_of - np.floor(age * 365.2425).astype(np.int64)
    male = rng.random(k) < 0.7
    codes = np.asarray([int(c) for c in vocab.OUTSIDER_REGIONS], dtype=np.int64)[region]
    ids = id_numbers(codes, birth, id_sequences(region, birth, male))
    reason = np.where(rng.random(k) < 0.85, "court_enforced", "other")
    court = _part(
        "id_number",
        ids,
        pl.Series(reason.tolist(), dtype=pl.String),
        as_of - rng.integers(5, 5 * 365, k),
        "court",
    )
    p = max(2, round(n * 0.0005))
    phones = PhonePlan(n).fraud_line(config.seed, ring_stride(config) * config.chunks + np.arange(p))
    fraud_phones = _part(
        "phone", phone_strings(phones), "fraud", as_of - rng.integers(5, 2 * 365, p), "industry"
    )
    fps = hex_strings(fingerprint_words(config.seed, _FP_OUTSIDER, np.arange(p), np.zeros(p, dtype=np.int64)))
    devices = _part("device", fps, "fraud", as_of - rng.integers(5, 2 * 365, p), "industry")
    return pl.concat([court, fraud_phones, devices])


def negative_list(entries: list[pl.DataFrame]) -> pl.DataFrame:
    """The contract table from all entries, numbered in order."""
    frame = pl.concat(entries) if entries else pl.DataFrame(schema=_SCHEMA)
    n = len(frame)
    return contract_frame(
        NEGATIVE_LIST,
        {
            "entry_id": prefixed_ids("N", np.arange(1, n + 1), 8),
            "kind": frame["kind"],
            "value": frame["value"],
            "reason": frame["reason"],
            "listed_date": frame["listed_date"].to_numpy(),
            "source": frame["source"],
        },
    )
