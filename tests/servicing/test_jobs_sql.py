"""The PostgreSQL form of the end of day's bulk loan updates (the statements themselves run in
the scenario tests on PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest

from creditfactory.servicing.jobs import _unnest_update


def test_one_update_joins_the_rows_passed_as_typed_arrays() -> None:
    sql, params = _unnest_update(
        "UPDATE servicing_loan SET penalty_receivable = penalty_receivable + ?, penalty_carry = ?, "
        "last_penalty_date = ?, tier = ? WHERE id = ?",
        [(5, 7, date(2025, 1, 2), "normal", 11), (6, 8, date(2025, 1, 2), "loss", 12)],
    )
    assert sql == (
        "UPDATE servicing_loan AS t SET penalty_receivable = penalty_receivable + v.c0, penalty_carry = v.c1, "
        "last_penalty_date = v.c2, tier = v.c3 FROM unnest(%s::bigint[], %s::bigint[], %s::date[], %s::text[], "
        "%s::bigint[]) AS v(c0, c1, c2, c3, id) WHERE t.id = v.id"
    )
    assert params == ([5, 6], [7, 8], [date(2025, 1, 2)] * 2, ["normal", "loss"], [11, 12])


@pytest.mark.parametrize(
    "sql", ["DELETE FROM servicing_loan WHERE id = ?", "UPDATE servicing_loan SET dpd = ? WHERE status = ?"]
)
def test_anything_but_an_update_by_id_is_refused(sql: str) -> None:
    with pytest.raises(ValueError, match="WHERE id = \\?"):
        _unnest_update(sql, [(1, 2)])
