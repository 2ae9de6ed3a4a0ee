"""``creditfactory applications list | show`` through Typer's runner."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from creditfactory.cli.main import app
from tests.origination.conftest import World


def run(world: World, *args: str) -> tuple[int, str]:
    settings = world.container.settings
    base = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]
    result = CliRunner().invoke(app, [*base, *args], catch_exceptions=False)
    return result.exit_code, result.output


def last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def test_list_and_show(world: World) -> None:
    for cid in ("C0001", "C0002"):
        world.consent(cid)
    one, two = world.submit("C0001"), world.submit("C0002")
    world.decide(two.id, "refer", reasons=["R_INCOME_CHECK"])

    code, out = run(world, "applications", "list", "--json")
    assert code == 0, out
    assert [(a["id"], a["status"]) for a in last_json(out)["applications"]] == [
        (one.id, "submitted"),
        (two.id, "referred"),
    ]

    code, out = run(world, "applications", "list", "--status", "referred", "--json")
    assert code == 0 and [a["id"] for a in last_json(out)["applications"]] == [two.id]

    code, out = run(world, "applications", "show", str(two.id), "--json")
    assert code == 0, out
    shown = last_json(out)
    assert shown["decision"]["reasons"] == ["R_INCOME_CHECK"] and shown["amount"] == "20000.00"
    assert [t["status"] for t in shown["timeline"]] == ["submitted", "referred"]
    assert shown["velocity"]["device_30d"] == 1
    assert "人工审核中" in out and "R_INCOME_CHECK" in out
    assert "13923456789" not in out and "王秀英" not in out  # no personal data on the screen


def test_show_an_unknown_application(world: World) -> None:
    code, out = run(world, "applications", "show", "404")
    assert code == 2 and "application 404 does not exist" in out
