"""Devices seen on mobile banking, declared contacts, and the planted fraud rings.

Devices: every mobile-banking customer has one device, some two. Fingerprints are 128-bit
hashes, unique per device, except that about one in a hundred customers shares a family
tablet with another customer, and that members of a fraud ring log in from a handful of shared
phones (one fingerprint per four members) behind one or two shared IP addresses; emulators and
rooted phones are rare except in rings.

Contacts: two to four per customer; the first is the spouse when married, otherwise a parent
or sibling. About a third are themselves customers (their number is the customer's number).
Ring members list two or three fellow members and the ring organiser's phone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from creditfactory.contract.tables import CONTACTS, DEVICE_OS, DEVICES, RELATIONS
from creditfactory.sandbox import vocab
from creditfactory.sandbox.config import SandboxConfig
from creditfactory.sandbox.frames import concat, contract_frame, hex_strings, pick, prefixed_ids, with_nulls
from creditfactory.sandbox.model import SALARIED, Core
from creditfactory.sandbox.people import PhonePlan, Profile, phone_strings
from creditfactory.sandbox.rand import Family, choice_rows, group_offsets, hash_keys, stream
from creditfactory.sandbox.timeline import Timeline

SPOUSE, PARENT, CHILD, SIBLING, FRIEND, COLLEAGUE, OTHER_RELATION = range(7)
_FP_PERSONAL, _FP_RING, _IP_RING = 0xF1, 0xF2, 0xF3


def ring_stride(config: SandboxConfig) -> int:
    """Room for ring numbers per chunk, so that chunk * stride + local ring is unique."""
    return config.chunk_size // 3 + 1


@dataclass(frozen=True, slots=True)
class Rings:
    """The rings of one chunk (arrays by ring)."""

    ring_global: np.ndarray  # int64
    size: np.ndarray
    fingerprints: list[list[str]]
    ips: list[list[str]]
    organiser_phone: np.ndarray  # int64


@dataclass(frozen=True, slots=True)
class Digital:
    devices: pl.DataFrame
    contacts: pl.DataFrame
    rings: Rings


def fingerprint_words(seed: int, kind: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    h1 = hash_keys(seed, kind, a, b, 1)
    h2 = hash_keys(seed, kind, a, b, 2)
    return np.stack([h1, h2], axis=1)


def ring_value(values: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """``values[ring]`` for members, 0 for everyone else (and when there are no rings)."""
    if len(values) == 0:
        return np.zeros(len(ring), dtype=np.int64)
    return np.where(ring >= 0, values[np.maximum(ring, 0)], 0)


def _ipv4(rng: np.random.Generator, size: int) -> pl.Series:
    blocks = np.asarray(vocab.IP_BLOCKS)
    b = blocks[rng.integers(0, len(blocks), size)]
    second = b[:, 1] + np.floor(rng.random(size) * (b[:, 2] - b[:, 1] + 1)).astype(np.int64)
    parts = [pl.Series(b[:, 0]).cast(pl.String), pl.Series(second).cast(pl.String)]
    parts += [
        pl.Series(rng.integers(0, 256, size)).cast(pl.String),
        pl.Series(rng.integers(1, 255, size)).cast(pl.String),
    ]
    return concat(parts[0], ".", parts[1], ".", parts[2], ".", parts[3])


def build_digital(
    config: SandboxConfig, chunk: int, core: Core, profile: Profile, timeline: Timeline
) -> Digital:
    rng = stream(config.seed, Family.DIGITAL, chunk)
    n = core.n
    as_of = timeline.as_of
    plan = PhonePlan(config.customers)

    # --- rings -------------------------------------------------------------------------------
    n_rings = int(core.ring.max()) + 1 if n else 0
    ring_global = chunk * ring_stride(config) + np.arange(n_rings, dtype=np.int64)
    size = np.bincount(core.ring[core.in_ring], minlength=n_rings).astype(np.int64)
    n_fp = np.maximum(1, size // 4)
    n_ip = 1 + (rng.random(n_rings) < 0.4)
    organiser = plan.fraud_line(config.seed, ring_global)
    members = np.flatnonzero(core.in_ring)
    member_order = members[np.argsort(core.ring[members], kind="stable")]
    _, member_rank = group_offsets(size)
    rank_of = np.full(n, -1, dtype=np.int64)
    rank_of[member_order] = member_rank
    ring_fp_words = fingerprint_words(
        config.seed, _FP_RING, np.repeat(ring_global, n_fp), group_offsets(n_fp)[1]
    )
    ring_fp = hex_strings(ring_fp_words)
    ring_fp_start = np.cumsum(n_fp) - n_fp
    ring_ips = _ipv4(rng, int(n_ip.sum()))
    ring_ip_start = np.cumsum(n_ip) - n_ip

    # --- devices -----------------------------------------------------------------------------
    digital = core.is_digital
    count = np.where(digital, 1 + (rng.random(n) < 0.28), 0)
    owner, slot = group_offsets(count)
    d = len(owner)
    in_ring = core.in_ring[owner] & (slot == 0)
    ring_of = core.ring[owner]
    fp = hex_strings(fingerprint_words(config.seed, _FP_PERSONAL, core.index[owner], slot))
    shared = (rng.random(d) < 0.01) & (slot == 1) & ~core.in_ring[owner]
    partner = rng.integers(0, max(n, 1), d)
    partner_fp = hex_strings(
        fingerprint_words(config.seed, _FP_PERSONAL, core.index[partner], np.zeros(d, dtype=np.int64))
    )
    ring_pick = np.where(
        in_ring,
        ring_value(ring_fp_start, ring_of) + rank_of[owner] % np.maximum(ring_value(n_fp, ring_of), 1),
        0,
    )
    ring_device_fp = ring_fp.gather(ring_pick) if len(ring_fp) else fp
    fingerprint = pl.select(
        pl.when(pl.lit(pl.Series(in_ring)))
        .then(ring_device_fp)
        .when(pl.lit(pl.Series(shared)))
        .then(partner_fp)
        .otherwise(fp)
    ).to_series()
    os_ = choice_rows(rng, np.where(in_ring[:, None], [0.9, 0.06, 0.04], [0.72, 0.16, 0.12]))
    emulator = rng.random(d) < np.where(in_ring, 0.25, 0.001)
    rooted = (rng.random(d) < np.where(in_ring, 0.35, 0.01)) & (os_ != 1)
    ip = _ipv4(rng, d)
    ip_pick = np.where(
        in_ring,
        ring_value(ring_ip_start, ring_of) + rank_of[owner] % np.maximum(ring_value(n_ip, ring_of), 1),
        0,
    )
    if len(ring_ips):
        ip = pl.select(
            pl.when(pl.lit(pl.Series(in_ring))).then(ring_ips.gather(ip_pick)).otherwise(ip)
        ).to_series()
    ip = with_nulls(ip, (rng.random(d) < 0.08) & ~in_ring)
    since = np.maximum(profile.opened_day[owner], as_of - 4 * 365)
    first_seen = since + np.floor(rng.random(d) * np.maximum(as_of - since, 1)).astype(np.int64)
    devices = contract_frame(
        DEVICES,
        {
            "device_id": prefixed_ids("D", (core.index[owner] + 1) * 10 + slot + 1, 11),
            "customer_id": profile.customer_id.gather(owner),
            "fingerprint": fingerprint,
            "os": pick(DEVICE_OS, os_),
            "is_emulator": emulator,
            "is_rooted": rooted,
            "ip_address": ip,
            "first_seen_date": np.minimum(first_seen, as_of),
        },
    )

    # --- contacts ----------------------------------------------------------------------------
    n_contacts = 2 + (rng.random(n) < 0.6) + (rng.random(n) < 0.2)
    c_owner, c_slot = group_offsets(n_contacts)
    k = len(c_owner)
    married = profile.married[c_owner]
    rel_w = np.tile([0.0, 0.2, 0.15, 0.25, 0.25, 0.05, 0.05], (k, 1))
    rel_w[:, COLLEAGUE] = np.where(core.segment[c_owner] == SALARIED, 0.2, 0.05)
    relation = choice_rows(rng, rel_w)
    first_rel = np.where(married, SPOUSE, np.where(rng.random(k) < 0.6, PARENT, SIBLING))
    relation = np.where(c_slot == 0, first_rel, relation)
    is_customer = rng.random(k) < np.where(relation == SPOUSE, 0.3, 0.35)
    other = rng.integers(0, max(config.customers - 1, 1), k)
    other = np.where(other >= core.index[c_owner], other + 1, other)  # never oneself
    outsider = rng.integers(0, plan.outsiders, k)
    phone = np.where(
        is_customer & (config.customers > 1),
        plan.customer(config.seed, np.minimum(other, config.customers - 1)),
        plan.outsider(config.seed, outsider),
    )

    # Ring members: fellow members and the organiser.
    ring_rows = np.flatnonzero(core.in_ring[c_owner])
    if len(ring_rows):
        r = core.ring[c_owner[ring_rows]]
        me = rank_of[c_owner[ring_rows]]
        sz = size[r]
        start = np.cumsum(size) - size
        fellow_rank = (me + 1 + c_slot[ring_rows]) % sz
        fellow = member_order[start[r] + fellow_rank]
        organiser_row = c_slot[ring_rows] == n_contacts[c_owner[ring_rows]] - 1
        phone[ring_rows] = np.where(
            organiser_row, organiser[r], plan.customer(config.seed, core.index[fellow])
        )
        relation[ring_rows] = np.where(
            organiser_row, OTHER_RELATION, np.where(rng.random(len(ring_rows)) < 0.7, FRIEND, COLLEAGUE)
        )
        # A member whose fellow would be itself (ring of one after truncation) lists the organiser.
        selfish = fellow == c_owner[ring_rows]
        phone[ring_rows[selfish]] = organiser[r[selfish]]

    contacts = pl.DataFrame(
        {
            "customer_id": profile.customer_id.gather(c_owner),
            "contact_phone": phone_strings(phone),
            "relation": pick(RELATIONS, relation),
        }
    ).unique(subset=["customer_id", "contact_phone"], keep="first", maintain_order=True)
    contacts = contract_frame(CONTACTS, {c: contacts[c] for c in contacts.columns})

    fps = [ring_fp.slice(int(s), int(c)).to_list() for s, c in zip(ring_fp_start, n_fp, strict=True)]
    ips = [ring_ips.slice(int(s), int(c)).to_list() for s, c in zip(ring_ip_start, n_ip, strict=True)]
    rings = Rings(ring_global=ring_global, size=size, fingerprints=fps, ips=ips, organiser_phone=organiser)
    return Digital(devices=devices, contacts=contacts, rings=rings)
