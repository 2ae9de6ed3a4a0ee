"""``creditfactory schedule`` through Typer's runner, on an app that registers the command."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from creditfactory.servicing.cli import schedule

app = typer.Typer()


@app.callback()
def root() -> None:
    """Stand-in for the creditfactory root command."""


app.command("schedule")(schedule)

BASE = ["schedule", "--amount", "100000", "--rate", "0.0435", "--term", "12", "--start", "2025-01-15"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


class TestScheduleCommand:
    def test_prints_the_table_with_totals(self) -> None:
        code, out = run(*BASE, "--method", "equal_installment", "--day-count", "30/360")
        assert code == 0, out
        assert "8,530.99" in out and "8,531.01" in out and "2026-01-15" in out
        assert "2,371.90" in out and "102,371.90" in out  # interest and payment totals

    def test_json_line_carries_amounts_as_strings(self) -> None:
        code, out = run(*BASE, "--method", "equal_principal", "--json")
        assert code == 0, out
        payload = json.loads(out.strip().splitlines()[-1])
        assert payload["method"] == "equal_principal"
        first = payload["instalments"][0]
        assert first["total"] == "8695.83" and first["due_date"] == "2025-02-15"
        assert payload["totals"] == {"principal": "100000.00", "interest": "2356.26", "total": "102356.26"}

    def test_multiple_and_rounding_options(self) -> None:
        code, out = run(*BASE, "--multiple", "1", "--rounding", "up", "--json")
        assert code == 0, out
        assert json.loads(out.strip().splitlines()[-1])["level_instalment"] == "8531.00"

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            (["--method", "balloon"], "--method: unknown value 'balloon'"),
            (["--amount", "-5"], "principal must be positive"),
            (["--amount", "ten"], "--amount: 'ten' is not a number"),
            (["--term", "0"], "term must be 1..600"),
            (["--day-count", "30/365"], "--day-count: unknown value"),
            (["--start", "2025-02-30"], "--start: '2025-02-30' is not a date"),
            (["--multiple", "0"], "instalment_multiple must be positive"),
            (["--amount", "1e32"], "principal 1E+32 is too large: at most 92233720368547758.07"),
            (["--start", "9999-06-15"], "start 9999-06-15 with a term of 12 months puts due dates after"),
            (["--first-due", "9999-12-20"], "first_due 9999-12-20 with a term of 12 months"),
        ],
    )
    def test_bad_input_is_one_clear_error_with_exit_code_2(self, changes: list[str], message: str) -> None:
        args = list(BASE)
        for flag, value in zip(changes[::2], changes[1::2], strict=True):
            if flag in args:
                args[args.index(flag) + 1] = value
            else:
                args += [flag, value]
        code, out = run(*args)
        assert code == 2
        assert message in out
        assert "Traceback" not in out and out.count("error:") == 1
