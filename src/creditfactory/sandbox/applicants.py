"""The sandbox's applicants: a deterministic stream of online applications, with their truth.

From a generated sandbox bank (its extracts and truth) and, when given, the offers of a
whitelist version, :func:`generate_applicants` draws who applies over a window of days and
what they send to ``POST /v1/applications``:

* **offer**: whitelisted customers responding to their offer: reached with ``offer_reach``,
  then applying with the world's chance (``sandbox.model.apply_probability``: need, a larger
  offer and risk push up); they ask for 30% to 100% of the offer;
* **existing**: customers without an offer who apply anyway, with ``existing_rate`` scaled by
  need and risk (adverse selection); they ask for about the credit they want;
* **ring**: members of the planted fraud rings (``ring_rate`` of them, whatever their offer),
  in one burst per ring: within about two hours, at any hour, from the ring's shared phones and
  IP addresses (emulators and rooted phones common), often from one place far from home, with
  income overstated most of the time, listing fellow members and the organiser as contacts,
  asking for the most the product (or their offer) allows.

Every draw is a counter-based hash of (seed, customer, draw), so the stream is the same for the
same sandbox, offers and settings, whatever the chunking or order of the extracts.

Two frames come back, one row per application, in the order of ``applied_at``:

``requests`` (what the bank receives; amounts in fen, times in UTC):

=======================  ===================================================================
application_ref          ``SA`` and eight digits, in time order
applied_at               when the customer submits (UTC)
business_date            the local (UTC+8) calendar day of ``applied_at``
customer_id              the applicant's customer number
channel                  ``app`` (mobile-banking users), ``wechat`` or ``h5``
product_code             by segment: consumer (salaried, other), merchant, farmer products
amount_fen               within the product's bounds and at most the offer's limit
term_months              one of the product's terms
purpose                  a purpose that fits the product
declared_income_fen      declared annual income (null: not given)
offer_version_id         the whitelist version of the offer shown (null: no offer)
name, id_number, phone   as the bank holds them
device_fingerprint       the customer's mobile-banking device, a ring's shared phone, or a new one
device_os, device_model  e.g. ``Android 14`` / ``Xiaomi 13``
is_emulator, is_rooted   device flags
ip                       IPv4 address
lat, lon                 where the phone says it is (null: location not shared)
contacts                 list of {name, phone, relation}: the customer's declared contacts
=======================  ===================================================================

``truth`` (what the bank never sees): application_ref, customer_id, kind, ring_id, is_ring,
ring_exposed (the ring is on the negative list), pd_12m (true 12-month default probability),
bad_12m (realised default), truly_bad (a ring member or a realised default), annual_income
(true, yuan), declared_income (yuan), income_overstated (declared above 1.5 times the truth),
far_from_home (applied more than 50 km from home), shared_device (a ring phone).

Only tests, benchmarks, the demo and the CLI read this module: production code never imports
the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from creditfactory.sandbox import vocab
from creditfactory.sandbox.config import SandboxConfig, SandboxError
from creditfactory.sandbox.frames import hex_strings
from creditfactory.sandbox.model import apply_probability
from creditfactory.sandbox.rand import day_number, hash_keys, hash_uniform, sigmoid

OFFER, EXISTING, RING = "offer", "existing", "ring"
KINDS = (OFFER, EXISTING, RING)

#: China standard time is UTC+8 all year.
LOCAL_OFFSET_S = 8 * 3600
#: An application further than this from home counts as far (truth column ``far_from_home``).
FAR_KM = 50.0
#: Declared income above this multiple of the truth counts as overstated.
OVERSTATED = 1.5

_KIND_CODE = {OFFER: 1, EXISTING: 2, RING: 3}
# Draw numbers (the last key of each hash): one per independent decision about an applicant.
(
    _D_REACH,
    _D_APPLY,
    _D_EXISTING,
    _D_RING,
    _D_DAY,
    _D_TIME,
    _D_SHARE,
    _D_TERM,
    _D_PURPOSE,
    _D_PRODUCT,
    _D_INCOME,
    _D_OVER,
    _D_OVER_F,
    _D_NO_INCOME,
    _D_LOC_NULL,
    _D_FAR,
    _D_FAR_DIR,
    _D_FAR_DIST,
    _D_JIT_LAT,
    _D_JIT_LON,
    _D_EMU,
    _D_ROOT,
    _D_IP_KEEP,
    _D_IP,
    _D_CHANNEL,
    _D_MODEL,
    _D_FP,
    _D_NAME1,
    _D_NAME2,
    _D_OS,
) = range(1, 31)
_RING_KEY = 0x52494E47  # keys of draws made per ring, not per customer
_CONTACT_KEY = 0x434F4E54


@dataclass(frozen=True, slots=True)
class Product:
    """The bounds an application must keep: amounts in fen, the terms offered."""

    code: str
    min_fen: int
    max_fen: int
    terms: tuple[int, ...]
    purposes: tuple[str, ...]


#: The sample products (``servicing/products``); a test keeps the bounds equal to theirs.
PRODUCTS: dict[str, Product] = {
    p.code: p
    for p in (
        Product(
            "consumer_equal_installment",
            500_000,
            30_000_000,
            (6, 12, 24, 36),
            ("daily_consumption", "home_renovation", "durable_goods", "education", "medical", "travel"),
        ),
        Product("merchant_interest_only", 1_000_000, 100_000_000, (6, 12, 24, 36), ("business_operation",)),
        Product("farmer_revolving_line", 100_000, 30_000_000, (6, 12), ("farming",)),
        Product("seasonal_bullet", 300_000, 20_000_000, (3, 6, 9, 12), ("farming",)),
    )
}

_OS = {
    "android": ("Android 14", ("Xiaomi 13", "OPPO Reno10", "vivo X90", "Redmi K60")),
    "ios": ("iOS 17.5", ("iPhone15,2", "iPhone14,5", "iPhone13,2")),
    "harmonyos": ("HarmonyOS 4.0", ("HUAWEI P60", "HUAWEI Mate 60", "HONOR 90")),
}


@dataclass(frozen=True, slots=True)
class ApplicantSettings:
    """How many apply and how. ``start`` defaults to the day after the sandbox's ``as_of``."""

    seed: int = 1
    start: date | None = None
    days: int = 30
    offer_reach: float = 0.6
    existing_rate: float = 0.03
    ring_rate: float = 0.9
    far_share: float = 0.04
    ring_far_share: float = 0.6
    overstate_share: float = 0.08
    ring_overstate_share: float = 0.7
    products: Mapping[str, Product] = field(default_factory=lambda: dict(PRODUCTS))

    def __post_init__(self) -> None:
        problems = []
        if self.days < 1:
            problems.append(f"days must be at least 1, got {self.days}")
        for name in (
            "offer_reach",
            "existing_rate",
            "ring_rate",
            "far_share",
            "ring_far_share",
            "overstate_share",
            "ring_overstate_share",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                problems.append(f"{name} must be within 0..1, got {v}")
        missing = {
            "consumer_equal_installment",
            "merchant_interest_only",
            "farmer_revolving_line",
            "seasonal_bullet",
        } - set(self.products)
        if missing:
            problems.append(f"products lack {sorted(missing)}")
        if problems:
            raise SandboxError("; ".join(problems))


@dataclass(frozen=True, slots=True)
class Applicants:
    requests: pl.DataFrame
    truth: pl.DataFrame
    start: date
    days: int

    def counts(self) -> dict[str, int]:
        """Applications by kind (and ``all``)."""
        by = dict(self.truth.group_by("kind").len().iter_rows())
        return {**{k: int(by.get(k, 0)) for k in KINDS}, "all": self.truth.height}


# ---------------------------------------------------------------------------------- reading


def _read(root: Path, table: str, columns: list[str], strings: tuple[str, ...] = ()) -> pl.DataFrame:
    folder = root / "extracts" / table
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    single = root / "extracts" / f"{table}.parquet"
    if files or single.exists():
        return pl.read_parquet(files or [single], columns=columns)
    csvs = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    single_csv = root / "extracts" / f"{table}.csv"
    if not csvs and single_csv.exists():
        csvs = [single_csv]
    if not csvs:
        raise SandboxError(f"{root} holds no {table} extract")
    frame = pl.concat(
        [pl.read_csv(p, columns=columns, schema_overrides=dict.fromkeys(strings, pl.String)) for p in csvs]
    )
    return frame


def load_sandbox(root: Path | str) -> dict[str, Any]:
    """The parts of a generated sandbox the applicants are drawn from."""
    root = Path(root)
    manifest = root / "manifest.json"
    if not manifest.exists():
        raise SandboxError(f"{root} holds no sandbox (no manifest.json)")
    config = SandboxConfig.from_dict(json.loads(manifest.read_text(encoding="utf-8"))["config"])
    customers = _read(
        root,
        "customers",
        ["customer_id", "id_number", "name", "phone", "segment", "lat", "lon"],
        ("customer_id", "id_number", "name", "phone"),
    )
    devices = _read(
        root,
        "devices",
        ["device_id", "customer_id", "fingerprint", "os", "is_emulator", "is_rooted", "ip_address"],
        ("device_id", "customer_id", "fingerprint", "ip_address"),
    )
    contacts = _read(
        root, "contacts", ["customer_id", "contact_phone", "relation"], ("customer_id", "contact_phone")
    )
    truth = pl.read_parquet(
        root / "truth" / "customers" / "*.parquet",
        columns=[
            "customer_id",
            "customer_index",
            "pd_12m",
            "bad_12m",
            "risk_trait",
            "credit_need",
            "annual_income",
            "is_digital",
            "desired_amount",
            "ring_id",
            "is_fraudster",
        ],
    )
    rings = pl.read_parquet(root / "truth" / "rings.parquet")
    return {
        "config": config,
        "customers": customers,
        "devices": devices,
        "contacts": contacts,
        "truth": truth,
        "rings": rings,
    }


# ---------------------------------------------------------------------------------- helpers


def _u(seed: int, index: np.ndarray, draw: int) -> np.ndarray:
    return hash_uniform(seed, index, draw) if len(index) else np.zeros(0)


def _normal(seed: int, index: np.ndarray, draw: int) -> np.ndarray:
    """Standard normal draws (Box-Muller over two hashed uniforms)."""
    u1 = np.maximum(_u(seed, index, draw), 1e-12)
    u2 = _u(seed, index, draw + 1000)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _pick(values: tuple[Any, ...], u: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object)[np.minimum((u * len(values)).astype(np.int64), len(values) - 1)]


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance (mean Earth radius 6371.0088 km), as the decision facts measure it."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 6371.0088 * 2 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _ipv4(seed: int, key: np.ndarray, draw: int) -> pl.Series:
    blocks = np.asarray(vocab.IP_BLOCKS)
    h = hash_keys(seed, key, draw)
    b = blocks[(h % np.uint64(len(blocks))).astype(np.int64)]
    span = (b[:, 2] - b[:, 1] + 1).astype(np.uint64)
    second = b[:, 1] + ((h >> np.uint64(8)) % span).astype(np.int64)
    third = ((h >> np.uint64(24)) % np.uint64(256)).astype(np.int64)
    fourth = 1 + ((h >> np.uint64(40)) % np.uint64(254)).astype(np.int64)
    return pl.DataFrame({"a": b[:, 0], "b": second, "c": third, "d": fourth}).select(
        pl.concat_str([pl.col(c).cast(pl.String) for c in "abcd"], separator=".")
    )["a"]


def _names(seed: int, key: np.ndarray) -> pl.Series:
    surnames = tuple(s for s, _ in vocab.SURNAMES)
    chars = tuple(vocab.GIVEN_MALE) + tuple(vocab.GIVEN_FEMALE)
    s = _pick(surnames, _u(seed, key, _D_NAME1))
    g = _pick(chars, _u(seed, key, _D_NAME2))
    return pl.Series(s.astype(str)) + pl.Series(g.astype(str))


def _offers_frame(offers: pl.DataFrame | None, version_id: int | None) -> pl.DataFrame:
    schema = {"customer_id": pl.String, "offer_limit_fen": pl.Int64, "offer_version_id": pl.Int64}
    if offers is None or offers.height == 0:
        return pl.DataFrame(schema=schema)
    if "limit_fen" in offers.columns:
        limit = pl.col("limit_fen").cast(pl.Int64)
    elif "limit_amount" in offers.columns:
        limit = (pl.col("limit_amount").cast(pl.Decimal(18, 2)) * 100).cast(pl.Int64)
    else:
        raise SandboxError("offers need customer_id and limit_fen (fen) or limit_amount (yuan)")
    if "customer_id" not in offers.columns:
        raise SandboxError("offers need customer_id and limit_fen (fen) or limit_amount (yuan)")
    version = (
        pl.col("version_id").cast(pl.Int64)
        if "version_id" in offers.columns
        else pl.lit(version_id, pl.Int64)
    )
    return (
        offers.select(
            pl.col("customer_id").cast(pl.String),
            limit.alias("offer_limit_fen"),
            version.alias("offer_version_id"),
        )
        .filter(pl.col("offer_limit_fen") > 0)
        .unique("customer_id", keep="first", maintain_order=True)
    )


# ---------------------------------------------------------------------------------- the stream


def generate_applicants(
    sandbox: Path | str | Mapping[str, Any],
    *,
    offers: pl.DataFrame | None = None,
    offer_version_id: int | None = None,
    settings: ApplicantSettings | None = None,
) -> Applicants:
    """The applications of the window, and their truth (see the module's docstring).

    ``sandbox`` is a folder the sandbox was generated into (or what :func:`load_sandbox` read
    from it); ``offers`` a whitelist version's offers: ``customer_id``, the limit as
    ``limit_fen`` (fen) or ``limit_amount`` (yuan), and the version as a ``version_id`` column or
    ``offer_version_id``.
    """
    s = settings or ApplicantSettings()
    data = load_sandbox(sandbox) if isinstance(sandbox, str | Path) else sandbox
    config: SandboxConfig = data["config"]
    seed = int(hash_keys(config.seed, s.seed, 0x4150504C)[0] & np.uint64(0x7FFFFFFFFFFFFFFF))
    start = s.start or (config.as_of + timedelta(days=1))
    offer = _offers_frame(offers, offer_version_id)

    people = (
        data["truth"]
        .join(data["customers"], on="customer_id", how="inner")
        .join(offer, on="customer_id", how="left")
        .join(
            data["rings"].select("ring_id", pl.col("exposed").alias("ring_exposed")), on="ring_id", how="left"
        )
        .sort("customer_index")
    )
    idx = people["customer_index"].to_numpy()
    in_ring = people["is_fraudster"].to_numpy()
    has_offer = people["offer_limit_fen"].is_not_null().to_numpy()
    need = people["credit_need"].to_numpy()
    risk = people["risk_trait"].to_numpy()
    desired = people["desired_amount"].to_numpy().astype(np.float64)
    offer_fen = people["offer_limit_fen"].fill_null(0).to_numpy()

    # --- who applies ---------------------------------------------------------------------
    p_offer = s.offer_reach * apply_probability(need, risk, np.zeros_like(in_ring), offer_fen, desired)
    offer_applies = has_offer & ~in_ring & (_u(seed, idx, _D_APPLY) < p_offer)
    p_existing = np.clip(s.existing_rate * 2.0 * sigmoid(need + 0.3 * risk - 0.5), 0.0, 1.0)
    existing_applies = ~has_offer & ~in_ring & (_u(seed, idx, _D_EXISTING) < p_existing)
    ring_applies = in_ring & (_u(seed, idx, _D_RING) < s.ring_rate)
    kind = np.where(
        ring_applies, RING, np.where(offer_applies, OFFER, np.where(existing_applies, EXISTING, ""))
    )
    people = people.with_columns(pl.Series("kind", kind)).filter(pl.col("kind") != "")
    if people.height == 0:
        return Applicants(_empty_requests(), _empty_truth(), start, s.days)

    idx = people["customer_index"].to_numpy()
    n = people.height
    kind = people["kind"].to_numpy()
    ring = kind == RING
    has_offer = people["offer_limit_fen"].is_not_null().to_numpy()
    segment = people["segment"].to_numpy()

    # --- when ----------------------------------------------------------------------------
    # Offers: front-loaded (most answer in the first days); others uniform; rings in a burst.
    ring_key = hash_keys(
        seed,
        _RING_KEY,
        people["ring_id"].fill_null("").str.slice(1).cast(pl.Int64, strict=False).fill_null(0).to_numpy(),
    )
    u_day = _u(seed, idx, _D_DAY)
    day_offer = np.floor(-np.log1p(-u_day * (1 - np.exp(-s.days / 6.0))) * 6.0)
    day_other = np.floor(u_day * s.days)
    ring_day = np.floor(hash_uniform(seed, ring_key, _D_DAY) * s.days)
    day = np.where(ring, ring_day, np.where(kind == OFFER, day_offer, day_other)).astype(np.int64)
    day = np.clip(day, 0, s.days - 1)
    # Local seconds of the day: honest applicants 07:00-23:00; a ring starts at any hour and its
    # members follow within about two hours.
    local_s = 7 * 3600 + np.floor(_u(seed, idx, _D_TIME) * 16 * 3600)
    ring_start = np.floor(hash_uniform(seed, ring_key, _D_TIME) * 22 * 3600)
    ring_s = ring_start + np.floor(_u(seed, idx, _D_TIME) * 2 * 3600)
    local_s = np.where(ring, ring_s, local_s).astype(np.int64)
    epoch_s = (day_number(start) + day) * 86_400 + local_s - LOCAL_OFFSET_S
    business_day = day_number(start) + day + local_s // 86_400

    # --- what ----------------------------------------------------------------------------
    u_prod = _u(seed, idx, _D_PRODUCT)
    product = np.where(
        segment == "merchant",
        "merchant_interest_only",
        np.where(
            segment == "farmer",
            np.where(u_prod < 0.5, "farmer_revolving_line", "seasonal_bullet"),
            "consumer_equal_installment",
        ),
    )
    pmin = np.zeros(n, dtype=np.int64)
    pmax = np.zeros(n, dtype=np.int64)
    term = np.zeros(n, dtype=np.int64)
    purpose = np.empty(n, dtype=object)
    u_term, u_purpose = _u(seed, idx, _D_TERM), _u(seed, idx, _D_PURPOSE)
    for code in np.unique(product):
        p = s.products[str(code)]
        m = product == code
        pmin[m], pmax[m] = p.min_fen, p.max_fen
        term[m] = _pick(p.terms, u_term[m]).astype(np.int64)
        purpose[m] = _pick(p.purposes, u_purpose[m])
    offer_fen = people["offer_limit_fen"].fill_null(0).to_numpy()
    desired = people["desired_amount"].to_numpy().astype(np.float64)
    u_share = _u(seed, idx, _D_SHARE)
    want = np.where(
        has_offer,
        (0.3 + 0.7 * u_share) * offer_fen,
        desired * (0.8 + 0.4 * u_share),
    )
    want = np.where(ring, np.where(has_offer, offer_fen, np.maximum(desired * 2, 0.5 * pmax)), want)
    cap = np.where(has_offer, np.minimum(offer_fen, pmax), pmax)
    amount = np.minimum(np.maximum(np.floor(want / 10_000) * 10_000, pmin), cap).astype(np.int64)
    valid = amount >= pmin  # an offer below the product's minimum cannot be taken up

    # --- income --------------------------------------------------------------------------
    true_income = people["annual_income"].to_numpy().astype(np.float64)
    over = _u(seed, idx, _D_OVER) < np.where(ring, s.ring_overstate_share, s.overstate_share)
    over_factor = np.where(ring, 2.0 + 3.0 * _u(seed, idx, _D_OVER_F), 1.5 + 1.5 * _u(seed, idx, _D_OVER_F))
    noise = np.exp(0.08 * _normal(seed, idx, _D_INCOME))
    declared = np.round(true_income * np.where(over, over_factor, noise) / 1000.0) * 1000.0
    declared = np.maximum(declared, 1000.0)
    no_income = _u(seed, idx, _D_NO_INCOME) < np.where(ring, 0.0, 0.05)

    # --- device, network ------------------------------------------------------------------
    devices = (
        data["devices"]
        .sort("device_id")
        .unique("customer_id", keep="first", maintain_order=True)
        .select(
            "customer_id",
            pl.col("fingerprint").alias("own_fp"),
            pl.col("os").alias("own_os"),
            pl.col("is_emulator").alias("own_emu"),
            pl.col("is_rooted").alias("own_root"),
            pl.col("ip_address").alias("own_ip"),
        )
    )
    rings = data["rings"].select(
        "ring_id", pl.col("fingerprints").alias("ring_fps"), pl.col("ip_addresses").alias("ring_ips")
    )
    people = (
        people.with_row_index("_row")
        .join(devices, on="customer_id", how="left")
        .join(rings, on="ring_id", how="left")
        .sort("_row")
        .with_columns(pl.col("customer_index").rank("ordinal").over("ring_id").alias("_rank"))
    )
    rank = people["_rank"].cast(pl.Int64).to_numpy() - 1
    ring_fp = people.select(
        pl.col("ring_fps").list.get(pl.lit(rank) % pl.col("ring_fps").list.len().clip(1), null_on_oob=True)
    ).to_series()
    ring_ip = people.select(
        pl.col("ring_ips").list.get(pl.lit(rank) % pl.col("ring_ips").list.len().clip(1), null_on_oob=True)
    ).to_series()
    new_fp = hex_strings(np.stack([hash_keys(seed, idx, _D_FP, 1), hash_keys(seed, idx, _D_FP, 2)], axis=1))
    own_fp = people["own_fp"]
    fp = pl.select(
        pl.when(pl.lit(pl.Series(ring)) & ring_fp.is_not_null())
        .then(ring_fp)
        .when(own_fp.is_not_null())
        .then(own_fp)
        .otherwise(new_fp)
    ).to_series()
    shared_device = ring & ring_fp.is_not_null().to_numpy()
    os_u = _u(seed, idx, _D_OS)
    os_name = people["own_os"].fill_null(pl.Series(_pick(("android", "ios", "harmonyos"), os_u).astype(str)))
    os_name = pl.Series(np.where(ring & (os_u < 0.9), "android", os_name.to_numpy().astype(str)))
    os_text = os_name.replace_strict({k: v[0] for k, v in _OS.items()})
    model = np.empty(n, dtype=object)
    u_model = _u(seed, idx, _D_MODEL)
    os_arr = os_name.to_numpy()
    for name, (_, models) in _OS.items():
        m = os_arr == name
        model[m] = _pick(models, u_model[m])
    emulator = np.where(ring, _u(seed, idx, _D_EMU) < 0.3, people["own_emu"].fill_null(False).to_numpy())
    rooted = np.where(ring, _u(seed, idx, _D_ROOT) < 0.35, people["own_root"].fill_null(False).to_numpy()) & (
        os_arr != "ios"
    )
    fresh_ip = _ipv4(seed, idx, _D_IP)
    keep_ip = _u(seed, idx, _D_IP_KEEP) < 0.6
    ip = pl.select(
        pl.when(pl.lit(pl.Series(ring)) & ring_ip.is_not_null())
        .then(ring_ip)
        .when(pl.lit(pl.Series(keep_ip)) & people["own_ip"].is_not_null())
        .then(people["own_ip"])
        .otherwise(fresh_ip)
    ).to_series()
    is_digital = people["is_digital"].to_numpy()
    u_channel = _u(seed, idx, _D_CHANNEL)
    channel = np.where(
        is_digital, np.where(u_channel < 0.85, "app", "wechat"), np.where(u_channel < 0.6, "wechat", "h5")
    )
    channel = np.where(ring, np.where(u_channel < 0.7, "app", "h5"), channel)

    # --- location ------------------------------------------------------------------------
    home_lat = people["lat"].to_numpy().astype(np.float64)
    home_lon = people["lon"].to_numpy().astype(np.float64)
    home_known = ~np.isnan(home_lat) & ~np.isnan(home_lon)
    base_lat = np.where(home_known, home_lat, vocab.COUNTY_SEAT[0])
    base_lon = np.where(home_known, home_lon, vocab.COUNTY_SEAT[1])
    far = _u(seed, idx, _D_FAR) < np.where(ring, s.ring_far_share, s.far_share)
    ring_far = hash_uniform(seed, ring_key, _D_FAR) < s.ring_far_share
    far = np.where(ring, ring_far, far)
    # Far: 150-600 km away in any direction; a ring's members all at the ring's one place.
    direction = (
        2 * np.pi * np.where(ring, hash_uniform(seed, ring_key, _D_FAR_DIR), _u(seed, idx, _D_FAR_DIR))
    )
    dist_deg = (
        150 + 450 * np.where(ring, hash_uniform(seed, ring_key, _D_FAR_DIST), _u(seed, idx, _D_FAR_DIST))
    ) / 111.0
    far_lat = np.where(ring, vocab.COUNTY_SEAT[0], base_lat) + dist_deg * np.sin(direction)
    far_lon = np.where(ring, vocab.COUNTY_SEAT[1], base_lon) + dist_deg * np.cos(direction)
    jitter = np.where(far & ring, 0.003, 0.015)
    lat = np.where(far, far_lat, base_lat) + jitter * _normal(seed, idx, _D_JIT_LAT)
    lon = np.where(far, far_lon, base_lon) + jitter * _normal(seed, idx, _D_JIT_LON)
    loc_null = _u(seed, idx, _D_LOC_NULL) < np.where(ring, 0.2, 0.08)
    loc_null |= ~home_known & ~far
    lat = np.round(np.clip(lat, -90, 90), 5)
    lon = np.round(np.clip(lon, -180, 180), 5)
    distance = haversine_km(lat, lon, home_lat, home_lon)
    far_from_home = home_known & ~loc_null & (distance > FAR_KM)

    # --- contacts ------------------------------------------------------------------------
    contacts = _contacts(seed, data, people["customer_id"])

    order = np.lexsort((idx, epoch_s))
    frame = pl.DataFrame(
        {
            "applied_at": pl.Series(epoch_s * 1_000_000, dtype=pl.Int64)
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC"),
            "business_date": pl.Series(business_day.astype(np.int32), dtype=pl.Int32).cast(pl.Date),
            "customer_id": people["customer_id"],
            "channel": pl.Series(channel.astype(str)),
            "product_code": pl.Series(product.astype(str)),
            "amount_fen": pl.Series(amount, dtype=pl.Int64),
            "term_months": pl.Series(term, dtype=pl.Int64),
            "purpose": pl.Series(purpose.astype(str)),
            "declared_income_fen": pl.Series((declared * 100).astype(np.int64), dtype=pl.Int64).scatter(
                np.flatnonzero(no_income), None
            ),
            "offer_version_id": people["offer_version_id"],
            "name": people["name"],
            "id_number": people["id_number"],
            "phone": people["phone"],
            "device_fingerprint": fp,
            "device_os": os_text,
            "device_model": pl.Series(model.astype(str)),
            "is_emulator": pl.Series(emulator.astype(bool)),
            "is_rooted": pl.Series(rooted.astype(bool)),
            "ip": ip,
            "lat": pl.Series(np.where(loc_null, np.nan, lat)).fill_nan(None),
            "lon": pl.Series(np.where(loc_null, np.nan, lon)).fill_nan(None),
            # truth
            "_kind": people["kind"],
            "_valid": pl.Series(valid),
            "_order": pl.Series(np.argsort(order)),
        }
    ).join(contacts, on="customer_id", how="left")
    truth = pl.DataFrame(
        {
            "customer_id": people["customer_id"],
            "ring_id": people["ring_id"],
            "is_ring": pl.Series(ring),
            "ring_exposed": people["ring_exposed"],
            "pd_12m": people["pd_12m"],
            "bad_12m": people["bad_12m"],
            "annual_income": pl.Series(true_income),
            "declared_income": pl.Series(np.where(no_income, np.nan, declared)).fill_nan(None),
            "far_from_home": pl.Series(far_from_home),
            "shared_device": pl.Series(shared_device),
        }
    )
    frame = frame.with_columns(
        pl.col("contacts").fill_null(pl.lit([], dtype=CONTACT_TYPE)),
    )
    both = pl.concat([frame, truth.drop("customer_id")], how="horizontal")
    both = both.filter(pl.col("_valid")).sort("_order")
    both = both.with_columns(
        (pl.lit("SA") + (pl.int_range(1, pl.len() + 1)).cast(pl.String).str.zfill(8)).alias("application_ref")
    )
    requests = both.select("application_ref", *REQUEST_COLUMNS[1:])
    truth_out = both.select(
        "application_ref",
        "customer_id",
        pl.col("_kind").alias("kind"),
        "ring_id",
        "is_ring",
        pl.col("ring_exposed").fill_null(False),
        "pd_12m",
        "bad_12m",
        (pl.col("is_ring") | pl.col("bad_12m")).alias("truly_bad"),
        "annual_income",
        "declared_income",
        (pl.col("declared_income") > OVERSTATED * pl.col("annual_income"))
        .fill_null(False)
        .alias("income_overstated"),
        "far_from_home",
        "shared_device",
    )
    return Applicants(requests, truth_out, start, s.days)


CONTACT_TYPE = pl.List(pl.Struct({"name": pl.String, "phone": pl.String, "relation": pl.String}))

REQUEST_COLUMNS = (
    "application_ref",
    "applied_at",
    "business_date",
    "customer_id",
    "channel",
    "product_code",
    "amount_fen",
    "term_months",
    "purpose",
    "declared_income_fen",
    "offer_version_id",
    "name",
    "id_number",
    "phone",
    "device_fingerprint",
    "device_os",
    "device_model",
    "is_emulator",
    "is_rooted",
    "ip",
    "lat",
    "lon",
    "contacts",
)


def _contacts(seed: int, data: Mapping[str, Any], customer_ids: pl.Series) -> pl.DataFrame:
    """The declared contacts of the applicants, named: a contact who is a customer by the
    bank's name for them, anyone else by a name drawn from the phone number."""
    wanted = pl.DataFrame({"customer_id": customer_ids})
    order = {
        r: i for i, r in enumerate(("spouse", "parent", "child", "sibling", "colleague", "friend", "other"))
    }
    c = (
        data["contacts"]
        .join(wanted, on="customer_id", how="semi")
        .with_columns(pl.col("relation").replace_strict(order, default=len(order)).alias("_rel"))
        .sort("customer_id", "_rel", "contact_phone")
    )
    names = data["customers"].select(pl.col("phone").alias("contact_phone"), pl.col("name").alias("known"))
    c = c.join(names, on="contact_phone", how="left", maintain_order="left")
    key = c["contact_phone"].cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    drawn = _names(seed ^ _CONTACT_KEY, key) if c.height else pl.Series([], dtype=pl.String)
    c = c.with_columns(pl.col("known").fill_null(drawn).alias("name"))
    return c.group_by("customer_id", maintain_order=True).agg(
        pl.struct(pl.col("name"), pl.col("contact_phone").alias("phone"), pl.col("relation")).alias(
            "contacts"
        )
    )


def _empty_requests() -> pl.DataFrame:
    schema: dict[str, Any] = dict.fromkeys(REQUEST_COLUMNS, pl.String)
    schema.update(
        applied_at=pl.Datetime("us", "UTC"),
        business_date=pl.Date,
        amount_fen=pl.Int64,
        term_months=pl.Int64,
        declared_income_fen=pl.Int64,
        offer_version_id=pl.Int64,
        is_emulator=pl.Boolean,
        is_rooted=pl.Boolean,
        lat=pl.Float64,
        lon=pl.Float64,
        contacts=CONTACT_TYPE,
    )
    return pl.DataFrame(schema=schema)


def _empty_truth() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "application_ref": pl.String,
            "customer_id": pl.String,
            "kind": pl.String,
            "ring_id": pl.String,
            "is_ring": pl.Boolean,
            "ring_exposed": pl.Boolean,
            "pd_12m": pl.Float64,
            "bad_12m": pl.Boolean,
            "truly_bad": pl.Boolean,
            "annual_income": pl.Float64,
            "declared_income": pl.Float64,
            "income_overstated": pl.Boolean,
            "far_from_home": pl.Boolean,
            "shared_device": pl.Boolean,
        }
    )


