"""The servicing commands as an operator types them: products, a line, a drawdown, ends of day."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from creditfactory.cli.main import app


def run(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data), *args], catch_exceptions=False)
    return result.exit_code, result.output


def last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


class TestAnOperatorsDay:
    def test_open_lend_close_days_repay(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        assert run(data, "eod", "open", "--date", "2025-01-15")[0] == 0
        code, out = run(data, "products", "load")
        assert code == 0 and "farmer_revolving_line" in out

        code, out = run(
            data,
            "lines",
            "open",
            "--customer",
            "C001",
            "--product",
            "farmer_revolving_line",
            "--limit",
            "50000",
            "--json",
        )
        assert code == 0, out
        line_id = last_json(out)["line_id"]
        code, out = run(
            data,
            "loans",
            "draw",
            "--line",
            str(line_id),
            "--amount",
            "12000",
            "--term",
            "12",
            "--method",
            "equal_installment",
            "--key",
            "first",
            "--json",
        )
        assert code == 0, out
        loan = last_json(out)
        assert (loan["principal"], loan["instalments"]) == ("12000.00", 12)
        # the same key again draws nothing more
        code, out = run(
            data,
            "loans",
            "draw",
            "--line",
            str(line_id),
            "--amount",
            "12000",
            "--term",
            "12",
            "--method",
            "equal_installment",
            "--key",
            "first",
            "--json",
        )
        assert last_json(out)["loan_id"] == loan["loan_id"]

        for _ in range(3):
            code, out = run(data, "eod", "run", "--json")
            assert code == 0, out
        report = last_json(out)
        assert report["business_date"] == "2025-01-17" and report["next_date"] == "2025-01-18"
        assert [s["status"] for s in report["steps"]] == ["completed"] * len(report["steps"])
        code, out = run(data, "eod", "run", "--date", "2025-01-16")
        assert code == 0 and "already closed" in out
        code, out = run(data, "eod", "status", "--json")
        assert {s["step"] for s in last_json(out)["steps"]} >= {
            "servicing.accrue_interest",
            "ledger.trial_balance",
        }

        code, out = run(
            data, "loans", "repay", str(loan["loan_id"]), "--amount", "1000", "--key", "r1", "--json"
        )
        assert code == 0, out
        paid = last_json(out)
        assert paid["settled"] is False and paid["principal"] != "0.00"
        code, out = run(data, "loans", "show", str(loan["loan_id"]))
        assert code == 0 and "interest receivable" in out
        code, out = run(data, "loans", "portfolio", "--json")
        assert code == 0
        assert last_json(out)["by_tier"]["normal"]["loans"] == 1

    def test_bad_input_is_one_clear_error(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        run(data, "eod", "open", "--date", "2025-01-15")
        run(data, "products", "load")
        code, out = run(
            data, "lines", "open", "--customer", "C001", "--product", "no_such_product", "--limit", "1000"
        )
        assert code == 2 and "no_such_product" in out
        code, out = run(
            data, "loans", "draw", "--line", "99", "--amount", "1000", "--term", "3", "--key", "k"
        )
        assert code == 2 and "credit line 99 does not exist" in out
        code, out = run(data, "eod", "open", "--date", "2025-03-01")
        assert code == 2 and "already open" in out

    def test_a_line_with_contract_terms_lends_on_them(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        run(data, "eod", "open", "--date", "2025-01-15")
        run(data, "products", "load")
        code, out = run(
            data,
            "lines",
            "open",
            "--customer",
            "C001",
            "--product",
            "farmer_revolving_line",
            "--limit",
            "20000",
            "--term",
            "6",
            "--method",
            "equal_installment",
            "--json",
        )
        assert code == 0, out
        line = last_json(out)
        assert (line["term_months"], line["repayment_method"]) == (6, "equal_installment")
        code, out = run(
            data, "loans", "draw", "--line", str(line["line_id"]), "--amount", "6000", "--key", "k1", "--json"
        )
        assert code == 0, out
        assert last_json(out)["instalments"] == 6
        code, out = run(
            data,
            "lines",
            "open",
            "--customer",
            "C002",
            "--product",
            "farmer_revolving_line",
            "--limit",
            "1000",
            "--term",
            "999",
        )
        assert code == 2 and "term 999 months is outside" in out
