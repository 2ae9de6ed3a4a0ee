"""Request and response models of the contract API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from creditfactory.api.params import PLAIN_TEXT


class ColumnRead(BaseModel):
    name: str
    type: str
    description: str
    required: bool
    codes: list[str]
    pii: bool


class TableRead(BaseModel):
    name: str
    description: str
    key: list[str]
    operational: bool
    large: bool
    columns: list[ColumnRead]


class IngestionCreate(BaseModel):
    directory: str = Field(
        description="Folder under the server's inbox (DATA_DIR/inbox) holding the extract files.",
        max_length=300,
        pattern=PLAIN_TEXT,
        examples=["2025-06-30"],
    )


class TableCounts(BaseModel):
    loaded: int
    rejected: int
    files: int
    unchanged_files: int
    rows_per_second: int
    reject_file: str | None


class IngestionResultRead(BaseModel):
    run_id: int
    loaded: int
    rejected: int
    seconds: float
    reject_dir: str | None
    ignored: list[str]
    tables: dict[str, TableCounts]


class IngestFileRead(BaseModel):
    table_name: str
    path: str
    sha256: str
    status: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int


class IngestRunRead(BaseModel):
    id: int
    source_dir: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    rows_loaded: int
    rows_rejected: int
    reject_dir: str | None
    error: str | None
    files: list[IngestFileRead] = []


class CustomerRead(BaseModel):
    customer_id: str
    name: str | None
    id_number: str | None
    phone: str | None
    address: str | None
    gender: str
    birth_date: date
    segment: str
    branch_id: str
    manager_id: str | None
    kyc_status: str
    lat: float | None
    lon: float | None
    marketing_consent: bool
    masked: bool = Field(description="True when personal data is masked for the caller's role.")
