"""The sandbox's applicants: a deterministic stream of valid application requests, with the
planted rings applying in bursts from shared phones, and the truth beside each application."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from creditfactory.origination.schemas import ApplicationCreate
from creditfactory.sandbox import SandboxConfig, generate
from creditfactory.sandbox.applicants import (
    PRODUCTS,
    ApplicantSettings,
    generate_applicants,
    haversine_km,
    load_sandbox,
    request_bodies,
)
from creditfactory.sandbox.config import SandboxError
from creditfactory.security import idcard


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("applicants") / "bank"
    generate(
        SandboxConfig(customers=1_500, seed=5, chunk_size=600, ring_share=0.03, months=6), root, workers=1
    )
    return root


@pytest.fixture(scope="module")
def data(bank: Path) -> dict[str, Any]:
    return load_sandbox(bank)


@pytest.fixture(scope="module")
def offers(data: dict[str, Any]) -> pl.DataFrame:
    """A whitelist of the safest third (ring members included when they look safe) at 30,000."""
    t = data["truth"].sort("pd_12m").head(500)
    return t.select(
        "customer_id", pl.lit(Decimal("30000.00")).alias("limit_amount"), pl.lit(3).alias("version_id")
    )


@pytest.fixture(scope="module")
def stream(data: dict[str, Any], offers: pl.DataFrame) -> Any:
    return generate_applicants(data, offers=offers, settings=ApplicantSettings(seed=9, existing_rate=0.1))


def test_the_same_inputs_give_the_same_stream_whatever_the_order_of_the_extracts(
    data: dict[str, Any], offers: pl.DataFrame, stream: Any
) -> None:
    shuffled = {
        k: (v.sample(fraction=1.0, shuffle=True, seed=1) if isinstance(v, pl.DataFrame) else v)
        for k, v in data.items()
    }
    again = generate_applicants(
        shuffled, offers=offers.reverse(), settings=ApplicantSettings(seed=9, existing_rate=0.1)
    )
    assert again.requests.equals(stream.requests) and again.truth.equals(stream.truth)
    other = generate_applicants(data, offers=offers, settings=ApplicantSettings(seed=10, existing_rate=0.1))
    assert not other.requests.equals(stream.requests)
    # The whitelist's own lines (limit in fen, the version given beside) are the same offers.
    in_fen = offers.select("customer_id", pl.lit(3_000_000).alias("limit_fen"))
    same = generate_applicants(
        data, offers=in_fen, offer_version_id=3, settings=ApplicantSettings(seed=9, existing_rate=0.1)
    )
    assert same.requests.equals(stream.requests)


def test_every_kind_applies_once_in_time_order(stream: Any, offers: pl.DataFrame) -> None:
    counts = stream.counts()
    assert counts["offer"] > 30 and counts["existing"] > 30 and counts["ring"] > 20, counts
    r, t = stream.requests, stream.truth
    assert r["customer_id"].n_unique() == r.height == t.height
    assert r["application_ref"].to_list() == [f"SA{i:08d}" for i in range(1, r.height + 1)]
    assert (r["customer_id"] == t["customer_id"]).all()
    assert r["applied_at"].is_sorted()
    start, end = date(2025, 7, 1), date(2025, 7, 31)
    local = r["applied_at"] + timedelta(hours=8)
    assert local.dt.date().min() >= start and local.dt.date().max() <= end
    assert (local.dt.date() == r["business_date"]).all()
    # Honest applicants apply between 07:00 and 23:00 local time.
    honest_hours = local.filter(~t["is_ring"]).dt.hour()
    assert honest_hours.min() >= 7 and honest_hours.max() < 23
    # Offer holders take up their offer; nobody else names one.
    listed = set(offers["customer_id"])
    by_kind = r.with_columns(t["kind"])
    offer_rows = by_kind.filter(pl.col("kind") == "offer")
    assert set(offer_rows["customer_id"]) <= listed and (offer_rows["offer_version_id"] == 3).all()
    assert by_kind.filter(pl.col("kind") == "existing")["customer_id"].is_in(list(listed)).sum() == 0
    assert (by_kind.filter(pl.col("offer_version_id").is_not_null())["amount_fen"] <= 3_000_000).all()


def test_requests_keep_to_the_products_and_the_api_accepts_every_body(stream: Any) -> None:
    for row in stream.requests.iter_rows(named=True):
        p = PRODUCTS[row["product_code"]]
        assert p.min_fen <= row["amount_fen"] <= p.max_fen and row["amount_fen"] % 10_000 == 0
        assert row["term_months"] in p.terms and row["purpose"] in p.purposes
        idcard.parse(row["id_number"])
    for _, body in request_bodies(stream.requests):
        parsed = ApplicationCreate.model_validate(body)
        assert parsed.amount == Decimal(body["amount"])


def test_the_products_are_the_sample_products() -> None:
    from creditfactory.servicing.model import load_products, sample_products_dir

    samples = load_products(sample_products_dir())
    for code, p in PRODUCTS.items():
        s = samples[code]
        assert (p.min_fen, p.max_fen) == (int(s.min_amount * 100), int(s.max_amount * 100))
        assert all(s.min_term <= t <= s.max_term for t in p.terms)


def test_rings_apply_in_bursts_from_shared_phones_and_list_each_other(
    stream: Any, data: dict[str, Any]
) -> None:
    r = stream.requests.with_columns(stream.truth.select("ring_id", "is_ring", "kind", "far_from_home"))
    rings = data["rings"]
    members = r.filter(pl.col("is_ring"))
    assert (members["kind"] == "ring").all()
    phones = dict(zip(data["customers"]["customer_id"], data["customers"]["phone"], strict=True))
    far_rings = 0
    for ring in rings.iter_rows(named=True):
        mine = members.filter(pl.col("ring_id") == ring["ring_id"])
        if mine.height < 2:
            continue
        span = mine["applied_at"].max() - mine["applied_at"].min()
        assert span <= timedelta(hours=2)
        assert set(mine["device_fingerprint"]) <= set(ring["fingerprints"])
        assert set(mine["ip"]) <= set(ring["ip_addresses"])
        fellows = {phones[c] for c in ring["members"]} | {ring["organiser_phone"]}
        for contacts in mine["contacts"]:
            assert any(c["phone"] in fellows for c in contacts)
        located = mine.drop_nulls("lat")
        if located.height > 1 and located["far_from_home"].all():  # the ring's one place, far away
            assert located["lat"].max() - located["lat"].min() < 0.1
            far_rings += 1
    assert far_rings >= 1
    t = stream.truth
    honest = t.filter(~pl.col("is_ring"))
    ring_t = t.filter(pl.col("is_ring"))
    assert ring_t["shared_device"].all() and not honest["shared_device"].any()
    assert ring_t["income_overstated"].mean() > 3 * honest["income_overstated"].mean()
    assert ring_t["far_from_home"].mean() > 3 * honest["far_from_home"].mean()
    emu = stream.requests.with_columns(t["is_ring"]).group_by("is_ring").agg(pl.col("is_emulator").mean())
    rate = dict(emu.iter_rows())
    assert rate[True] > 0.1 > rate[False]


def test_the_truth_is_the_sandboxs(stream: Any, data: dict[str, Any]) -> None:
    t = stream.truth.join(
        data["truth"].select("customer_id", pl.col("pd_12m").alias("pd"), pl.col("bad_12m").alias("bad")),
        on="customer_id",
    )
    assert t.height == stream.truth.height
    assert (t["pd_12m"] == t["pd"]).all() and (t["bad_12m"] == t["bad"]).all()
    assert (t["truly_bad"] == (t["is_ring"] | t["bad_12m"])).all()
    # far_from_home says what the coordinates say.
    r = stream.requests.join(
        data["customers"].select("customer_id", "lat", "lon"), on="customer_id", suffix="_home"
    )
    r = r.join(stream.truth.select("customer_id", "far_from_home"), on="customer_id").drop_nulls(
        ["lat", "lat_home"]
    )
    km = haversine_km(
        r["lat"].to_numpy(), r["lon"].to_numpy(), r["lat_home"].to_numpy(), r["lon_home"].to_numpy()
    )
    assert ((km > 50) == r["far_from_home"].to_numpy()).all()


def test_haversine_worked_example() -> None:
    # docs/decisioning.md: from 30 N 120 E to 31 N 121 E is 146.776 km.
    assert float(haversine_km(30.0, 120.0, 31.0, 121.0)) == pytest.approx(146.776, abs=0.001)


def test_bad_settings_and_inputs(bank: Path, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="days"):
        ApplicantSettings(days=0)
    with pytest.raises(SandboxError, match="offer_reach"):
        ApplicantSettings(offer_reach=1.5)
    with pytest.raises(SandboxError, match="no sandbox"):
        generate_applicants(tmp_path)
    with pytest.raises(SandboxError, match="limit_fen"):
        generate_applicants(bank, offers=pl.DataFrame({"customer_id": ["C0000000001"]}))
    nobody = generate_applicants(
        bank, settings=ApplicantSettings(existing_rate=0.0, ring_rate=0.0, offer_reach=0.0)
    )
    assert nobody.requests.height == 0 and nobody.counts()["all"] == 0
