"""The PostgreSQL form of the end of day's bulk loan updates (the statements themselves run in
the scenario tests on PostgreSQL)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa

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


def test_lists_of_numbers_casts_and_percent_signs_are_handled() -> None:
    assert _pg_array([1, 2, 3]) == ("{1,2,3}", "bigint")
    assert _pg_array([True, False]) == ("{t,f}", "boolean")
    with pytest.raises(TypeError, match="list of float"):
        _pg_array([1.5])
    with pytest.raises(TypeError, match="list of NoneType"):
        _pg_array([None, None])
    sql, params = _unnest_update(
        "dpd = :dpd::integer, note = '100%', tier = :tier",
        np.array([7]),
        {"dpd": np.array([1]), "tier": np.int64(2)},
    )
    assert sql.startswith(
        "UPDATE servicing_loan AS t SET dpd = v.c_dpd::integer, note = '100%%', tier = %(s_tier)s FROM"
    )
    assert params["s_tier"] == 2 and type(params["s_tier"]) is int


@pytest.mark.postgres
def test_text_arrays_come_back_unchanged_from_postgresql(postgres_database: sa.Engine) -> None:
    values = ['a"b', "c\\d", "e,f", "{g}", "NULL", "", " h ", "i\nj", "正常", None]
    literal, kind = _pg_array(values)
    with postgres_database.connect() as conn:
        got = conn.exec_driver_sql(f"SELECT %(a)s::{kind}[]", {"a": literal}).scalar()
    assert got == values
