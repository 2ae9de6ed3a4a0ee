"""Path and query parameters the routers share: ids, customer ids, codes and plain text.

A value in a path or a query reaches the database as it was sent. An id past a ``BIGINT``'s
range fails there (SQLite cannot bind it, PostgreSQL refuses it), and so does a string holding
a NUL byte, which PostgreSQL refuses in text. Either would be a 500. Declared with these
types, each is refused before the route runs, as a 422 ``invalid_request`` naming the
parameter. ``tests/api/test_params.py`` walks every route and checks that each ``int`` and
``str`` path or query parameter is bounded so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

#: The largest id a ``BIGINT`` column holds.
MAX_ID = 2**63 - 1
#: Text without control characters (NUL, line breaks, escapes), at least one character.
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]+$"
#: Text of one or more lines (tabs and line breaks allowed, no other control character).
MULTILINE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"
#: A customer number (core banking CIF) as the extracts carry it: up to 20 characters.
CUSTOMER_ID_MAX = 20
#: A product's code, as ``servicing.model.LoanProduct`` defines it.
PRODUCT_CODE = r"^[a-z0-9][a-z0-9_\-]*$"

LineId = Annotated[int, Path(ge=1, le=MAX_ID, description="Credit line id.")]
LoanId = Annotated[int, Path(ge=1, le=MAX_ID, description="Loan id.")]
VersionId = Annotated[int, Path(ge=1, le=MAX_ID, description="Whitelist version id.")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="Ingestion run id.")]
CustomerId = Annotated[
    str,
    Path(max_length=CUSTOMER_ID_MAX, pattern=PLAIN_TEXT, description="Customer number (CIF)."),
]
ProductCode = Annotated[str, Path(max_length=64, pattern=PRODUCT_CODE, description="Product code.")]
