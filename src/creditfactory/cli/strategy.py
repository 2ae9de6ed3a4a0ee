"""``creditfactory strategy``: check a strategy file, show its compiled plan.

::

    creditfactory strategy check policy.yaml                      # against the built-in catalogue
    creditfactory strategy check policy.yaml --schema schema.json
    creditfactory strategy check policy.yaml --features portrait/as_of=2025-06-30/ --json
    creditfactory strategy show policy.yaml

Neither command touches the database.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from creditfactory import strategy
from creditfactory.cli.context import emit_json, fail, state
from creditfactory.errors import DomainError, InvalidInput
from creditfactory.strategy import Plan, Problem, Strategy, StrategyError

__all__ = ["app", "check", "show"]

app = typer.Typer(help="Strategies: check a strategy file, show its compiled plan.", no_args_is_help=True)

SchemaOption = Annotated[
    Path | None,
    typer.Option("--schema", help='Feature schema as JSON: {"column": "number|string|bool|date"}.'),
]
FeaturesOption = Annotated[
    Path | None, typer.Option("--features", help="A Parquet file (or folder) whose columns are the features.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="End with one JSON line.")]


AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Check a mining strategy against the portrait built at this date."),
]


def _kind(file: Path) -> str | None:
    try:
        return strategy.load(file, strict=False).kind  # type: ignore[return-value]
    except StrategyError:
        return None


def _schema(
    schema: Path | None,
    features: Path | None,
    *,
    file: Path,
    as_of: str | None = None,
    lake: Path | None = None,
) -> tuple[dict[str, str], str]:
    """The columns a strategy is checked against: a schema file, a Parquet file's columns, the
    portrait built at ``as_of``, or (by default) the catalogue a strategy of its kind may use."""
    given = [x for x in (schema, features, as_of) if x is not None]
    if len(given) > 1:
        raise InvalidInput("give one of --schema, --features or --as-of")
    if schema is not None:
        return strategy.load_schema(schema), str(schema)
    if features is not None:
        return strategy.load_schema(features), str(features)
    kind = _kind(file)
    if kind == strategy.Kind.MINING:
        from creditfactory.whitelist import mining

        if as_of is not None:
            assert lake is not None
            at = date.fromisoformat(as_of)
            return mining.mining_schema(lake, as_of=at), f"the portrait at {at} and the whitelist's facts"
        return mining.catalogue_schema(), "the portrait's catalogue and the whitelist's facts"
    return strategy.default_schema(), "the built-in catalogue"


def _problems_table(file: str, problems: list[Problem]) -> RichTable:
    table = RichTable(
        title=f"{file}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", title_justify="left"
    )
    for name in ("line", "rule", "column", "code", "problem"):
        table.add_column(name, justify="right" if name == "line" else "left", overflow="fold")
    for p in problems:
        message = p.message
        for prefix in (f"rule {p.rule}: ", f"{p.rule}: "):
            message = message.removeprefix(prefix)
        table.add_row(str(p.line or ""), p.rule or "", p.column or "", p.code, message)
    return table


def _summary(s: Strategy, plan: Plan | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": s.name,
        "kind": s.kind.value if s.kind else None,
        "version": s.version,
        "fingerprint": s.fingerprint,
        "stages": len(s.stages),
        "rules": len(s.rules),
        "models": len(s.models),
        "grades": len(s.grades.bands) if s.grades else 0,
        "variables": len(s.variables),
    }
    if plan is not None:
        out["inputs"] = list(plan.inputs)
    return out


def _load_and_check(file: Path, schema: dict[str, str]) -> tuple[Strategy | None, list[Problem]]:
    try:
        loaded = strategy.load(file, strict=False)
    except StrategyError as exc:  # unreadable file or YAML syntax: nothing more can be checked
        return None, list(exc.problems)
    return loaded, strategy.check(loaded, schema)


def check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The strategy file (YAML).")],
    schema: SchemaOption = None,
    features: FeaturesOption = None,
    as_of: AsOfOption = None,
    json_out: JsonOption = False,
) -> None:
    """Check a strategy against a feature schema; report every problem at once (exit code 1 if any)."""
    st = state(ctx)
    try:
        columns, against = _schema(
            schema, features, file=file, as_of=as_of, lake=st.container.lake_dir if as_of else None
        )
    except (DomainError, ValueError) as exc:
        raise fail(st.err, exc) from None
    loaded, problems = _load_and_check(file, columns)
    if problems:
        st.console.print(_problems_table(str(file), problems))
        if json_out:
            emit_json(
                {
                    "file": str(file),
                    "ok": False,
                    "schema": against,
                    "problems": [p.to_dict() for p in problems],
                }
            )
        raise typer.Exit(1)
    assert loaded is not None
    plan = strategy.compile(loaded, columns)
    summary = _summary(loaded, plan)
    added = sum(1 for r in plan.rules if r.added)
    st.console.print(
        f"[bold green]ok[/]: {summary['kind']} strategy [bold]{loaded.label}[/] against {against}: "
        f"{summary['stages']} stages, {summary['rules']} rules (+{added} from cut-offs, grades and limit), "
        f"{summary['models']} models, {summary['grades']} grades, {summary['variables']} variables; "
        f"reads {len(plan.inputs)} columns"
    )
    if json_out:
        emit_json({"file": str(file), "ok": True, "schema": against, "problems": [], "summary": summary})


def show(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The strategy file (YAML).")],
    schema: SchemaOption = None,
    features: FeaturesOption = None,
    as_of: AsOfOption = None,
    json_out: JsonOption = False,
) -> None:
    """Print the compiled plan: models, inputs, variables, rules with their bits, grades, limit,
    price, and the Spark SQL of every output column."""
    st = state(ctx)
    try:
        columns, against = _schema(
            schema, features, file=file, as_of=as_of, lake=st.container.lake_dir if as_of else None
        )
    except (DomainError, ValueError) as exc:
        raise fail(st.err, exc) from None
    loaded, problems = _load_and_check(file, columns)
    if problems:
        st.console.print(_problems_table(str(file), problems))
        raise typer.Exit(1)
    assert loaded is not None and loaded.limit is not None and loaded.grades is not None
    plan = strategy.compile(loaded, columns)
    c = st.console
    c.print(f"[bold]{loaded.label}[/] ({plan.kind.value}, checked against {against})")
    c.print(f"owner: {loaded.owner}; fingerprint {loaded.fingerprint[:16]}")
    c.print(loaded.description)

    models = RichTable(title="models (the caller puts their output in score and pd)", title_justify="left")
    for name in ("segment", "model", "version"):
        models.add_column(name)
    for segment, (model, version) in plan.model_refs.items():
        models.add_row(segment, model, str(version) if version is not None else "newest approved")
    c.print(models)
    c.print("reads: " + ", ".join(f"{n} ({t.value})" for n, t in plan.input_types.items()))

    if plan.variables:
        variables = RichTable(title="variables, in order", title_justify="left")
        for name in ("name", "type", "SQL"):
            variables.add_column(name, overflow="fold")
        sources = {v.name: v.expr.text for v in loaded.variables if v.expr is not None}
        for name, node in plan.variables:
            variables.add_row(name, node.type.value, " ".join(sources[name].split()))
        c.print(variables)

    rules = RichTable(title="rules (bit i of hit_mask is rule i)", title_justify="left")
    for name in ("bit", "stage", "rule", "action", "code", "when"):
        rules.add_column(name, overflow="fold", justify="right" if name == "bit" else "left")
    for r in plan.rules:
        rules.add_row(
            str(r.bit),
            r.stage,
            r.id + (" (added)" if r.added else ""),
            r.action.value,
            r.reason.code,
            " ".join(r.sql.split()),
        )
    c.print(rules)
    reasons = RichTable(title="reasons", title_justify="left")
    for name in ("code", "English", "中文"):
        reasons.add_column(name, overflow="fold")
    seen: set[str] = set()
    for r in plan.rules:
        if r.reason.code not in seen:
            seen.add(r.reason.code)
            reasons.add_row(r.reason.code, r.reason.en, r.reason.zh)
    c.print(reasons)

    offer = RichTable(title="grades and price", title_justify="left")
    for name in ("grade", f"{loaded.grades.column} from", "to", "annual rate"):
        offer.add_column(name)
    for band in loaded.grades.bands:
        offer.add_row(
            band.grade,
            "" if band.lower is None else f"{band.lower:g}",
            "" if band.upper is None else f"{band.upper:g}",
            str(plan.prices.get(band.grade, "")),
        )
    c.print(offer)
    lim = loaded.limit
    caps = "; ".join(cap.text for cap in lim.caps) or "none"
    c.print(
        f"limit: {' '.join(lim.formula.text.split()) if lim.formula else ''}, capped by {caps}"
        + (f" and {lim.maximum}" if lim.maximum is not None else "")
        + f"; rounded {lim.rounding.value} to a multiple of {lim.multiple} yuan; below {lim.minimum}: {lim.reason.code if lim.reason else ''}"
    )
    if plan.expiry_days is not None:
        c.print(f"offers expire {plan.expiry_days} days after as_of")

    spark = plan.spark_columns()
    c.print("\n[bold]Spark SQL[/] (add in order; each reads the inputs and the columns above it)")
    for name, sql in spark:
        c.print(f"[bold]{name}[/] = {escape(sql)}", soft_wrap=True, highlight=False)
    if json_out:
        emit_json(
            {
                "file": str(file),
                "summary": _summary(loaded, plan),
                "rules": [
                    {
                        "bit": r.bit,
                        "id": r.id,
                        "stage": r.stage,
                        "action": r.action.value,
                        "code": r.reason.code,
                    }
                    for r in plan.rules
                ],
                "spark": [{"column": n, "sql": q} for n, q in spark],
            }
        )


app.command("check")(check)
app.command("show")(show)
