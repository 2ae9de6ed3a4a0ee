"""Pure values and rules of the decision facts: the applicant, the settings, distances, income.

Nothing here reads a database or a clock. :class:`Applicant` is what one application brings;
:class:`FactSettings` holds the caps and factors; :func:`haversine_km` and
:func:`income_facts` compute facts from plain values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from creditfactory.errors import InvalidInput

#: Mean Earth radius in km (IUGG), the radius of the haversine formula.
EARTH_RADIUS_KM = 6371.0088


class InvalidApplicant(InvalidInput):
    code = "invalid_applicant"
    title = "The application's facts cannot be gathered"


class NodeKind(StrEnum):
    """What a node of the relationship graph stands for (its key in brackets)."""

    PERSON = "person"  # a customer or applicant (ID-number token)
    PHONE = "phone"  # a mobile number (phone token), own or declared as a contact
    DEVICE = "device"  # a device (fingerprint)
    IP = "ip"  # an IP address
    ADDRESS = "address"  # a home address (address token)


class EdgeKind(StrEnum):
    """How a person is linked to an attribute node."""

    PHONE = "phone"  # the person's own phone
    CONTACT = "contact"  # a phone the person declared as a contact
    DEVICE = "device"  # a device the person logged in or applied from
    IP = "ip"  # an IP address the person used
    ADDRESS = "address"  # the person's home address


#: The node kind each edge kind leads to from a person.
EDGE_TARGET: dict[EdgeKind, NodeKind] = {
    EdgeKind.PHONE: NodeKind.PHONE,
    EdgeKind.CONTACT: NodeKind.PHONE,
    EdgeKind.DEVICE: NodeKind.DEVICE,
    EdgeKind.IP: NodeKind.IP,
    EdgeKind.ADDRESS: NodeKind.ADDRESS,
}

#: Edges that make a *group* (``graph_component_size``): attributes that unrelated people do not
#: share. Declared contacts are left out: family and friends connect nearly a whole customer base
#: into one component (98% of a sandbox bank), which would say nothing about anyone.
GROUP_EDGES: frozenset[EdgeKind] = frozenset({EdgeKind.PHONE, EdgeKind.DEVICE, EdgeKind.IP, EdgeKind.ADDRESS})


class Outcome(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    REFER = "refer"


#: Velocity windows: name -> length. A window is half-open, ``[applied_at - length, applied_at)``.
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "30d": timedelta(days=30),
}


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact the applicant declared: the phone's token and the relation."""

    phone_token: str
    relation: str = "other"

    def __post_init__(self) -> None:
        if not isinstance(self.phone_token, str) or not self.phone_token.strip():
            raise InvalidApplicant("a contact needs a phone token")


def _token(value: Any, what: str, *, required: bool) -> None:
    if value is None:
        if required:
            raise InvalidApplicant(f"the applicant's {what} is required")
        return
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise InvalidApplicant(f"the applicant's {what} must be 1 to 64 characters, got {value!r}")