# ---------------------------------------------------------------------------------- requests


def _money(fen: int | None) -> str | None:
    return None if fen is None else f"{fen // 100}.{fen % 100:02d}"


def request_body(row: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of ``POST /v1/applications`` for one row of ``requests``."""
    body: dict[str, Any] = {
        "customer_id": row["customer_id"],
        "channel": row["channel"],
        "product_code": row["product_code"],
        "amount": _money(row["amount_fen"]),
        "term_months": row["term_months"],
        "purpose": row["purpose"],
        "applicant": {"name": row["name"], "id_number": row["id_number"], "phone": row["phone"]},
        "device": {
            "fingerprint": row["device_fingerprint"],
            "os": row["device_os"],
            "model": row["device_model"],
            "is_emulator": row["is_emulator"],
            "is_rooted": row["is_rooted"],
        },
        "ip": row["ip"],
        "contacts": [dict(c) for c in row["contacts"] or []],
    }
    if row["declared_income_fen"] is not None:
        body["declared_annual_income"] = _money(row["declared_income_fen"])
    if row["offer_version_id"] is not None:
        body["offer_version_id"] = row["offer_version_id"]
    if row["lat"] is not None and row["lon"] is not None:
        body["location"] = {"lat": row["lat"], "lon": row["lon"]}
    return body


def request_bodies(requests: pl.DataFrame) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(application_ref, body)`` for each request, in order."""
    for row in requests.iter_rows(named=True):
        yield row["application_ref"], request_body(row)
