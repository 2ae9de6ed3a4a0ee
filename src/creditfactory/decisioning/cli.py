"""``creditfactory decision ...``: decisions (decide, list, show, replay, back-test), decision
strategies (publish champion and challenger, list), the relationship graph and the catalogue of
decision facts."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from creditfactory import strategy
from creditfactory.cli.context import emit_json, fail, state
from creditfactory.decisioning import backtest as backtest_mod
from creditfactory.decisioning import engine, service
from creditfactory.decisioning import replay as replay_mod
from creditfactory.decisioning.facts import FACTS
from creditfactory.decisioning.model import FactSettings
from creditfactory.errors import DomainError

app = typer.Typer(
    help="Decisions: records, replay, back-test, strategies, facts and the relationship graph.",
    no_args_is_help=True,
)
graph_app = typer.Typer(help="The relationship graph around applicants.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")


def _kinds_table(title: str, nodes: dict[str, int], edges: dict[str, int]) -> RichTable:
    """Nodes by kind beside links by kind (a link joins a person to one of the node kinds)."""
    table = RichTable(title=title, title_justify="left")
    for col in ("node kind", "nodes", "link kind", "links"):
        table.add_column(col, justify="right" if col in ("nodes", "links") else "left")
    node_rows = sorted(nodes.items())
    edge_rows = sorted(edges.items())
    for i in range(max(len(node_rows), len(edge_rows))):
        n = node_rows[i] if i < len(node_rows) else ("", None)
        e = edge_rows[i] if i < len(edge_rows) else ("", None)
        table.add_row(n[0], "" if n[1] is None else f"{n[1]:,}", e[0], "" if e[1] is None else f"{e[1]:,}")
    table.add_row("[bold]total", f"[bold]{sum(nodes.values()):,}", "", f"[bold]{sum(edges.values()):,}")
    return table


@graph_app.command("build")
def graph_build(
    ctx: typer.Context,
    degree_cap: Annotated[
        int, typer.Option(help="Nodes with more links are not passed through (super-nodes).")
    ] = FactSettings().degree_cap,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line of figures.")] = False,
) -> None:
    """Rebuild the graph from the lake (customers, devices, contacts, negative list, loans) and
    the applications seen so far; print nodes and edges by kind and the components."""
    st = state(ctx)
    container = st.container
    try:
        settings = FactSettings(degree_cap=degree_cap)
        with Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=st.err,
            disable=json_out,
        ) as bar:
            task = bar.add_task("graph", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total)

            with container.uow() as uow:
                result = service.build_graph(
                    uow, lake=container.lake_dir, clock=container.clock, settings=settings, progress=progress
                )
                uow.commit()
    except DomainError as exc:
        raise fail(st.err, exc) from None
    summary = result.summary
    st.console.print(_kinds_table("Relationship graph", summary["nodes_by_kind"], summary["edges_by_kind"]))
    comp, groups = summary["components"], summary["groups"]
    st.console.print(
        f"components: {comp['count']:,}, the largest holds {comp['largest_people']:,} people "
        f"({comp['largest_nodes']:,} nodes; declared contacts link most of a customer base)"
    )
    st.console.print(
        f"groups (shared phone, device, IP, address): {groups['count']:,}, the largest holds "
        f"{groups['largest_people']:,} people; {groups['people_in_groups_of_3_or_more']:,} people "
        "in groups of three or more"
    )
    st.console.print(
        f"on the negative list: {summary['negative_nodes']:,} nodes; defaulted: {summary['defaulted_people']:,}"
        f" people; declined: {summary['declined_people']:,}; super-nodes (> {settings.degree_cap} links): "
        f"{summary['super_nodes']:,} (largest degree {summary['max_degree']:,})"
    )
    st.console.print(f"{result.nodes:,} nodes and {result.edges:,} edges in {result.seconds:.1f} s")
    if json_out:
        emit_json(result.to_json())


@graph_app.command("status")
def graph_status(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Nodes and edges by kind as the graph stands, its last bulk build and the applications seen."""
    st = state(ctx)
    with st.container.uow() as uow:
        status = service.graph_status(uow)
    st.console.print(_kinds_table("Relationship graph", status["nodes_by_kind"], status["edges_by_kind"]))
    last = status["last_build"]
    if last is None:
        st.console.print("never built in bulk; run `creditfactory decision graph build`")
    else:
        st.console.print(
            f"last built {last['finished_at']} from {last['lake']} in {last['seconds']:.1f} s "
            f"({last['nodes']:,} nodes, {last['edges']:,} edges)"
        )
    apps = status["applications"]
    st.console.print(
        "applications seen: " + (", ".join(f"{k} {v:,}" for k, v in sorted(apps.items())) if apps else "none")
    )
    if json_out:
        emit_json(status)