@dataclass(frozen=True, slots=True)
class Applicant:
    """One application as the fact gatherers see it. Personal data arrive as tokens only.

    ``customer_id`` is ``None`` for someone the bank does not know. ``applied_at`` must be an
    aware datetime (it is kept in UTC); velocity windows end at it, not at the wall clock.
    ``lat``/``lon`` are both given or both missing.
    """

    id_number_token: str
    phone_token: str
    applied_at: datetime
    business_date: date
    customer_id: str | None = None
    device_fingerprint: str | None = None
    is_emulator: bool = False
    is_rooted: bool = False
    ip_address: str | None = None
    lat: float | None = None
    lon: float | None = None
    declared_annual_income: Decimal | None = None
    contacts: tuple[Contact, ...] = ()
    address_token: str | None = None

    def __post_init__(self) -> None:
        _token(self.id_number_token, "ID-number token", required=True)
        _token(self.phone_token, "phone token", required=True)
        _token(self.device_fingerprint, "device fingerprint", required=False)
        _token(self.ip_address, "IP address", required=False)
        _token(self.address_token, "address token", required=False)
        if self.customer_id is not None and (not isinstance(self.customer_id, str) or not self.customer_id):
            raise InvalidApplicant(f"customer id must be text, got {self.customer_id!r}")
        if not isinstance(self.applied_at, datetime) or self.applied_at.tzinfo is None:
            raise InvalidApplicant(f"applied_at must be an aware datetime, got {self.applied_at!r}")
        if not isinstance(self.business_date, date) or isinstance(self.business_date, datetime):
            raise InvalidApplicant(f"business_date must be a date, got {self.business_date!r}")
        if (self.lat is None) != (self.lon is None):
            raise InvalidApplicant("location needs both latitude and longitude, or neither")
        if self.lat is not None and self.lon is not None:
            if not (-90.0 <= self.lat <= 90.0) or not (-180.0 <= self.lon <= 180.0):
                raise InvalidApplicant(f"location ({self.lat}, {self.lon}) is not a WGS-84 coordinate")
        if self.declared_annual_income is not None:
            income = self.declared_annual_income
            if isinstance(income, bool) or not isinstance(income, Decimal | int):
                raise InvalidApplicant(f"declared income must be a Decimal amount, got {income!r}")
            if income < 0:
                raise InvalidApplicant(f"declared income cannot be negative, got {income}")
        if not isinstance(self.contacts, tuple):
            object.__setattr__(self, "contacts", tuple(self.contacts))

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lon is not None

    def contact_tokens(self) -> tuple[str, ...]:
        """Distinct contact phone tokens, in the order given, without the applicant's own phone."""
        seen: dict[str, None] = {}
        for c in self.contacts:
            if c.phone_token != self.phone_token:
                seen.setdefault(c.phone_token, None)
        return tuple(seen)

    def links(self) -> list[tuple[EdgeKind, str]]:
        """The applicant's attributes as (edge kind, key of the node it leads to)."""
        out: list[tuple[EdgeKind, str]] = [(EdgeKind.PHONE, self.phone_token)]
        if self.device_fingerprint:
            out.append((EdgeKind.DEVICE, self.device_fingerprint))
        if self.ip_address:
            out.append((EdgeKind.IP, self.ip_address))
        if self.address_token:
            out.append((EdgeKind.ADDRESS, self.address_token))
        out += [(EdgeKind.CONTACT, t) for t in self.contact_tokens()]
        return out


@dataclass(frozen=True, slots=True)
class FactSettings:
    """Caps and factors of the fact gatherers.

    * ``max_hops``: how far the graph search looks for the negative list
      (``graph_hops_to_negative`` is NULL beyond it).
    * ``neighbour_hops``: the radius of the ``graph_*_neighbours`` counts.
    * ``degree_cap``: a node with more links than this (an IP shared by a whole carrier's
      customers, a hotline many people list as a contact) is reached but not expanded, so a
      search never fans out through it; ``graph_truncated`` says when that happened.
    * ``group_cap``: ``graph_component_size`` stops counting at this many people.
    * ``group_rounds``: the group search stops after this many expansions (a long chain).
    * ``max_nodes``: a search stops expanding after reaching this many nodes.
    * ``income_factor``: ``income_overstated`` when declared > factor x observed income.
    """

    max_hops: int = 4
    neighbour_hops: int = 2
    degree_cap: int = 100
    group_cap: int = 200
    group_rounds: int = 24
    max_nodes: int = 5_000
    income_factor: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_hops <= 8:
            raise InvalidInput(f"max_hops must be 1 to 8, not {self.max_hops}")
        if not 1 <= self.neighbour_hops <= self.max_hops:
            raise InvalidInput(f"neighbour_hops must be 1 to max_hops, not {self.neighbour_hops}")
        for name in ("degree_cap", "group_cap", "group_rounds", "max_nodes"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"{name} must be at least 1, not {getattr(self, name)}")
        if not self.income_factor >= 1.0:
            raise InvalidInput(f"income_factor must be at least 1, not {self.income_factor}")


