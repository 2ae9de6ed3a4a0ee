"""The PostgreSQL form of the end of day's bulk loan updates (the statements themselves run in
the scenario tests on PostgreSQL)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from creditfactory.servicing.jobs import _pg_array, _unnest_update


def test_one_update_joins_the_columns_passed_as_array_literals_and_scalars_once() -> None:
    sql, params = _unnest_update(
        "penalty_receivable = penalty_receivable + :posted, penalty_carry = :carry, "
        "last_penalty_date = :day, tier = :tier, oldest_unpaid_due = :oldest",
        np.array([11, 12]),
        {
            "posted": np.array([5, 6]),
            "carry": np.array([7, -8]),
            "day": date(2025, 1, 2),
            "tier": ["normal", "loss"],
            "oldest": [date(2024, 12, 1), None],
        },
    )
    assert sql == (
        "UPDATE servicing_loan AS t SET penalty_receivable = penalty_receivable + v.c_posted, "
        "penalty_carry = v.c_carry, last_penalty_date = %(s_day)s, tier = v.c_tier, oldest_unpaid_due = v.c_oldest "
        "FROM unnest(%(ids)s::bigint[], %(c_posted)s::bigint[], %(c_carry)s::bigint[], %(c_tier)s::text[], "
        "%(c_oldest)s::date[]) AS v(id, c_posted, c_carry, c_tier, c_oldest) WHERE t.id = v.id"
    )
    assert params == {
        "ids": "{11,12}",
        "c_posted": "{5,6}",
        "c_carry": "{7,-8}",
        "s_day": date(2025, 1, 2),
        "c_tier": '{"normal","loss"}',
        "c_oldest": "{2024-12-01,NULL}",
    }


def test_text_elements_are_quoted_and_escaped() -> None:
    assert _pg_array(['a"b', "c\\d", "e,f", None]) == ('{"a\\"b","c\\\\d","e,f",NULL}', "text")
    assert _pg_array(np.array([True, False])) == ("{t,f}", "boolean")


def test_a_column_of_the_wrong_length_or_a_missing_value_is_refused() -> None:
    with pytest.raises(ValueError, match="dpd: 1 values for 2 loans"):
        _unnest_update("dpd = :dpd", np.array([1, 2]), {"dpd": np.array([3])})
    with pytest.raises(TypeError, match="no array type"):
        _pg_array(np.array([1.5]))