@app.command("facts")
def facts(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line: the schema.")] = False,
) -> None:
    """The facts a decision strategy can use: name, type, family, meaning, when NULL."""
    st = state(ctx)
    table = RichTable(title=f"Decision facts ({len(FACTS)})", title_justify="left")
    for col in ("fact", "type", "family", "meaning", "NULL when"):
        table.add_column(col)
    for f in FACTS:
        table.add_row(f.name, f.type, f.family, f.meaning, f.null_when)
    st.console.print(table)
    if json_out:
        payload: dict[str, Any] = {"facts": {f.name: f.type for f in FACTS}}
        emit_json(payload)


# ------------------------------------------------------------------ decisions

strategy_app = typer.Typer(help="Decision strategies: champion and challenger.", no_args_is_help=True)
app.add_typer(strategy_app, name="strategy")


def _money(value: Any) -> str:
    return "-" if value is None else str(value)


@strategy_app.command("publish")
def strategy_publish(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A decision strategy YAML file.", exists=True, dir_okay=False)],
    challenger: Annotated[bool, typer.Option("--challenger", help="Publish as the challenger.")] = False,
    share: Annotated[
        float, typer.Option(help="The challenger's share of applicants (0 < share <= 1).")
    ] = 0.1,
    mode: Annotated[
        str, typer.Option(help="shadow: recorded only; live: the challenger decides its share.")
    ] = "shadow",
    by: Annotated[str, typer.Option(help="Staff id of the publisher.")] = "cli",
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Check a decision strategy against the decision schema and publish it as the champion (or
    the challenger), replacing the active one of that role."""
    st = state(ctx)
    c = st.container
    try:
        with c.uow() as uow:
            published = engine.publish_strategy(
                uow,
                path=file,
                clock=c.clock,
                actor=by,
                challenger=challenger,
                share=share,
                mode=mode,
                lake=c.lake_dir,
                models_dir=c.models_dir,
            )
            uow.commit()
    except (DomainError, strategy.StrategyError) as exc:
        raise fail(st.err, exc) from None
    extra = f" on {published.share:.0%} of applicants, {published.mode}" if challenger else ""
    st.console.print(
        f"published {published.label} ({published.sha256[:12]}) as {published.role}{extra}: id {published.id}"
    )
    if json_out:
        emit_json(published.to_json())


@strategy_app.command("stop-challenger")
def strategy_stop_challenger(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Stop the active challenger (its records stay); every applicant goes to the champion."""
    st = state(ctx)
    with st.container.uow() as uow:
        stopped = engine.retire_challenger(uow, clock=st.container.clock)
        uow.commit()
    st.console.print("challenger stopped" if stopped else "no challenger was active")
    if json_out:
        emit_json({"stopped": stopped})


@strategy_app.command("list")
def strategy_list(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Every published decision strategy, the active ones marked."""
    st = state(ctx)
    with st.container.uow() as uow:
        items = engine.list_strategies(uow)
    table = RichTable(title="Decision strategies", title_justify="left")
    for col in ("id", "name", "version", "sha256", "role", "share", "mode", "active", "published"):
        table.add_column(col)
    for s in items:
        table.add_row(
            str(s.id),
            s.name,
            str(s.version),
            s.sha256[:12],
            s.role,
            f"{s.share:.0%}",
            s.mode,
            "yes" if s.active else "",
            f"{s.published_at:%Y-%m-%d %H:%M} by {s.published_by}",
        )
    st.console.print(table)
    if json_out:
        emit_json({"strategies": [s.to_json() for s in items]})


@app.command("decide")
def decide(
    ctx: typer.Context,
    application_id: Annotated[int, typer.Argument(help="A submitted application.")],
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line: the record.")] = False,
) -> None:
    """Decide a submitted application now (one left submitted while no strategy was published)."""
    st = state(ctx)
    c = st.container
    try:
        with c.uow() as uow:
            view = engine.decide_application(
                uow, application_id=application_id, lake=c.lake_dir, models_dir=c.models_dir, clock=c.clock
            )
            uow.commit()
    except DomainError as exc:
        raise fail(st.err, exc) from None
    st.console.print(
        f"application {application_id}: {view.outcome} ({' '.join(view.reason_codes) or 'no rule hit'}); "
        f"limit {_money(view.limit)}, rate {_money(view.annual_rate)}; decision {view.id}"
    )
    if json_out:
        emit_json(view.to_json())


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    date_from: Annotated[str | None, typer.Option("--from", help="First business date (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last business date (YYYY-MM-DD).")] = None,
    outcome: Annotated[str | None, typer.Option(help="approve, decline or refer.")] = None,
    role: Annotated[str | None, typer.Option(help="champion or challenger.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Decisions in id order."""
    st = state(ctx)
    try:
        d1 = None if date_from is None else date.fromisoformat(date_from)
        d2 = None if date_to is None else date.fromisoformat(date_to)
    except ValueError as exc:
        raise fail(st.err, exc) from None
    with st.container.uow() as uow:
        items = engine.list_decisions(uow, date_from=d1, date_to=d2, role=role, outcome=outcome, limit=limit)
    table = RichTable(title=f"Decisions ({len(items)})", title_justify="left")
    for col in (
        "id",
        "application",
        "customer",
        "date",
        "role",
        "outcome",
        "reason",
        "grade",
        "limit",
        "rate",
        "ms",
    ):
        table.add_column(col)
    for i in items:
        table.add_row(
            str(i["id"]),
            str(i["application_id"]),
            i["customer_id"],
            i["business_date"],
            i["role"] + ("" if i["applied"] else " (shadow)"),
            i["outcome"],
            i["reason_code"] or "",
            i["grade"] or "",
            _money(i["limit"]),
            _money(i["annual_rate"]),
            f"{i['total_ms']:.1f}",
        )
    st.console.print(table)
    if json_out:
        emit_json({"decisions": items})


@app.command("show")
def show(
    ctx: typer.Context,
    decision_id: Annotated[int, typer.Argument(help="Decision id.")],
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line: the record.")] = False,
) -> None:
    """One decision: outcome, reasons (Chinese and English), rule hits, scores, versions, timings."""
    st = state(ctx)
    try:
        with st.container.uow() as uow:
            view = engine.get_decision(uow, decision_id=decision_id)
    except DomainError as exc:
        raise fail(st.err, exc) from None
    d = view.to_json()
    st.console.print(
        f"decision {d['id']} on application {d['application_id']} ({d['customer_id']}, {d['business_date']}): "
        f"[bold]{d['outcome']}[/bold]; grade {d['grade'] or '-'}, limit {_money(d['limit'])}, "
        f"rate {_money(d['annual_rate'])}, score {d['score']}"
    )
    st.console.print(
        f"strategy {d['strategy']['name']} v{d['strategy']['version']} ({d['strategy']['sha256'][:12]}), "
        f"{d['role']}{'' if d['applied'] else ' (shadow)'}; models: "
        + (", ".join(f"{k}={m['name']} v{m['version']}" for k, m in d["models"].items()) or "none")
    )
    table = RichTable(title="Reasons", title_justify="left")
    for col in ("code", "中文", "English"):
        table.add_column(col)
    for r in d["reasons"]:
        table.add_row(r["code"], r["zh"], r["en"])
    st.console.print(table)
    st.console.print(
        "timings (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in d["timings_ms"].items() if "." not in k)
    )
    if json_out:
        emit_json(d)


@app.command("replay")
def replay(
    ctx: typer.Context,
    decision_id: Annotated[int, typer.Argument(help="Decision id.")],
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Re-run a stored decision from its stored inputs, strategy text and model versions and show
    any difference (exit code 1 when there is one)."""
    st = state(ctx)
    c = st.container
    try:
        with c.uow() as uow:
            result = replay_mod.replay_decision(uow, decision_id=decision_id, models_dir=c.models_dir)
    except DomainError as exc:
        raise fail(st.err, exc) from None
    if result.same:
        st.console.print(
            f"decision {decision_id} replays the same: {result.replayed['outcome']} "
            f"({' '.join(result.replayed['reasons']) or 'no rule hit'})"
        )
    else:
        table = RichTable(title=f"Decision {decision_id}: differences", title_justify="left")
        for col in ("field", "recorded", "replayed"):
            table.add_column(col)
        for diff in result.differences:
            table.add_row(diff["field"], str(diff["recorded"]), str(diff["replayed"]))
        st.console.print(table)
    if json_out:
        emit_json(result.to_json())
    if not result.same:
        raise typer.Exit(1)


@app.command("backtest")
def backtest_cmd(
    ctx: typer.Context,
    strategy_file: Annotated[
        Path, typer.Option("--strategy", help="The strategy to test.", exists=True, dir_okay=False)
    ],
    date_from: Annotated[str, typer.Option("--from", help="First business date (YYYY-MM-DD).")],
    date_to: Annotated[str, typer.Option("--to", help="Last business date (YYYY-MM-DD).")],
    target: Annotated[
        str, typer.Option(help="Portrait target column that says a customer went bad.")
    ] = "bad_12m",
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Run a strategy over the stored inputs of the decisions made between two business dates and
    compare approval, referral and decline rates, limits and (where known) bad rates."""
    st = state(ctx)
    c = st.container
    try:
        d1, d2 = date.fromisoformat(date_from), date.fromisoformat(date_to)
        with c.uow() as uow:
            result = backtest_mod.backtest(
                uow,
                strategy_path=strategy_file,
                date_from=d1,
                date_to=d2,
                models_dir=c.models_dir,
                lake=c.lake_dir,
                target=target,
            )
    except (DomainError, strategy.StrategyError, ValueError) as exc:
        raise fail(st.err, exc) from None
    table = RichTable(
        title=f"Back-test of {result.strategy} over {result.decisions:,} decisions ({d1} .. {d2})",
        title_justify="left",
    )
    for col in ("", "decided", result.strategy):
        table.add_column(col, justify="right" if col else "left")
    for key, label in (
        ("approve", "approved"),
        ("refer", "referred"),
        ("decline", "declined"),
        ("approval_rate", "approval rate"),
        ("referral_rate", "referral rate"),
        ("decline_rate", "decline rate"),
        ("limit_total", "limits, total"),
        ("limit_average", "limit, average"),
        ("approvals_with_known_outcome", "approvals with known outcome"),
        ("bad_rate", "bad rate of approvals"),
    ):
        a, b = result.recorded[key], result.new[key]
        fmt = (
            (lambda v: "-" if v is None else f"{v:.2%}")
            if key.endswith("rate")
            else (lambda v: "-" if v is None else (f"{v:,}" if isinstance(v, int) else str(v)))
        )
        table.add_row(label, fmt(a), fmt(b))
    st.console.print(table)
    st.console.print(
        f"{result.changed:,} decisions change outcome: "
        + (
            ", ".join(f"{k} {v:,}" for k, v in result.moves.items() if k.split("->")[0] != k.split("->")[1])
            or "none"
        )
    )
    if json_out:
        emit_json(result.to_json())
