"""The sandbox as a world the bank acts on: how its customers respond, apply, draw and repay.

A :class:`World` is built from a generated sandbox's truth (``World.load(out_dir)``). It keeps
no state between calls: every answer is a pure function of (seed, customer, date, action),
computed with a counter-based hash (splitmix64), so the same question gets the same answer
whatever else was asked before and whichever customers share the batch.

The rules (see :mod:`creditfactory.sandbox.model` for the formulas):

* ``responds``: one contact on a channel gets a response with the customer's true
  propensity ``p_respond_<channel>`` (app pop-ups reach only mobile-banking users);
* ``applies``: after seeing an offer, need, a larger offer relative to the credit the customer
  wants, and risk (adverse selection) raise the chance to apply; ring members nearly always do;
* ``draws``: those who draw take 10% to 100% of the line, more with need, in steps of 100 yuan;
  ring members take everything;
* ``repays``: a customer whose default date is on or before the due date pays nothing; the
  others pay in full, on time mostly, late with a chance that rises with ``pd_12m`` and in
  the 90 days before a default (a late payment that would land after the default is not made);
* ``default_date``: the day the customer stops paying for good, within three years of
  ``as_of`` (``NaT`` when none).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from creditfactory.errors import NotFound
from creditfactory.sandbox.config import SandboxConfig, SandboxError
from creditfactory.sandbox.model import (
    HORIZON_DAYS,
    apply_probability,
    days_late,
    draw_share,
    late_probability,
)
from creditfactory.sandbox.rand import day_number, hash_uniform, sigmoid

Channel = Literal["sms", "app", "call"]
CustomerIds = Sequence[str] | np.ndarray | pl.Series

#: ``days_late`` of an instalment that is not paid at all.
NOT_PAID = -1

_CHANNELS: dict[str, int] = {"sms": 1, "app": 2, "call": 3}
_RESPOND, _APPLY, _DRAW, _DRAW_SHARE, _LATE, _LATE_DAYS = 11, 12, 13, 14, 15, 16
#: 100 yuan, the step of a drawdown.
DRAW_STEP_FEN = 10_000

_COLUMNS = (
    "customer_id",
    "customer_index",
    "pd_12m",
    "default_date_36m",
    "risk_trait",
    "credit_need",
    "is_fraudster",
    "p_respond_sms",
    "p_respond_app",
    "p_respond_call",
    "desired_amount",
)


class UnknownCustomer(NotFound):
    code = "sandbox_unknown_customer"
    title = "Not a customer of the sandbox"


@dataclass(frozen=True, slots=True, eq=False)
class World:
    """The customers' true make-up and the rules of their behaviour."""

    seed: int
    as_of: date
    bad_rate: float
    ids: np.ndarray  # str, sorted
    index: np.ndarray  # int64 customer index (hash key)
    pd_12m: np.ndarray
    default_day: np.ndarray  # int64 day number, -1 if none within the horizon
    risk: np.ndarray
    need: np.ndarray
    ring: np.ndarray  # bool
    desired: np.ndarray  # int64 fen
    p_respond: dict[str, np.ndarray]

    @classmethod
    def load(cls, out_dir: Path | str) -> World:
        """The world of the sandbox generated into ``out_dir``."""
        root = Path(out_dir)
        manifest_path = root / "manifest.json"
        if not manifest_path.exists():
            raise SandboxError(f"{root} holds no sandbox (no manifest.json)")
        config = SandboxConfig.from_dict(json.loads(manifest_path.read_text(encoding="utf-8"))["config"])
        truth = pl.read_parquet(root / "truth" / "customers" / "*.parquet", columns=list(_COLUMNS))
        return cls.from_truth(truth, seed=config.seed, as_of=config.as_of, bad_rate=config.bad_rate)

    @classmethod
    def from_truth(cls, truth: pl.DataFrame, *, seed: int, as_of: date, bad_rate: float) -> World:
        truth = truth.sort("customer_id")
        default = truth["default_date_36m"].cast(pl.Int64).fill_null(-1).to_numpy()
        return cls(
            seed=seed,
            as_of=as_of,
            bad_rate=bad_rate,
            ids=truth["customer_id"].to_numpy().astype(str),
            index=truth["customer_index"].to_numpy(),
            pd_12m=truth["pd_12m"].to_numpy(),
            default_day=default,
            risk=truth["risk_trait"].to_numpy(),
            need=truth["credit_need"].to_numpy(),
            ring=truth["is_fraudster"].to_numpy(),
            desired=truth["desired_amount"].to_numpy(),
            p_respond={c: truth[f"p_respond_{c}"].to_numpy() for c in _CHANNELS},
        )

    @property
    def horizon_end(self) -> date:
        """Last day a default date can fall on."""
        return date.fromordinal(self.as_of.toordinal() + HORIZON_DAYS)

    def positions(self, customer_ids: CustomerIds) -> np.ndarray:
        """Row of each customer; raises :class:`UnknownCustomer` naming the first unknown id."""
        ids = np.asarray(
            customer_ids.to_list() if isinstance(customer_ids, pl.Series) else customer_ids, dtype=str
        )
        ids = np.atleast_1d(ids)
        pos = np.searchsorted(self.ids, ids)
        pos = np.minimum(pos, len(self.ids) - 1)
        bad = self.ids[pos] != ids if len(self.ids) else np.ones(len(ids), dtype=bool)
        if bad.any():
            raise UnknownCustomer(f"not a sandbox customer: {ids[np.argmax(bad)]!r}", count=int(bad.sum()))
        return pos

    def _u(self, pos: np.ndarray, on: date, action: int, extra: int = 0) -> np.ndarray:
        return hash_uniform(self.seed, self.index[pos], day_number(on), action, extra)

    def responds(self, customer_ids: CustomerIds, channel: Channel, on: date) -> np.ndarray:
        """Whether each customer responds to one contact on ``channel`` made on ``on``."""
        if channel not in _CHANNELS:
            raise SandboxError(f"unknown channel {channel!r}; known: {', '.join(_CHANNELS)}")
        pos = self.positions(customer_ids)
        return self._u(pos, on, _RESPOND, _CHANNELS[channel]) < self.p_respond[channel][pos]

    def applies(self, customer_ids: CustomerIds, offer_limit_fen: np.ndarray | int, on: date) -> np.ndarray:
        """Whether each customer applies on ``on`` after seeing an offer of ``offer_limit_fen``."""
        pos = self.positions(customer_ids)
        offer = np.broadcast_to(np.asarray(offer_limit_fen, dtype=np.int64), pos.shape)
        p = apply_probability(self.need[pos], self.risk[pos], self.ring[pos], offer, self.desired[pos])
        return self._u(pos, on, _APPLY) < p

    def draws(self, customer_ids: CustomerIds, limit_fen: np.ndarray | int, on: date) -> np.ndarray:
        """Fen each customer draws on ``on`` from a line of ``limit_fen`` (0 when not drawing)."""
        pos = self.positions(customer_ids)
        limit = np.broadcast_to(np.asarray(limit_fen, dtype=np.int64), pos.shape)
        need = self.need[pos]
        draws = (self._u(pos, on, _DRAW) < sigmoid(0.8 + 0.8 * need)) | self.ring[pos]
        share = np.where(self.ring[pos], 1.0, draw_share(need, self._u(pos, on, _DRAW_SHARE)))
        amount = np.floor(limit * share / DRAW_STEP_FEN).astype(np.int64) * DRAW_STEP_FEN
        amount = np.where(self.ring[pos], limit, np.minimum(np.maximum(amount, DRAW_STEP_FEN), limit))
        return np.where(draws & (limit > 0), amount, 0).astype(np.int64)

    def repays(
        self, customer_ids: CustomerIds, due_date: date, amount_due_fen: np.ndarray | int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fen paid and days late for an instalment due on ``due_date``.

        ``days_late`` is 0 for a payment on the due date and :data:`NOT_PAID` (-1) when nothing
        is paid; paid amounts are all or nothing.
        """
        pos = self.positions(customer_ids)
        due = np.broadcast_to(np.asarray(amount_due_fen, dtype=np.int64), pos.shape)
        day = day_number(due_date)
        default = self.default_day[pos]
        has_default = default >= 0
        stopped = has_default & (default <= day)
        to_default = np.where(has_default, default - day, -1)
        pd = self.pd_12m[pos]
        late = self._u(pos, due_date, _LATE) < late_probability(pd, self.bad_rate, to_default)
        lateness = np.where(late, days_late(pd, self._u(pos, due_date, _LATE_DAYS)), 0)
        stopped = stopped | (has_default & (day + lateness >= default))
        paid = np.where(stopped, 0, due).astype(np.int64)
        return paid, np.where(stopped, NOT_PAID, lateness).astype(np.int64)

    def default_date(self, customer_ids: CustomerIds) -> np.ndarray:
        """``datetime64[D]`` day each customer stops paying, ``NaT`` if not within the horizon."""
        default = self.default_day[self.positions(customer_ids)]
        return np.where(default >= 0, default, np.iinfo(np.int64).min).astype("datetime64[D]")

    def customer(self, customer_id: str) -> CustomerWorld:
        """The same rules for one customer, with scalar answers."""
        self.positions([customer_id])
        return CustomerWorld(self, customer_id)


@dataclass(frozen=True, slots=True)
class CustomerWorld:
    """One customer of a :class:`World`; every method is a pure function of its arguments."""

    world: World
    customer_id: str

    def responds(self, channel: Channel, on: date) -> bool:
        return bool(self.world.responds([self.customer_id], channel, on)[0])

    def applies(self, offer_limit_fen: int, on: date) -> bool:
        return bool(self.world.applies([self.customer_id], offer_limit_fen, on)[0])

    def draws(self, limit_fen: int, on: date) -> int:
        return int(self.world.draws([self.customer_id], limit_fen, on)[0])

    def repays(self, due_date: date, amount_due_fen: int) -> tuple[int, int]:
        paid, late = self.world.repays([self.customer_id], due_date, amount_due_fen)
        return int(paid[0]), int(late[0])

    def default_date(self) -> date | None:
        d = self.world.default_date([self.customer_id])[0]
        return None if np.isnat(d) else d.astype(object)
