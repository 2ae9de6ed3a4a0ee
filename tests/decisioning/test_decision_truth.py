"""``creditfactory decision truth``: the stored decisions against a hand-made sandbox truth.

Five factory customers are decided through the API (see ``test_decide``): C0001 and C0003
approved at grade B, C0007 declined (age), C0004 declined (score), C0002 referred (phone not on
file). The truth below makes C0004 and C0002 members of a fraud ring, C0003 a defaulter and the
others good, so: 2 of 2 ring members stopped; of the good C0001 and C0007, one declined (50%
false declines); grade B: 2 approvals of which one bad (C0003).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from creditfactory.cli.decision_truth import applied_decisions, measure_decisions
from creditfactory.cli.main import app
from tests.decisioning.deciding import Ready
from tests.decisioning.test_decide import apply, ready  # noqa: F401  (fixture)
from tests.origination.conftest import offered, world  # noqa: F401  (fixtures)
from tests.origination.test_api import Api
from tests.whitelist.conftest import bank, publish  # noqa: F401  (fixtures)


def truth_folder(root: Path) -> Path:
    folder = root / "truth" / "customers"
    folder.mkdir(parents=True)
    pl.DataFrame(
        {
            "customer_id": ["C0001", "C0002", "C0003", "C0004", "C0007", "C0008"],
            "is_fraudster": [False, True, False, True, False, False],
            "bad_12m": [False, False, True, True, False, False],
            "pd_12m": [0.01, 0.2, 0.3, 0.4, 0.02, 0.05],
            "ring_id": [None, "R1", None, "R1", None, None],
        }
    ).write_parquet(folder / "part-00000.parquet")
    return root


@pytest.fixture
def decided(ready: Ready) -> Ready:  # noqa: F811
    api = Api(ready.container)
    got = {
        cid: apply(api, cid, **changes)["status"]
        for cid, changes in (
            ("C0001", {}),
            ("C0003", {}),
            ("C0007", {}),
            ("C0004", {}),
            (
                "C0002",
                {"applicant": {"name": "王秀英", "id_number": "330521197511020220", "phone": "13344445555"}},
            ),
        )
    }
    assert got == {
        "C0001": "approved",
        "C0003": "approved",
        "C0007": "declined",
        "C0004": "declined",
        "C0002": "referred",
    }
    return ready


def test_the_measures_of_the_worked_example(decided: Ready, tmp_path: Path) -> None:
    frame = applied_decisions(decided.container)
    assert sorted(frame.select("customer_id", "outcome").iter_rows()) == [
        ("C0001", "approve"),
        ("C0002", "refer"),
        ("C0003", "approve"),
        ("C0004", "decline"),
        ("C0007", "decline"),
    ]
    q = measure_decisions(decided.container, sandbox=truth_folder(tmp_path / "bank"))
    assert q["outcomes"] == {"approve": 2, "decline": 2, "refer": 1, "undecided": 0}
    assert q["ring"] == {"members": 2, "stopped": 2, "stopped_share": 1.0, "approved": 0}
    assert q["good"]["applicants"] == 2 and q["good"]["false_decline_rate"] == 0.5
    assert q["bad"] == {"applicants": 1, "approved": 1, "approved_share": 1.0}
    b, every = q["by_grade"]
    assert (b["grade"], b["approved"], b["bad"], b["bad_rate"]) == ("B", 2, 1, 0.5)
    assert b["true_pd"] == pytest.approx(0.155) and every["grade"] == "all"


def test_the_command(decided: Ready, tmp_path: Path) -> None:
    sandbox = truth_folder(tmp_path / "bank")
    c = decided.container
    env = {"CREDITFACTORY_DATABASE_URL": c.settings.resolved_database_url}
    args = ["--data-dir", str(c.data_dir), "decision", "truth", "--sandbox", str(sandbox), "--json"]
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    q = json.loads(result.output.strip().splitlines()[-1])
    assert q["ring"]["stopped_share"] == 1.0 and q["good"]["false_decline_rate"] == 0.5
    assert "false declines" in result.output and "50.0%" in result.output
    bad = CliRunner().invoke(app, [*args[:4], "--sandbox", str(tmp_path / "nowhere")], env=env)
    assert bad.exit_code != 0 and "no sandbox truth" in bad.output
    later = CliRunner().invoke(app, [*args, "--from", "2099-01-01"], env=env, catch_exceptions=False)
    assert json.loads(later.output.strip().splitlines()[-1])["applications"] == 0
