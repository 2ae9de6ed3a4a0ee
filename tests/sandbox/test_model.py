"""Pure pieces of the sandbox: config, calibration, identity numbers, hashing, exact decimals."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from creditfactory.sandbox import SandboxConfig, SandboxError
from creditfactory.sandbox.frames import scaled_decimal
from creditfactory.sandbox.model import draw_core, solve_intercept
from creditfactory.sandbox.people import PhonePlan, id_numbers, id_sequences, phone_numbers
from creditfactory.sandbox.rand import hash_uniform, sigmoid
from creditfactory.security import idcard


class TestSandboxConfig:
    def test_defaults_describe_a_county_bank(self) -> None:
        config = SandboxConfig(customers=1_000, seed=1)
        assert config.as_of == date(2025, 6, 30) and config.months == 24 and config.bad_rate == 0.04
        assert dict(config.segment_mix) == {"farmer": 0.40, "merchant": 0.20, "salaried": 0.28, "other": 0.12}
        assert config.chunks == 1 and config.format == "parquet"

    def test_round_trips_through_a_dict(self) -> None:
        config = SandboxConfig(
            customers=5, seed=2, bad_rate=0.06, format="csv", segment_mix={"farmer": 0.5, "salaried": 0.5}
        )
        assert SandboxConfig.from_dict(config.to_dict()) == config
        assert dict(config.segment_mix) == {"farmer": 0.5, "merchant": 0.0, "salaried": 0.5, "other": 0.0}

    def test_names_every_problem(self) -> None:
        with pytest.raises(SandboxError) as err:
            SandboxConfig(
                customers=0,
                seed=-1,
                as_of=date(2025, 6, 15),
                bad_rate=0.5,
                segment_mix={"farmer": 0.7, "fisher": 0.1},
                format="xlsx",  # type: ignore[arg-type]
            )
        text = str(err.value)
        for word in ("customers", "seed", "as_of", "bad_rate", "fisher", "sum to 1", "format"):
            assert word in text


class TestCalibration:
    @pytest.mark.parametrize("target", [0.02, 0.04, 0.08])
    def test_intercept_hits_the_mean_pd(self, target: float) -> None:
        eta = draw_core(SandboxConfig(customers=20_000, seed=3), 0).eta
        b0 = solve_intercept(eta, target)
        assert float(np.mean(sigmoid(b0 + eta))) == pytest.approx(target, abs=1e-12)

    def test_rings_are_small_groups_of_digital_customers(self) -> None:
        core = draw_core(SandboxConfig(customers=50_000, seed=4, ring_share=0.01), 0)
        sizes = np.bincount(core.ring[core.in_ring])
        assert sizes.min() >= 3 and sizes.max() <= 15
        assert 0.009 < core.in_ring.mean() < 0.012
        assert core.is_digital[core.in_ring].all()


class TestIdentity:
    def test_id_numbers_are_valid_unique_and_agree_with_birth_and_sex(self) -> None:
        rng = np.random.default_rng(0)
        n = 20_000
        region = rng.integers(0, 2, n)
        birth = rng.integers(-3_000, -2_950, n)  # 50 birth days: many people share one
        male = rng.random(n) < 0.5
        seq = id_sequences(region, birth, male)
        codes = np.where(region == 0, 341523, 340124)
        ids = id_numbers(codes, birth, seq).to_list()
        assert len(set(ids)) == n
        for value, b, m in zip(ids[:2_000], birth[:2_000], male[:2_000], strict=True):
            parsed = idcard.parse(value)
            assert parsed.birth_date == date.fromordinal(date(1970, 1, 1).toordinal() + int(b))
            assert parsed.sex == ("M" if m else "F")

    def test_too_many_twins_are_refused(self) -> None:
        n = 1_001
        with pytest.raises(SandboxError, match="share a region"):
            id_sequences(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))

    def test_phone_plan_gives_everyone_a_distinct_valid_number(self) -> None:
        plan = PhonePlan(100_000)
        people = np.arange(0, 2 * plan.outsider_start + plan.outsiders, 7)
        numbers = phone_numbers(11, people)
        assert len(np.unique(numbers)) == len(numbers)
        assert all(re.fullmatch(r"1[3-9]\d{9}", str(x)) for x in numbers[:5_000])
        assert (plan.customer(11, np.arange(10)) == phone_numbers(11, np.arange(10))).all()


class TestHashing:
    def test_uniforms_are_pure_functions_of_their_keys(self) -> None:
        keys = np.arange(100_000)
        u = hash_uniform(9, keys, 20_000, 3)
        assert ((u >= 0) & (u < 1)).all()
        assert abs(u.mean() - 0.5) < 0.01
        assert (hash_uniform(9, keys[::-1], 20_000, 3) == u[::-1]).all()
        assert (hash_uniform(9, keys[5:6], 20_000, 3) == u[5]).all()
        assert not (hash_uniform(10, keys, 20_000, 3) == u).any()


class TestDecimals:
    def test_scaled_integers_become_exact_decimals(self) -> None:
        fen = np.array([0, 1, -5, 123_456_789_012_345_678, 999_999_999_999_999_999, -999_999_999_999_999_999])
        amounts = scaled_decimal(fen, scale=2, precision=18).to_list()
        assert amounts == [Decimal(int(v)).scaleb(-2) for v in fen]
        rates = scaled_decimal(np.array([4_350_000]), scale=8, precision=12).to_list()
        assert rates == [Decimal("0.04350000")]
