"""``creditfactory decision ...`` over decisions made through the API: list, show, replay,
back-test, strategy publish and list."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from creditfactory.bootstrap import Container
from creditfactory.cli.main import app
from creditfactory.decisioning.backtest import backtest
from tests.decisioning.deciding import Ready, Trained, make_ready, write_strategy
from tests.decisioning.test_decide import apply
from tests.origination.conftest import World, offered, world  # noqa: F401  (fixtures)
from tests.origination.test_api import Api
from tests.whitelist.conftest import bank, publish  # noqa: F401  (fixtures)

ON = date(2025, 7, 1)
#: The example with an age window of 18 to 40: C0001 (45) no longer passes.
YOUNGER = {"applicant_age NOT BETWEEN 18 AND 60": "applicant_age NOT BETWEEN 18 AND 40"}


@pytest.fixture
def decided(
    offered: World,  # noqa: F811
    bank: Container,  # noqa: F811
    tmp_path: Path,
    trained: Trained,
) -> tuple[Ready, dict[str, int]]:
    for cid in ("C0001", "C0003", "C0004"):
        offered.consent(cid)
    ready = make_ready(offered.container, tmp_path, trained)
    api = Api(ready.container)
    ids = {cid: apply(api, cid)["id"] for cid in ("C0001", "C0003", "C0004")}
    return ready, ids


def run(container: Container, *args: str) -> tuple[int, str]:
    s = container.settings
    base = ["--data-dir", str(s.data_dir), "--database-url", s.resolved_database_url]
    result = CliRunner().invoke(app, [*base, *args], catch_exceptions=False)
    return result.exit_code, result.output


def last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def test_the_decision_commands(decided: tuple[Ready, dict[str, int]], tmp_path: Path) -> None:
    ready, apps = decided
    c = ready.container
    code, out = run(c, "decision", "list", "--json")
    assert code == 0, out
    items = last_json(out)["decisions"]
    assert [(i["customer_id"], i["outcome"]) for i in items] == [
        ("C0001", "approve"),
        ("C0003", "approve"),
        ("C0004", "decline"),
    ]
    declined = items[2]["id"]
    code, out = run(c, "decision", "show", str(declined), "--json")
    assert code == 0 and last_json(out)["reason_code"] == "D_SCORE"
    assert "评分低于该客群准入分数线" in out
    code, out = run(c, "decision", "replay", str(declined), "--json")
    assert code == 0, out
    assert last_json(out)["same"] is True and "replays the same" in out
    code, out = run(c, "decision", "replay", "999")
    assert code == 2 and "decision 999 does not exist" in out

    younger = write_strategy(tmp_path / "younger.yaml", **YOUNGER)
    code, out = run(
        c,
        "decision",
        "backtest",
        "--strategy",
        str(younger),
        "--from",
        "2025-07-01",
        "--to",
        "2025-07-01",
        "--json",
    )
    assert code == 0, out
    bt = last_json(out)
    assert bt["decisions"] == 3 and bt["changed"] == 1 and bt["moves"]["approve->decline"] == 1
    assert (bt["recorded"]["approve"], bt["new"]["approve"]) == (2, 1)
    assert bt["recorded"]["limit_total"] == "40000.00" and bt["new"]["limit_total"] == "20000.00"
    assert (
        bt["changes"][0]["application_id"] == apps["C0001"] and bt["changes"][0]["new_reasons"][0] == "D_AGE"
    )

    code, out = run(
        c, "decision", "strategy", "publish", str(younger), "--challenger", "--share", "0.2", "--json"
    )
    assert code == 0, out
    assert last_json(out)["role"] == "challenger" and last_json(out)["share"] == 0.2
    code, out = run(c, "decision", "strategy", "list", "--json")
    roles = [(s["role"], s["active"]) for s in last_json(out)["strategies"]]
    assert roles == [("champion", True), ("challenger", True)]
    code, out = run(c, "decision", "strategy", "stop-challenger", "--json")
    assert code == 0 and last_json(out) == {"stopped": 1}
    code, out = run(c, "decision", "strategy", "list", "--json")
    assert [s["active"] for s in last_json(out)["strategies"]] == [True, False]
    mining = str(Path(__file__).parents[2] / "src/creditfactory/strategy/examples/mining.yaml")
    code, out = run(c, "decision", "strategy", "publish", mining)
    assert code == 2 and "decision needs kind: decision" in out


def test_backtest_bad_rate_where_outcomes_are_known(
    decided: tuple[Ready, dict[str, int]], tmp_path: Path
) -> None:
    ready, _ = decided
    younger = write_strategy(tmp_path / "younger.yaml", **YOUNGER)
    with ready.container.uow() as uow:
        result = backtest(
            uow,
            strategy_path=younger,
            date_from=ON,
            date_to=ON,
            models_dir=ready.container.models_dir,
            labels={"C0001": True, "C0003": False},
        )
    # decided: C0001 (bad) and C0003 (good) approved -> 50%; the younger strategy keeps C0003 only
    assert result.recorded["bad_rate"] == 0.5 and result.new["bad_rate"] == 0.0
    assert (
        result.recorded["approvals_with_known_outcome"] == 2
        and result.new["approvals_with_known_outcome"] == 1
    )