@dataclass(frozen=True, slots=True)
class Facts:
    """The facts of one application (``values``, named as in :func:`fact_schema`) and how long
    each gatherer took (``timings_ms``), to be kept in the decision record."""

    values: dict[str, Any]
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        values = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.values.items()}
        return {"facts": values, "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()}}


# ------------------------------------------------------------------ distance


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two WGS-84 points on a sphere of the mean radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def distance_km(lat: float | None, lon: float | None, lat2: float | None, lon2: float | None) -> float | None:
    """:func:`haversine_km` rounded to metres, or ``None`` when either point is missing."""
    if lat is None or lon is None or lat2 is None or lon2 is None:
        return None
    return round(haversine_km(lat, lon, lat2, lon2), 3)


# ------------------------------------------------------------------ income

#: Observed annual income from the portrait, by source: (fact suffix, how it is computed).
#: Each is an annual figure in yuan, ``None`` when the portrait holds nothing for it.
INCOME_SOURCES = ("payroll", "social", "tax", "flows")

#: Portrait features the income cross-check reads.
INCOME_FEATURES = (
    "payroll_avg_12m",
    "payroll_months_12m",
    "social_base_avg_12m",
    "social_months_paid_12m",
    "tax_revenue_12m",
    "tax_filings_12m",
    "annual_income_est",
)


def _positive(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    if math.isnan(number) or number <= 0:
        return None
    return number


def observed_incomes(row: dict[str, Any] | None) -> dict[str, float | None]:
    """Annual income the bank sees for a customer, per source, from a portrait row.

    * ``payroll``: average payroll credit in the months paid x 12 (needs a payroll month);
    * ``social``: average social-security contribution base in paid months x 12 (the declared
      wage);
    * ``tax``: revenue declared for tax in the last 12 months, scaled to four quarters when
      fewer were filed;
    * ``flows``: 12 x average monthly credits over the last 12 months (``annual_income_est``).
    """
    if not row:
        return dict.fromkeys(INCOME_SOURCES)
    payroll = _positive(row.get("payroll_avg_12m")) if _positive(row.get("payroll_months_12m")) else None
    social = (
        _positive(row.get("social_base_avg_12m")) if _positive(row.get("social_months_paid_12m")) else None
    )
    filings = _positive(row.get("tax_filings_12m"))
    revenue = _positive(row.get("tax_revenue_12m"))
    tax = revenue * 4 / min(filings, 4) if revenue is not None and filings is not None else None
    return {
        "payroll": None if payroll is None else payroll * 12,
        "social": None if social is None else social * 12,
        "tax": tax,
        "flows": _positive(row.get("annual_income_est")),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 6)


def income_facts(declared: Decimal | None, row: dict[str, Any] | None, *, factor: float) -> dict[str, Any]:
    """Declared annual income against what the bank observes (see :func:`observed_incomes`).

    ``income_observed`` is the highest of the sources (the applicant gets the benefit of the
    doubt); the ratios and the flag are NULL when nothing is observed or nothing is declared.
    """
    declared_f = None if declared is None else float(declared)
    sources = observed_incomes(row)
    present = {k: v for k, v in sources.items() if v is not None}
    observed_source = max(present, key=lambda k: (present[k], -INCOME_SOURCES.index(k))) if present else None
    observed = present[observed_source] if observed_source else None
    ratio = _ratio(declared_f, observed)
    as_of = row.get("as_of") if row else None
    return {
        "income_declared": declared_f,
        "income_observed": None if observed is None else round(observed, 2),
        "income_observed_source": observed_source,
        "income_sources": len(present),
        "income_declared_to_observed": ratio,
        "income_declared_to_payroll": _ratio(declared_f, sources["payroll"]),
        "income_declared_to_social": _ratio(declared_f, sources["social"]),
        "income_declared_to_tax": _ratio(declared_f, sources["tax"]),
        "income_declared_to_flows": _ratio(declared_f, sources["flows"]),
        "income_overstated": None
        if ratio is None or declared_f is None or observed is None
        else declared_f > factor * observed,
        "income_observed_as_of": as_of if isinstance(as_of, date) else None,
    }
