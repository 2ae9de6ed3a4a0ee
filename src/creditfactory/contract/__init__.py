"""The bank-extract contract: table declarations, validation, ingestion, the lake.

Public API for other domains and the edges.
"""

from creditfactory.contract.ingest import IngestResult, IngestSettings, TableResult
from creditfactory.contract.lake import scan
from creditfactory.contract.service import (
    CUSTOMER_RECORD,
    CustomerHome,
    CustomerIdentity,
    CustomerView,
    customer_contacts,
    customer_home,
    customer_identities,
    customer_record,
    find_customer_by_id_number,
    get_run,
    ingest_directory,
    lake_frame,
    list_runs,
    record_of,
    segment_counts,
    table_counts,
    view_customer,
)
from creditfactory.contract.sources import SourceError
from creditfactory.contract.tables import BY_NAME, TABLES, Column, ColumnType, Table, get_table

__all__ = [
    "BY_NAME",
    "TABLES",
    "Column",
    "ColumnType",
    "CustomerHome",
    "CustomerIdentity",
    "CustomerView",
    "IngestResult",
    "IngestSettings",
    "SourceError",
    "Table",
    "TableResult",
    "customer_contacts",
    "customer_home",
    "customer_identities",
    "CUSTOMER_RECORD",
    "customer_record",
    "record_of",
    "find_customer_by_id_number",
    "get_run",
    "get_table",
    "ingest_directory",
    "lake_frame",
    "list_runs",
    "scan",
    "segment_counts",
    "table_counts",
    "view_customer",
]
