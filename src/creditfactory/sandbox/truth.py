"""The ground truth files: what each customer really is, and the planted rings.

``truth/customers/part-NNNNN.parquet`` (one row per customer, same parts as the extracts):

==================  =========================================================================
column              meaning
==================  =========================================================================
customer_id         as in the extracts
customer_index      position in the population (customer_id is ``C`` + index + 1)
segment             farmer, merchant, salaried, other
pd_12m              true probability of a default in the 12 months after ``as_of``
pd_hist             the propensity that drove the history (no recent distress, no ring)
bad_12m             the realised default (drawn from ``pd_12m``)
default_date        the day the customer stops paying for good, if within 12 months
default_date_36m    the same within three years (what the world uses)
risk_trait          latent traits (standard normal; see ``model``)
income_trait
stability_trait
digital_trait
credit_need
annual_income       household income in yuan
is_digital          uses mobile banking (can see app pop-ups)
distress_month      first month of a distress episode in the history, if any
p_respond_sms       chance of responding to one contact on each channel
p_respond_app
p_respond_call
desired_amount      the credit the customer would like, in fen
p_apply             chance of applying after seeing an offer of the desired amount
ring_id             the fraud ring the customer belongs to, if any
is_fraudster        member of a fraud ring
==================  =========================================================================

``truth/rings.parquet``: ring_id, size, exposed (on the negative list), members, shared
fingerprints, shared IP addresses and the organiser's phone.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from creditfactory.contract.tables import SEGMENTS
from creditfactory.sandbox.config import SandboxConfig
from creditfactory.sandbox.digital import Rings
from creditfactory.sandbox.frames import pick, prefixed_ids, with_nulls
from creditfactory.sandbox.model import Core, Truth
from creditfactory.sandbox.people import Profile, phone_strings
from creditfactory.sandbox.timeline import Timeline


def ring_ids(ring_global: np.ndarray) -> pl.Series:
    return prefixed_ids("R", ring_global + 1, 8)


def _dates(days: np.ndarray, null: np.ndarray) -> pl.Series:
    s = pl.Series(np.where(null, 0, days).astype(np.int32), dtype=pl.Int32).cast(pl.Date)
    return with_nulls(s, null)


def truth_frame(
    config: SandboxConfig, core: Core, truth: Truth, profile: Profile, rings: Rings
) -> pl.DataFrame:
    timeline = Timeline.of(config)
    default = truth.default_day
    in_ring = core.in_ring
    ring_label = ring_ids(
        rings.ring_global[np.maximum(core.ring, 0)]
        if len(rings.ring_global)
        else np.zeros(core.n, dtype=np.int64)
    )
    return pl.DataFrame(
        {
            "customer_id": profile.customer_id,
            "customer_index": pl.Series(core.index, dtype=pl.Int64),
            "segment": pick(SEGMENTS, core.segment.astype(np.int64)),
            "pd_12m": truth.pd_12m,
            "pd_hist": truth.pd_hist,
            "bad_12m": truth.bad_12m,
            "default_date": _dates(default, ~truth.bad_12m),
            "default_date_36m": _dates(default, default < 0),
            "risk_trait": core.risk,
            "income_trait": core.income,
            "stability_trait": core.stability,
            "digital_trait": core.digital,
            "credit_need": core.need,
            "annual_income": core.annual_income,
            "is_digital": core.is_digital,
            "distress_month": _dates(timeline.start[np.maximum(core.distress_month, 0)], ~core.distressed),
            "p_respond_sms": truth.p_respond_sms,
            "p_respond_app": truth.p_respond_app,
            "p_respond_call": truth.p_respond_call,
            "desired_amount": pl.Series(truth.desired_amount, dtype=pl.Int64),
            "p_apply": truth.p_apply,
            "ring_id": with_nulls(ring_label, ~in_ring),
            "is_fraudster": in_ring,
        }
    )


RING_SCHEMA = {
    "ring_id": pl.String,
    "size": pl.Int64,
    "exposed": pl.Boolean,
    "members": pl.List(pl.String),
    "fingerprints": pl.List(pl.String),
    "ip_addresses": pl.List(pl.String),
    "organiser_phone": pl.String,
}


def ring_frame(core: Core, profile: Profile, rings: Rings, exposed: np.ndarray) -> pl.DataFrame:
    if len(rings.ring_global) == 0:
        return pl.DataFrame(schema=RING_SCHEMA)
    members = np.flatnonzero(core.in_ring)
    by_ring = (
        pl.DataFrame({"ring": core.ring[members], "customer_id": profile.customer_id.gather(members)})
        .group_by("ring", maintain_order=True)
        .agg(pl.col("customer_id"))
        .sort("ring")
    )
    return pl.DataFrame(
        {
            "ring_id": ring_ids(rings.ring_global),
            "size": pl.Series(rings.size, dtype=pl.Int64),
            "exposed": pl.Series(exposed, dtype=pl.Boolean),
            "members": by_ring["customer_id"],
            "fingerprints": pl.Series(rings.fingerprints, dtype=pl.List(pl.String)),
            "ip_addresses": pl.Series(rings.ips, dtype=pl.List(pl.String)),
            "organiser_phone": phone_strings(rings.organiser_phone),
        },
        schema=RING_SCHEMA,
    )
