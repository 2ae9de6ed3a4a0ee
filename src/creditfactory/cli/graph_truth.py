"""The relationship graph measured against a sandbox bank's ground truth (its planted fraud rings).

Only edges (commands, the demo, benchmarks) read the truth; ``decisioning`` itself never sees it.
``creditfactory decision graph truth --sandbox DIR`` prints, for the members of the planted rings
and for everyone else, how many sit within N hops of the negative list and how many share a group
(phones, devices, IPs, addresses) with a member of their ring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table as RichTable

from creditfactory import decisioning
from creditfactory.bootstrap import Container
from creditfactory.cli.context import emit_json, fail, state
from creditfactory.errors import DomainError, InvalidInput


def ring_labels(sandbox: Path) -> pl.DataFrame:
    """``customer_id``, ``label`` (the ring id, null for everyone else) and ``stratum``
    (``exposed``: the ring's devices and organiser are on the negative list; ``hidden``)."""
    customers = sandbox / "truth" / "customers"
    rings = sandbox / "truth" / "rings.parquet"
    if not customers.is_dir() or not rings.exists():
        raise InvalidInput(f"{sandbox} holds no sandbox truth (truth/customers, truth/rings.parquet)")
    truth = pl.read_parquet(customers / "*.parquet", columns=["customer_id", "ring_id"])
    exposed = pl.read_parquet(rings, columns=["ring_id", "exposed"])
    return truth.join(exposed, on="ring_id", how="left").select(
        "customer_id",
        pl.col("ring_id").alias("label"),
        pl.when(pl.col("ring_id").is_null())
        .then(None)
        .when(pl.col("exposed"))
        .then(pl.lit("exposed"))
        .otherwise(pl.lit("hidden"))
        .alias("stratum"),
    )


def measure_rings(
    container: Container, *, sandbox: Path, settings: decisioning.FactSettings | None = None
) -> dict[str, Any]:
    """Ring members against everyone else in the stored graph (see ``decisioning.measure_reach``)."""
    labels = ring_labels(sandbox)
    with container.uow() as uow:
        return decisioning.measure_reach(uow, labels=labels, settings=settings)


def rows(measures: dict[str, Any], max_hops: int) -> list[dict[str, Any]]:
    """One row per population for a table: people, share within 1..max_hops, grouped, flagged."""
    out: list[dict[str, Any]] = []
    parts = [("ring members", measures["labelled"])]
    parts += [(f"  {s}", m) for s, m in measures.get("by_stratum", {}).items()]
    parts.append(("others", measures["unlabelled"]))
    for name, m in parts:
        if not m.get("people"):
            continue
        row: dict[str, Any] = {"who": name, "people": m["people"]}
        for h in range(0, max_hops + 1):
            row[f"≤{h} hop"] = m["within_hops"][str(h)]
        row["ring group"] = m["grouped_with_label"]
        row["group ≥3"] = m["group_3_or_more"]
        row["flagged"] = m["flagged"]
        out.append(row)
    return out


def truth_command(
    ctx: typer.Context,
    sandbox: Annotated[Path, typer.Option(help="Folder the sandbox bank was generated into.")],
    max_hops: Annotated[int, typer.Option(help="How far to look for the negative list.")] = 4,
    degree_cap: Annotated[int, typer.Option(help="Nodes with more links are not passed through.")] = 100,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Planted fraud-ring members against everyone else: within N hops of the negative list,
    grouped with their ring (build the graph first)."""
    st = state(ctx)
    try:
        settings = decisioning.FactSettings(max_hops=max_hops, degree_cap=degree_cap)
        measures = measure_rings(st.container, sandbox=sandbox, settings=settings)
    except DomainError as exc:
        raise fail(st.err, exc) from None
    table = RichTable(title="Relationship graph against the planted fraud rings", title_justify="left")
    lines = rows(measures, max_hops)
    for col in lines[0] if lines else []:
        table.add_column(col, justify="left" if col == "who" else "right")
    for line in lines:
        table.add_row(
            *[
                f"{v:.1%}" if isinstance(v, float) else (f"{v:,}" if isinstance(v, int) else str(v))
                for v in line.values()
            ]
        )
    st.console.print(table)
    st.console.print(
        "≤N hop: within N links of the negative list; ring group: in a group (shared phone, device, "
        "IP, address) with another member of the same ring (for everyone else: with any ring member); "
        "flagged: within 2 hops or in a ring group"
    )
    if json_out:
        emit_json(measures)
