"""``creditfactory decision ...``: the relationship graph and the catalogue of decision facts."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, fail, state
from creditfactory.decisioning import service
from creditfactory.decisioning.facts import FACTS
from creditfactory.decisioning.model import FactSettings
from creditfactory.errors import DomainError

app = typer.Typer(
    help="Decisions: the facts they are made from and the relationship graph.", no_args_is_help=True
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
