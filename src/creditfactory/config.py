"""Settings, read from the environment (prefix ``CREDITFACTORY_``, nested with ``__``).

Only :mod:`creditfactory.bootstrap` instantiates :class:`Settings`; everything else gets
plain values or the container. Examples::

    CREDITFACTORY_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test
    CREDITFACTORY_DATA_DIR=/srv/creditfactory
    CREDITFACTORY_SECURITY__PII_KEY=<base64 32 bytes>
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BankTokenSettings(BaseModel):
    """The bank's own customer tokens (mobile banking's JWTs), accepted beside ours when set."""

    algorithm: Literal["HS256", "RS256"] | None = Field(
        default=None, description="HS256 or RS256; unset: bank tokens are not accepted."
    )
    key: SecretStr | None = Field(
        default=None, description="HS256 shared secret, or the bank's RS256 public key (PEM)."
    )
    key_file: Path | None = Field(default=None, description="File holding the key instead of `key`.")
    issuer: str | None = Field(default=None, description="Required `iss` claim (unset: not checked).")
    audience: str | None = Field(default=None, description="Required `aud` claim (unset: not checked).")
    customer_claim: str = Field(default="sub", description="The claim that holds the customer id.")
    leeway_seconds: int = Field(default=30, ge=0, le=600)


class SecuritySettings(BaseModel):
    pii_key: SecretStr | None = Field(
        default=None, description="Base64 32-byte master key for PII encryption and tokens."
    )
    pii_key_file: Path | None = Field(
        default=None, description="File holding the PII key; created on first use (default DATA_DIR/pii.key)."
    )
    token_secret: SecretStr | None = Field(
        default=None,
        description="Secret that signs staff and customer bearer tokens (default: derived from the PII key).",
    )
    token_ttl_seconds: int = 8 * 3600
    bank_token: BankTokenSettings = BankTokenSettings()


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    docs: bool = True
    concurrency: int | None = Field(
        default=None,
        ge=0,
        description="Requests a server process works on at once; the others wait in the order they "
        "came (0: no limit). Default: 2 when one process serves on PostgreSQL, 1 on SQLite and in "
        "each of several (serve --workers). See creditfactory.api.admission.",
    )
    processes: int = Field(
        default=1,
        ge=1,
        description="Server processes sharing the port; set in each by serve --workers (set it "
        "where another process manager runs several).",
    )
    admission_wait_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a request waits for its turn before it is answered 503 server_busy.",
    )

    def admitted_on(self, database: str) -> int:
        """Requests admitted at once in a process working on ``database`` (the URL's backend:
        ``sqlite``, ``postgresql``): ``concurrency`` when set; otherwise 2 for a lone process on
        a database server (one request's wait on the database does not leave it idle), and 1 in
        each of several processes (the others fill the cores meanwhile) or on SQLite (whose work
        waits on no server, one writer at a time). One at a time, a request's work runs on the
        event loop, without a thread's hand-over (creditfactory.api.admission)."""
        if self.concurrency is not None:
            return self.concurrency
        return 1 if self.processes > 1 or database == "sqlite" else 2


class IngestSettings(BaseModel):
    batch_rows: int = Field(default=2_000_000, ge=1_000, description="Rows read per batch from a large file.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CREDITFACTORY_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("var"), description="Home of the embedded database, lake and outputs."
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in DATA_DIR.")
    lake_dir: Path | None = Field(default=None, description="Parquet lake; default DATA_DIR/lake.")
    log_level: str = "INFO"
    timezone: str = Field(default="Asia/Shanghai", description="The bank's time zone (its calendar day).")
    security: SecuritySettings = SecuritySettings()
    api: ApiSettings = ApiSettings()
    ingest: IngestSettings = IngestSettings()
    decide_on_submit: bool = Field(
        default=True,
        description="Decide an application when it is submitted, with the published champion strategy "
        "(left submitted while none is published).",
    )

    @property
    def admitted(self) -> int:
        """Requests a server process admits at once (:meth:`ApiSettings.admitted_on`)."""
        from sqlalchemy.engine import make_url

        return self.api.admitted_on(make_url(self.resolved_database_url).get_backend_name())

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'creditfactory.db').as_posix()}"

    @property
    def resolved_lake_dir(self) -> Path:
        return self.lake_dir if self.lake_dir is not None else self.data_dir / "lake"

    @property
    def resolved_pii_key_file(self) -> Path:
        return self.security.pii_key_file or self.data_dir / "pii.key"
