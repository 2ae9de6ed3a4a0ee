"""The world answers for the sandbox's customers: deterministic, and true to the ground truth."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from creditfactory.sandbox import NOT_PAID, GenerateResult, UnknownCustomer, World

from .conftest import SMALL

DATES = [SMALL.as_of + timedelta(days=7 * k) for k in range(1, 41)]


@pytest.fixture(scope="module")
def world(sandbox: GenerateResult) -> World:
    return World.load(sandbox.out_dir)


@pytest.fixture(scope="module")
def truth(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return tables["truth"].sort("customer_id")


class TestDeterminism:
    def test_answers_do_not_depend_on_order_batch_or_instance(
        self, world: World, sandbox: GenerateResult
    ) -> None:
        ids = world.ids
        on = date(2025, 8, 15)
        rev = ids[::-1]
        assert (world.responds(ids, "sms", on) == world.responds(rev, "sms", on)[::-1]).all()
        singles = np.array([world.responds([c], "call", on)[0] for c in ids[:300]])
        assert (world.responds(ids[:300], "call", on) == singles).all()
        mixed = np.concatenate([ids[100:200], ids[:100]])
        assert (world.applies(mixed, 5_000_000, on)[100:] == world.applies(ids[:100], 5_000_000, on)).all()
        assert (world.draws(ids, 3_000_000, on) == world.draws(rev, 3_000_000, on)[::-1]).all()
        paid, late = world.repays(ids, on, 123_456)
        paid_r, late_r = world.repays(rev, on, 123_456)
        assert (paid == paid_r[::-1]).all() and (late == late_r[::-1]).all()
        other = World.load(sandbox.out_dir)
        assert (other.responds(ids, "app", on) == world.responds(ids, "app", on)).all()

    def test_answers_change_with_the_date(self, world: World) -> None:
        a = world.responds(world.ids, "call", date(2025, 8, 1))
        b = world.responds(world.ids, "call", date(2025, 8, 2))
        assert (a != b).any()

    def test_single_customer_view_agrees_with_the_batch(self, world: World) -> None:
        on = date(2025, 9, 1)
        for cid in world.ids[:25]:
            one = world.customer(cid)
            assert one.responds("sms", on) == world.responds([cid], "sms", on)[0]
            assert one.applies(2_000_000, on) == world.applies([cid], 2_000_000, on)[0]
            assert one.draws(2_000_000, on) == world.draws([cid], 2_000_000, on)[0]
            paid, late = world.repays([cid], on, 50_000)
            assert one.repays(on, 50_000) == (paid[0], late[0])
            day = world.default_date([cid])[0]
            assert one.default_date() == (None if np.isnat(day) else day.astype(object))

    def test_unknown_customers_are_named(self, world: World) -> None:
        with pytest.raises(UnknownCustomer, match="C9999999999"):
            world.responds(["C0000000001", "C9999999999"], "sms", date(2025, 7, 1))


class TestResponses:
    @pytest.mark.parametrize("channel", ["sms", "app", "call"])
    def test_response_rate_follows_the_true_propensity(
        self, world: World, truth: pl.DataFrame, channel: str
    ) -> None:
        p = truth[f"p_respond_{channel}"].to_numpy()
        hits = np.stack([world.responds(truth["customer_id"], channel, d) for d in DATES])  # type: ignore[arg-type]
        trials = hits.size
        se = np.sqrt(p.mean() * (1 - p.mean()) / trials)
        assert abs(hits.mean() - p.mean()) < 4 * se
        per_customer = hits.mean(axis=0)
        top, bottom = p >= np.quantile(p, 0.75), p <= np.quantile(p, 0.25)
        assert per_customer[top].mean() > 1.5 * per_customer[bottom].mean()
        if channel == "app":
            assert not hits[:, ~truth["is_digital"].to_numpy()].any()

    def test_larger_offers_draw_more_applications_and_rings_apply(
        self, world: World, truth: pl.DataFrame
    ) -> None:
        ids = truth["customer_id"]
        small = np.mean([world.applies(ids, 500_000, d).mean() for d in DATES[:10]])
        large = np.mean([world.applies(ids, 10_000_000, d).mean() for d in DATES[:10]])
        assert large > small + 0.05
        ring = truth.filter("is_fraudster")["customer_id"]
        assert np.mean([world.applies(ring, 500_000, d).mean() for d in DATES[:10]]) > 0.8

    def test_drawdowns_stay_within_the_line(self, world: World, truth: pl.DataFrame) -> None:
        limit = 3_000_000
        drawn = world.draws(truth["customer_id"], limit, date(2025, 7, 20))
        assert ((drawn >= 0) & (drawn <= limit)).all()
        assert ((drawn % 10_000 == 0) | (drawn == limit)).all()
        assert 0.3 < (drawn > 0).mean() < 0.95
        ring = truth.filter("is_fraudster")["customer_id"]
        assert (world.draws(ring, limit, date(2025, 7, 20)) == limit).all()


class TestRepayment:
    def test_default_dates_are_the_truths(self, world: World, truth: pl.DataFrame) -> None:
        days = world.default_date(truth["customer_id"])
        expected = truth["default_date_36m"].to_numpy().astype("datetime64[D]")
        assert ((days == expected) | (np.isnat(days) & np.isnat(expected))).all()
        assert (truth["default_date"].is_not_null() == truth["bad_12m"]).all()
        assert np.nanmax(days.astype("datetime64[D]")) <= np.datetime64(world.horizon_end)

    def test_defaulters_stop_paying_from_their_default_date(self, world: World, truth: pl.DataFrame) -> None:
        defaulters = truth.filter(pl.col("default_date_36m").is_not_null())
        assert defaulters.height > 100
        ids = defaulters["customer_id"]
        default = defaulters["default_date_36m"].to_list()
        for lag in (0, 1, 30, 200):
            paid_all = [
                world.repays([c], d + timedelta(days=lag), 80_000) for c, d in zip(ids, default, strict=True)
            ]
            assert all(p[0][0] == 0 and p[1][0] == NOT_PAID for p in paid_all)
        before = [
            world.repays([c], d - timedelta(days=120), 80_000)
            for c, d in zip(ids, default, strict=True)
            if d - timedelta(days=120) > SMALL.as_of
        ]
        paid_share = np.mean([p[0][0] == 80_000 for p in before])
        assert paid_share > 0.8

    def test_riskier_customers_pay_late_more_often(self, world: World, truth: pl.DataFrame) -> None:
        sound = truth.filter(pl.col("default_date_36m").is_null())
        pd = sound["pd_12m"].to_numpy()
        late = np.stack([world.repays(sound["customer_id"], d, 100_000)[1] for d in DATES])
        assert (late >= 0).all()  # no default, every instalment paid
        rate = (late > 0).mean(axis=0)
        top, bottom = pd >= np.quantile(pd, 0.8), pd <= np.quantile(pd, 0.2)
        assert rate[top].mean() > 2 * rate[bottom].mean()
        assert 0.01 < rate.mean() < 0.15
        assert late[late > 0].max() < 90

    def test_amounts_are_paid_in_full_or_not_at_all(self, world: World) -> None:
        due = np.arange(1, len(world.ids) + 1, dtype=np.int64) * 100
        paid, late = world.repays(world.ids, date(2026, 3, 1), due)
        assert ((paid == due) | ((paid == 0) & (late == NOT_PAID))).all()
