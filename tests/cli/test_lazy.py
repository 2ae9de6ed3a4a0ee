"""The root command lists every domain's commands without importing them, and loads each on use."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from creditfactory.cli.main import LAZY, app

#: what ``creditfactory --help`` must not import: the composition root, the domains' services
#: and the heavy libraries they bring
HEAVY = (
    "creditfactory.bootstrap",
    "creditfactory.decisioning",
    "creditfactory.origination",
    "creditfactory.servicing",
    "creditfactory.ledger",
    "creditfactory.modeling",
    "sqlalchemy",
    "polars",
    "pyarrow",
)


def _imported_after(argv: list[str]) -> dict[str, object]:
    probe = (
        "import json, sys\n"
        "from creditfactory.cli.main import app\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, {argv!r})\n"
        f"print(json.dumps({{'code': r.exit_code, 'output': r.output, "
        f"'heavy': sorted(m for m in sys.modules if m.split('.')[0] in {{'sqlalchemy', 'polars', 'pyarrow'}} "
        f"or any(m == h or m.startswith(h + '.') for h in {list(HEAVY)!r}))}}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_root_help_lists_every_command_without_importing_the_domains() -> None:
    got = _imported_after(["--help"])
    assert got["code"] == 0
    assert got["heavy"] == []
    listed = re.findall(r"^│ (\S+) {2,}\S", str(got["output"]), flags=re.MULTILINE)
    assert [e.name for e in LAZY] == [n for n in listed if n in {e.name for e in LAZY}]
    assert set(listed) >= {"version", "serve", "db", "auth", "events"}


def test_a_command_of_a_domain_is_loaded_when_it_runs() -> None:
    got = _imported_after(
        ["schedule", "--amount", "12000", "--rate", "0.06", "--term", "12", "--start", "2026-01-15"]
    )
    assert got["code"] == 0, got["output"]
    assert "creditfactory.servicing" in got["heavy"]
    assert "creditfactory.decisioning" not in got["heavy"]


@pytest.mark.parametrize("entry", LAZY, ids=lambda e: e.name)
def test_each_line_of_the_list_is_the_commands_own_help(entry: object) -> None:
    from creditfactory.cli.lazy import command_of

    real = command_of(entry.name, entry.load())  # type: ignore[attr-defined]
    assert entry.help == (real.help or "").split("\n\n")[0].strip()  # type: ignore[attr-defined]
    assert isinstance(real, typer.core.TyperGroup) == entry.group  # type: ignore[attr-defined]


def test_the_list_keeps_its_order_commands_before_groups() -> None:
    group = typer.main.get_command(app)
    ctx = group.make_context("creditfactory", [], resilient_parsing=True)
    names = group.list_commands(ctx)  # type: ignore[attr-defined]
    assert names[:5] == ["version", "serve", "ingest", "demo", "schedule"]
    assert names[5:8] == ["db", "auth", "events"]
    assert names[8:] == [e.name for e in LAZY if e.group]


def test_the_decision_commands_include_the_truth_measures_once() -> None:
    from creditfactory.cli.main import _decision
    from creditfactory.decisioning import cli as decisioning_cli

    _decision()
    _decision()  # loaded again (a second command in the same process): not added twice
    for group in (decisioning_cli.app, decisioning_cli.graph_app):
        assert [c.name for c in group.registered_commands].count("truth") == 1
    runner = CliRunner()
    first = runner.invoke(app, ["decision", "--help"])
    again = runner.invoke(app, ["decision", "graph", "--help"])
    assert first.exit_code == 0 and again.exit_code == 0
    assert re.findall(r"^│ truth ", first.output, flags=re.MULTILINE) == ["│ truth "]
    assert re.findall(r"^│ truth ", again.output, flags=re.MULTILINE) == ["│ truth "]


@pytest.mark.parametrize("name", [e.name for e in LAZY if not e.group])
def test_a_function_command_has_no_completion_options_of_its_own(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "--install-completion" not in result.output


def test_a_mistyped_command_is_answered_with_the_lazy_names_too() -> None:
    result = CliRunner().invoke(app, ["decisoin"])
    assert result.exit_code == 2
    assert "Did you mean 'decision'" in result.output
