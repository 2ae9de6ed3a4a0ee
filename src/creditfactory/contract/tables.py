"""The bank-extract contract: every table a bank hands over, declared once.

Each :class:`Table` names its columns, their types, the key, foreign keys and the
checks a row must pass. Ingestion (``contract.ingest``) validates against these
declarations, the sandbox writes exactly this format, and ``docs/contract.md`` is
generated from them (``creditfactory contract docs``).

Types as they arrive in a file, and as they are kept at rest:

==========  ==========================================  ===========================
type        in a file (CSV / Excel / Parquet)           at rest (lake and database)
==========  ==========================================  ===========================
string      text                                        string
int         integer                                     int64
float       number                                      float64 (scores, areas)
amount      yuan with at most 2 decimals                int64 fen
rate        annual rate as a decimal fraction (0.0435)  int64 at scale 1e-8
date        ISO date ``YYYY-MM-DD``                     date
month       first day of a month ``YYYY-MM-01``         date
bool        true/false, 1/0, Y/N, 是/否                  bool
code        one of the declared codes                   string
id_number   18-character PRC resident ID number         token (and encrypted in DB)
phone       11-digit mainland mobile number             token (and encrypted in DB)
==========  ==========================================  ===========================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ColumnType(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    AMOUNT = "amount"
    RATE = "rate"
    DATE = "date"
    MONTH = "month"
    BOOL = "bool"
    CODE = "code"
    ID_NUMBER = "id_number"
    PHONE = "phone"


#: Scale of a rate at rest: 0.0435 is kept as 4_350_000.
RATE_SCALE = 8


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    description: str
    required: bool = True
    codes: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    pii: bool = False
    max_length: int | None = None
    allow_future: bool = False
    """A date that may lie after the load date (a maturity, an expiry)."""

    @property
    def is_money(self) -> bool:
        return self.type is ColumnType.AMOUNT


@dataclass(frozen=True, slots=True)
class ForeignKey:
    column: str
    table: str
    ref_column: str


@dataclass(frozen=True, slots=True)
class RowRule:
    """A check across columns, written as a Polars-free description plus a name.

    The ingestion module holds the vectorised implementation keyed by ``name``.
    """

    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    rules: tuple[RowRule, ...] = ()
    operational: bool = False
    """Also kept in the database (operational state), not only in the lake."""
    large: bool = False
    """Monthly fact table: streamed in batches, never held whole in memory."""
    unique: tuple[str, ...] = ()
    made_by: str = ""
    """How the sandbox makes this table (for the docs)."""

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


T = ColumnType


def _c(name: str, type_: ColumnType, description: str, **kw: object) -> Column:
    return Column(name, type_, description, **kw)  # type: ignore[arg-type]


SEGMENTS = ("farmer", "merchant", "salaried", "other")
STAFF_ROLES = ("account_manager", "underwriter", "branch_head", "operations")
KYC_STATUSES = ("complete", "incomplete", "expired")
MARITAL = ("single", "married", "divorced", "widowed")
EDUCATION = ("primary", "secondary", "college", "bachelor", "postgraduate")
ACCOUNT_PRODUCTS = ("current", "savings", "time_deposit")
ACCOUNT_STATUSES = ("active", "dormant", "closed")
LOAN_PRODUCTS = ("consumer", "business", "agricultural", "mortgage")
LOAN_STATUSES = ("active", "settled", "overdue", "written_off")
GUARANTEE_TYPES = ("credit", "guaranteed", "collateral", "mortgage")
CROPS = ("grain", "vegetable", "fruit", "tea", "livestock", "aquaculture", "other")
DEVICE_OS = ("android", "ios", "harmonyos")
RELATIONS = ("spouse", "parent", "child", "sibling", "friend", "colleague", "other")
NEGATIVE_KINDS = ("id_number", "phone", "device")
NEGATIVE_REASONS = ("fraud", "court_enforced", "default", "identity_theft", "other")


BRANCHES = Table(
    name="branches",
    description="The bank's branches and outlets, with location; every customer belongs to one.",
    key=("branch_id",),
    operational=True,
    columns=(
        _c("branch_id", T.STRING, "Branch code", max_length=16),
        _c("branch_name", T.STRING, "Branch name", max_length=64),
        _c(
            "region_code",
            T.STRING,
            "Six-digit administrative region code (GB/T 2260) of the county",
            max_length=6,
        ),
        _c("address", T.STRING, "Street address", required=False, max_length=128),
        _c("lat", T.FLOAT, "Latitude (WGS-84)", min=-90, max=90),
        _c("lon", T.FLOAT, "Longitude (WGS-84)", min=-180, max=180),
        _c("opened_date", T.DATE, "Date the branch opened"),
    ),
    made_by="One county seat branch and township branches scattered around it.",
)

STAFF = Table(
    name="staff",
    description="Staff of the branches: account managers serve customers, underwriters review applications.",
    key=("staff_id",),
    operational=True,
    foreign_keys=(ForeignKey("branch_id", "branches", "branch_id"),),
    columns=(
        _c("staff_id", T.STRING, "Staff number", max_length=16),
        _c("branch_id", T.STRING, "Branch the staff member works at"),
        _c("name", T.STRING, "Full name", max_length=32),
        _c("role", T.CODE, "Job role", codes=STAFF_ROLES),
        _c("phone", T.PHONE, "Work mobile", required=False, pii=True),
        _c("active", T.BOOL, "Still employed"),
    ),
    made_by="Two to eight account managers per branch depending on its customer count, plus an underwriter and a head.",
)

CUSTOMERS = Table(
    name="customers",
    description="Individual customers (retail, farmers, self-employed merchants) with identity and home branch.",
    key=("customer_id",),
    unique=("id_number",),
    operational=True,
    foreign_keys=(
        ForeignKey("branch_id", "branches", "branch_id"),
        ForeignKey("manager_id", "staff", "staff_id"),
    ),
    rules=(
        RowRule("id_matches_birth_date", "birth_date equals the birth date encoded in id_number"),
        RowRule("id_matches_gender", "gender agrees with the sex digit of id_number (odd = M)"),
    ),
    columns=(
        _c("customer_id", T.STRING, "Customer number (core banking CIF)", max_length=20),
        _c("id_number", T.ID_NUMBER, "Resident ID number (18 characters, check digit verified)", pii=True),
        _c("name", T.STRING, "Full name", pii=True, max_length=32),
        _c("gender", T.CODE, "Sex as on the ID card", codes=("M", "F")),
        _c("birth_date", T.DATE, "Date of birth"),
        _c("phone", T.PHONE, "Mobile phone number", pii=True),
        _c("segment", T.CODE, "Customer segment", codes=SEGMENTS),
        _c("branch_id", T.STRING, "Home branch"),
        _c("manager_id", T.STRING, "Assigned account manager", required=False),
        _c("address", T.STRING, "Home address", required=False, pii=True, max_length=128),
        _c("lat", T.FLOAT, "Latitude of the home address", required=False, min=-90, max=90),
        _c("lon", T.FLOAT, "Longitude of the home address", required=False, min=-180, max=180),
        _c("kyc_status", T.CODE, "Know-your-customer file status", codes=KYC_STATUSES),
        _c("marital_status", T.CODE, "Marital status", required=False, codes=MARITAL),
        _c("education", T.CODE, "Highest education", required=False, codes=EDUCATION),
        _c("opened_date", T.DATE, "Date the customer relationship began"),
        _c("marketing_consent", T.BOOL, "Customer agreed to marketing contact"),
    ),
    made_by="Segment mix of a county bank; age, income and risk drawn from latent traits; homes near the branch.",
)

DEPOSIT_ACCOUNTS = Table(
    name="deposit_accounts",
    description="Demand and time deposit accounts.",
    key=("account_id",),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    rules=(RowRule("closed_after_opened", "closed_date, when present, is on or after opened_date"),),
    columns=(
        _c("account_id", T.STRING, "Account number", max_length=24),
        _c("customer_id", T.STRING, "Owner"),
        _c("product", T.CODE, "Deposit product", codes=ACCOUNT_PRODUCTS),
        _c("opened_date", T.DATE, "Opening date"),
        _c("closed_date", T.DATE, "Closing date", required=False),
        _c("status", T.CODE, "Account status", codes=ACCOUNT_STATUSES),
    ),
    made_by="One to three accounts per customer; the first is the settlement account that receives payroll or sales.",
)

ACCOUNT_FLOWS = Table(
    name="account_flows",
    description="Monthly flows and month-end balance of each deposit account.",
    key=("account_id", "month"),
    large=True,
    foreign_keys=(ForeignKey("account_id", "deposit_accounts", "account_id"),),
    rules=(
        RowRule("inflow_covers_components", "payroll_in + acquiring_in + subsidy_in does not exceed inflow"),
    ),
    columns=(
        _c("account_id", T.STRING, "Account number"),
        _c("month", T.MONTH, "Month (first day)"),
        _c("inflow", T.AMOUNT, "Total credits in the month", min=0),
        _c("outflow", T.AMOUNT, "Total debits in the month", min=0),
        _c("payroll_in", T.AMOUNT, "Credits tagged as payroll", min=0),
        _c("acquiring_in", T.AMOUNT, "Merchant-acquiring settlement credits", min=0),
        _c("subsidy_in", T.AMOUNT, "Agricultural subsidy credits", min=0),
        _c("txn_count", T.INT, "Number of transactions", min=0),
        _c("end_balance", T.AMOUNT, "Balance at month end", min=0),
    ),
    made_by="Income process per segment (payroll, seasonal farm income, merchant sales) with shocks driven by the risk trait.",
)

ASSETS_MONTHLY = Table(
    name="assets_monthly",
    description="Month-end assets under management per customer.",
    key=("customer_id", "month"),
    large=True,
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _c("customer_id", T.STRING, "Customer"),
        _c("month", T.MONTH, "Month (first day)"),
        _c("deposit_balance", T.AMOUNT, "All deposits at month end", min=0),
        _c("wealth_balance", T.AMOUNT, "Wealth-management products at month end", min=0),
        _c("total_assets", T.AMOUNT, "Deposits plus wealth products", min=0),
    ),
    made_by="Sum of account end balances plus wealth products held by richer customers.",
)

LOANS = Table(
    name="loans",
    description="Existing and past loans with the bank.",
    key=("loan_id",),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    rules=(RowRule("maturity_after_open", "maturity_date is after open_date"),),
    columns=(
        _c("loan_id", T.STRING, "Loan number", max_length=24),
        _c("customer_id", T.STRING, "Borrower"),
        _c("product", T.CODE, "Loan product", codes=LOAN_PRODUCTS),
        _c("open_date", T.DATE, "Disbursement date"),
        _c("maturity_date", T.DATE, "Contractual maturity", allow_future=True),
        _c("principal", T.AMOUNT, "Amount disbursed", min=0.01),
        _c("annual_rate", T.RATE, "Annual interest rate", min=0, max=0.36),
        _c("guarantee_type", T.CODE, "Security", codes=GUARANTEE_TYPES),
        _c("status", T.CODE, "Status at extract date", codes=LOAN_STATUSES),
        _c("close_date", T.DATE, "Date settled or written off", required=False),
    ),
    made_by="Past and current loans for a third of customers; defaults follow the true default propensity.",
)

LOAN_PERFORMANCE = Table(
    name="loan_performance",
    description="Month-end performance of each loan: balance and days past due.",
    key=("loan_id", "month"),
    large=True,
    foreign_keys=(ForeignKey("loan_id", "loans", "loan_id"),),
    columns=(
        _c("loan_id", T.STRING, "Loan number"),
        _c("month", T.MONTH, "Month (first day)"),
        _c("balance", T.AMOUNT, "Outstanding principal at month end", min=0),
        _c("dpd", T.INT, "Days past due at month end", min=0),
        _c("overdue_amount", T.AMOUNT, "Amount past due at month end", min=0),
    ),
    made_by="Amortising balance; delinquency spells start with the monthly hazard implied by the default propensity.",
)

BUREAU_REPORTS = Table(
    name="bureau_reports",
    description="Credit-bureau (PBOC) report summaries obtained with the customer's authorisation.",
    key=("customer_id", "report_date"),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _c("customer_id", T.STRING, "Customer"),
        _c("report_date", T.DATE, "Date the report was pulled"),
        _c("has_record", T.BOOL, "The bureau holds a credit history (false = thin file)"),
        _c("inquiries_3m", T.INT, "Hard inquiries in the last 3 months", min=0),
        _c("inquiries_12m", T.INT, "Hard inquiries in the last 12 months", min=0),
        _c("open_accounts", T.INT, "Open credit accounts at other lenders", min=0),
        _c("card_limit", T.AMOUNT, "Total credit-card limit", min=0),
        _c("card_balance", T.AMOUNT, "Total credit-card balance", min=0),
        _c("total_exposure", T.AMOUNT, "Outstanding loans at other lenders", min=0),
        _c("worst_dpd_24m", T.INT, "Worst days past due in 24 months", min=0),
        _c("delinquent_accounts", T.INT, "Accounts ever 30+ days past due", min=0),
    ),
    made_by="Pulled every six months for customers who authorised it; inquiries and delinquencies driven by the risk trait.",
)

TAX_RECORDS = Table(
    name="tax_records",
    description="Quarterly tax filings of self-employed merchants (external data, with authorisation).",
    key=("customer_id", "period_end"),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _c("customer_id", T.STRING, "Customer"),
        _c("period_end", T.DATE, "Last day of the tax quarter"),
        _c("revenue", T.AMOUNT, "Declared revenue", min=0),
        _c("tax_paid", T.AMOUNT, "Tax paid", min=0),
        _c("credit_grade", T.CODE, "Tax-payment credit grade", codes=("A", "B", "M", "C", "D")),
    ),
    made_by="Merchants' revenue from their sales process, under-declared by some; grade worse for risky ones.",
)

INVOICES = Table(
    name="invoices",
    description="Monthly VAT invoice totals of merchants.",
    key=("customer_id", "month"),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _c("customer_id", T.STRING, "Customer"),
        _c("month", T.MONTH, "Month (first day)"),
        _c("invoice_count", T.INT, "Invoices issued", min=0),
        _c("invoice_amount", T.AMOUNT, "Total invoiced", min=0),
    ),
    made_by="Merchants' monthly sales with seasonality and trend.",
)

FARMLAND = Table(
    name="farmland",
    description="Land contract rights and machinery of farming households (rural revitalisation data).",
    key=("customer_id",),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _c("customer_id", T.STRING, "Customer"),
        _c("land_area_mu", T.FLOAT, "Contracted land area in mu", min=0),
        _c("main_crop", T.CODE, "Main crop or activity", codes=CROPS),
        _c("machinery_count", T.INT, "Agricultural machines owned", min=0),
        _c("machinery_value", T.AMOUNT, "Estimated machinery value", min=0),
        _c("cooperative_member", T.BOOL, "Member of a farmers' cooperative"),
    ),
    made_by="Farmers only; land area and machinery scale with the income trait.",
)

SOCIAL_SECURITY = Table(
    name="social_security",
    description="Monthly social-security contributions (salaried customers).",
    key=("customer_id", "month"),
    large=True,
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _c("customer_id", T.STRING, "Customer"),
        _c("month", T.MONTH, "Month (first day)"),
        _c("contribution_base", T.AMOUNT, "Contribution base (declared wage)", min=0),
        _c("paid", T.BOOL, "Contribution paid for the month"),
    ),
    made_by="Salaried customers; gaps in payment are more frequent for unstable employment.",
)

DEVICES = Table(
    name="devices",
    description="Mobile devices seen on the customer's mobile-banking logins.",
    key=("device_id",),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _c("device_id", T.STRING, "Device record id", max_length=24),
        _c("customer_id", T.STRING, "Customer who logged in"),
        _c("fingerprint", T.STRING, "Device fingerprint hash", max_length=64),
        _c("os", T.CODE, "Operating system", codes=DEVICE_OS),
        _c("is_emulator", T.BOOL, "Emulator detected"),
        _c("is_rooted", T.BOOL, "Rooted or jail-broken"),
        _c("ip_address", T.STRING, "Last IP address", required=False, max_length=45),
        _c("first_seen_date", T.DATE, "First login from the device"),
    ),
    made_by="One device per digital customer; fraud rings share a few fingerprints and IP addresses.",
)

CONTACTS = Table(
    name="contacts",
    description="Contacts the customer declared (emergency contacts, family).",
    key=("customer_id", "contact_phone"),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _c("customer_id", T.STRING, "Customer"),
        _c("contact_phone", T.PHONE, "Contact's mobile number", pii=True),
        _c("relation", T.CODE, "Relationship", codes=RELATIONS),
    ),
    made_by="Family and friends, often other customers; ring members list each other.",
)

NEGATIVE_LIST = Table(
    name="negative_list",
    description="Negative list: ID numbers, phones and devices linked to fraud, enforcement or default.",
    key=("entry_id",),
    operational=True,
    rules=(RowRule("negative_value_matches_kind", "value is a valid ID number or phone when kind says so"),),
    columns=(
        _c("entry_id", T.STRING, "Entry id", max_length=24),
        _c("kind", T.CODE, "What the value is", codes=NEGATIVE_KINDS),
        _c("value", T.STRING, "The listed ID number, phone or device fingerprint", pii=True, max_length=64),
        _c("reason", T.CODE, "Why it is listed", codes=NEGATIVE_REASONS),
        _c("listed_date", T.DATE, "Date listed"),
        _c("source", T.STRING, "Who listed it (court, PBOC, internal)", max_length=32),
    ),
    made_by="A share of the planted fraud rings and of past defaulters, plus court-enforced debtors.",
)

#: Every table, in load order (a table's foreign keys point to tables before it).
TABLES: tuple[Table, ...] = (
    BRANCHES,
    STAFF,
    CUSTOMERS,
    DEPOSIT_ACCOUNTS,
    ACCOUNT_FLOWS,
    ASSETS_MONTHLY,
    LOANS,
    LOAN_PERFORMANCE,
    BUREAU_REPORTS,
    TAX_RECORDS,
    INVOICES,
    FARMLAND,
    SOCIAL_SECURITY,
    DEVICES,
    CONTACTS,
    NEGATIVE_LIST,
)

BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def get_table(name: str) -> Table:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no contract table {name!r}; known: {', '.join(BY_NAME)}") from None


def _check_declarations() -> None:
    seen: list[str] = []
    for table in TABLES:
        names = table.column_names
        assert len(set(names)) == len(names), table.name
        for k in (*table.key, *table.unique):
            assert k in names, (table.name, k)
        for fk in table.foreign_keys:
            assert fk.column in names, (table.name, fk.column)
            assert fk.table in seen, f"{table.name}.{fk.column} points to {fk.table}, not loaded before it"
        seen.append(table.name)


_check_declarations()


@dataclass(frozen=True, slots=True)
class ExtractLayout:
    """Where the files of an extract live inside a directory."""

    extracts_dir: str = "extracts"
    truth_dir: str = "truth"
    manifest: str = "manifest.json"
    suffixes: tuple[str, ...] = field(default=(".parquet", ".csv", ".xlsx"))
