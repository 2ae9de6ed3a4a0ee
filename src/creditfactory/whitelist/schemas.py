"""Request and response models of the whitelist API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict


class OfferRead(BaseModel):
    """A customer's pre-approved offer, as mobile banking shows it."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str
    limit: Decimal
    annual_rate: Decimal
    expiry_date: date
    status: str
    grade: str | None
    version_id: int
    list_name: str
    as_of: date
    message_zh: str
    message_en: str


class VersionRead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    kind: str
    status: str
    as_of: date
    strategy_name: str | None
    strategy_version: str | None
    models: dict[str, str]
    engine: str
    scored: int
    eligible: int
    excluded: int
    total_limit: Decimal
    expiry_date: date | None
    created_by: str
    created_at: datetime
    published_at: datetime | None
    seconds: float


class VersionDetailRead(VersionRead):
    summary: dict[str, Any]
    entry_status: dict[str, int]


class VersionPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[VersionRead]
