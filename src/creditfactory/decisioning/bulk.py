"""The relationship graph in bulk: built from the lake with Polars, analysed with SciPy.

:func:`graph_frames` turns the lake's ``customers``, ``devices``, ``contacts``,
``negative_list``, ``loans`` and ``loan_performance`` (and the applications already seen) into
the node and edge tables, with ids, degrees and flags — the same graph that adding the same
data one application at a time produces (a test compares them). Addresses are not in the lake
(it keeps no address token), so address nodes come from applications only.

:func:`summarise` counts nodes and edges by kind and finds connected components (of the whole
graph, and of the *groups* made by shared phones, devices, IPs and addresses) with
``scipy.sparse.csgraph`` in linear time; :func:`reach` computes, for every customer at once,
the hops to the negative list and the group size under the same rules as the online search,
and :func:`measure` compares them between labelled people (e.g. known fraud-ring members) and
everyone else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from creditfactory.decisioning.model import GROUP_EDGES, EdgeKind, FactSettings, NodeKind

#: A link from a person to an attribute, before ids are given.
_LINK_SCHEMA = {
    "person": pl.String,
    "edge": pl.String,
    "target_kind": pl.String,
    "target": pl.String,
    "first_seen_date": pl.Date,
}
_PERSON_SCHEMA = {"key": pl.String, "customer_id": pl.String, "first_seen_date": pl.Date, "rank": pl.Int8}

NODE_SCHEMA = {
    "id": pl.Int64,
    "kind": pl.String,
    "key": pl.String,
    "customer_id": pl.String,
    "negative": pl.Boolean,
    "declined": pl.Boolean,
    "defaulted": pl.Boolean,
    "degree": pl.Int64,
    "first_seen_date": pl.Date,
}
EDGE_SCHEMA = {"src_id": pl.Int64, "dst_id": pl.Int64, "kind": pl.String}


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a bulk build reads (lazy lake tables; ``None`` when the lake lacks one)."""

    customers: pl.LazyFrame
    devices: pl.LazyFrame | None = None
    contacts: pl.LazyFrame | None = None
    negative_list: pl.LazyFrame | None = None
    loans: pl.LazyFrame | None = None
    loan_performance: pl.LazyFrame | None = None
    seen: pl.DataFrame | None = None
    defaulted_people: tuple[str, ...] = ()
    """People (ID-number tokens) already marked as defaulted, e.g. by servicing: a rebuild keeps them."""


def _links_from_lake(inputs: Inputs) -> tuple[list[pl.LazyFrame], pl.LazyFrame]:
    customers = inputs.customers.select(
        "customer_id",
        pl.col("id_number_token").alias("person"),
        "phone_token",
        pl.col("opened_date").alias("first_seen_date"),
    )
    links: list[pl.LazyFrame] = [
        customers.select(
            "person",
            pl.lit(EdgeKind.PHONE.value).alias("edge"),
            pl.lit(NodeKind.PHONE.value).alias("target_kind"),
            pl.col("phone_token").alias("target"),
            "first_seen_date",
        )
    ]
    owners = customers.select("customer_id", "person", "phone_token")
    if inputs.devices is not None:
        devices = inputs.devices.select("customer_id", "fingerprint", "ip_address", "first_seen_date").join(
            owners, on="customer_id", how="inner"
        )
        links.append(
            devices.select(
                "person",
                pl.lit(EdgeKind.DEVICE.value).alias("edge"),
                pl.lit(NodeKind.DEVICE.value).alias("target_kind"),
                pl.col("fingerprint").alias("target"),
                "first_seen_date",
            )
        )
        links.append(
            devices.filter(pl.col("ip_address").is_not_null()).select(
                "person",
                pl.lit(EdgeKind.IP.value).alias("edge"),
                pl.lit(NodeKind.IP.value).alias("target_kind"),
                pl.col("ip_address").alias("target"),
                pl.lit(None, dtype=pl.Date).alias("first_seen_date"),
            )
        )
    if inputs.contacts is not None:
        contacts = inputs.contacts.select("customer_id", "contact_phone_token").join(
            owners, on="customer_id", how="inner"
        )
        links.append(
            contacts.filter(pl.col("contact_phone_token") != pl.col("phone_token")).select(
                "person",
                pl.lit(EdgeKind.CONTACT.value).alias("edge"),
                pl.lit(NodeKind.PHONE.value).alias("target_kind"),
                pl.col("contact_phone_token").alias("target"),
                pl.lit(None, dtype=pl.Date).alias("first_seen_date"),
            )
        )
    persons = customers.select(
        pl.col("person").alias("key"),
        "customer_id",
        "first_seen_date",
        pl.lit(0, dtype=pl.Int8).alias("rank"),
    )
    return links, persons


def _links_from_seen(seen: pl.DataFrame) -> tuple[list[pl.LazyFrame], pl.LazyFrame]:
    s = seen.lazy().select(
        pl.col("id_number_token").alias("person"),
        "customer_id",
        "phone_token",
        "device_fingerprint",
        "ip_address",
        "address_token",
        "contact_tokens",
        pl.col("business_date").alias("first_seen_date"),
    )
    links: list[pl.LazyFrame] = []
    for edge, kind, column in (
        (EdgeKind.PHONE, NodeKind.PHONE, "phone_token"),
        (EdgeKind.DEVICE, NodeKind.DEVICE, "device_fingerprint"),
        (EdgeKind.IP, NodeKind.IP, "ip_address"),
        (EdgeKind.ADDRESS, NodeKind.ADDRESS, "address_token"),
    ):
        links.append(
            s.filter(pl.col(column).is_not_null()).select(
                "person",
                pl.lit(edge.value).alias("edge"),
                pl.lit(kind.value).alias("target_kind"),
                pl.col(column).alias("target"),
                "first_seen_date",
            )
        )
    contacts = (
        s.filter(pl.col("contact_tokens").is_not_null())
        .with_columns(
            pl.col("contact_tokens")
            .str.json_decode(pl.List(pl.List(pl.String)))
            .list.eval(pl.element().list.first())
            .alias("contact")
        )
        .explode("contact")
        .filter(pl.col("contact").is_not_null() & (pl.col("contact") != pl.col("phone_token")))
    )
    links.append(
        contacts.select(
            "person",
            pl.lit(EdgeKind.CONTACT.value).alias("edge"),
            pl.lit(NodeKind.PHONE.value).alias("target_kind"),
            pl.col("contact").alias("target"),
            "first_seen_date",
        )
    )
    persons = s.select(
        pl.col("person").alias("key"),
        "customer_id",
        "first_seen_date",
        pl.lit(1, dtype=pl.Int8).alias("rank"),
    )
    return links, persons


def _defaulted_customers(inputs: Inputs) -> pl.LazyFrame:
    parts: list[pl.LazyFrame] = []
    if inputs.loans is not None:
        parts.append(inputs.loans.filter(pl.col("status") == "written_off").select("customer_id"))
        if inputs.loan_performance is not None:
            bad_loans = inputs.loan_performance.filter(pl.col("dpd") >= 90).select("loan_id").unique()
            parts.append(
                inputs.loans.select("loan_id", "customer_id")
                .join(bad_loans, on="loan_id")
                .select("customer_id")
            )
    if not parts:
        return pl.LazyFrame(schema={"customer_id": pl.String})
    return pl.concat(parts).unique()


def graph_frames(inputs: Inputs) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Nodes and edges (both directions) of the graph the inputs describe.

    Node ids count from 1: people first (the extract's order, then applications'), then the
    attributes in the order first met, then listed values nobody uses. A person's customer id is the
    extract's, else the earliest application's that names one; ``first_seen_date`` is the
    earliest date any source gives (empty when none does); ``degree`` counts the node's links.
    """
    links, persons = _links_from_lake(inputs)
    person_parts = [persons]
    if inputs.seen is not None and not inputs.seen.is_empty():
        seen_links, seen_persons = _links_from_seen(inputs.seen)
        links += seen_links
        person_parts.append(seen_persons)
    link_frame = (
        pl.concat([lf.select(list(_LINK_SCHEMA)).cast(_LINK_SCHEMA) for lf in links])  # type: ignore[arg-type]
        .filter(pl.col("person").is_not_null() & pl.col("target").is_not_null())
        .collect(engine="streaming")
    )
    first_link = link_frame.group_by("target_kind", "target", maintain_order=True).agg(
        pl.col("first_seen_date").min()
    )
    unique_links = link_frame.select("person", "edge", "target_kind", "target").unique()

    person_rows = (
        pl.concat([p.cast(_PERSON_SCHEMA) for p in person_parts])  # type: ignore[arg-type]
        .collect()
        .with_row_index("order")
        .sort("rank", "order")
        .group_by("key", maintain_order=True)
        .agg(
            pl.col("customer_id").drop_nulls().first(),
            pl.col("first_seen_date").min(),
        )
        .select(pl.lit(NodeKind.PERSON.value).alias("kind"), "key", "customer_id", "first_seen_date")
    )
    attr_rows = first_link.select(
        pl.col("target_kind").alias("kind"),
        pl.col("target").alias("key"),
        pl.lit(None, dtype=pl.String).alias("customer_id"),
        "first_seen_date",
    )
    negative = (
        inputs.negative_list.select(
            pl.col("kind")
            .replace_strict(
                {
                    "id_number": NodeKind.PERSON.value,
                    "phone": NodeKind.PHONE.value,
                    "device": NodeKind.DEVICE.value,
                },
                default=None,
            )
            .alias("kind"),
            pl.col("value_token").alias("key"),
        )
        .drop_nulls()
        .unique()
        .collect()
        if inputs.negative_list is not None
        else pl.DataFrame(schema={"kind": pl.String, "key": pl.String})
    )
    listed_only = negative.join(
        pl.concat([person_rows.select("kind", "key"), attr_rows.select("kind", "key")]),
        on=["kind", "key"],
        how="anti",
    ).select(
        "kind",
        "key",
        pl.lit(None, dtype=pl.String).alias("customer_id"),
        pl.lit(None, dtype=pl.Date).alias("first_seen_date"),
    )
    nodes = (
        pl.concat([person_rows, attr_rows, listed_only])
        .with_row_index("id", offset=1)
        .with_columns(pl.col("id").cast(pl.Int64))
    )
    ids = nodes.select("id", "kind", "key")
    edges_one = (
        unique_links.join(
            ids.filter(pl.col("kind") == NodeKind.PERSON.value).select(
                pl.col("id").alias("src_id"), pl.col("key").alias("person")
            ),
            on="person",
        )
        .join(
            ids.select(
                pl.col("id").alias("dst_id"),
                pl.col("kind").alias("target_kind"),
                pl.col("key").alias("target"),
            ),
            on=["target_kind", "target"],
        )
        .select("src_id", "dst_id", pl.col("edge").alias("kind"))
    )
    # Links run from a person to an attribute, so a link and its reverse never coincide.
    edges = pl.concat(
        [
            edges_one,
            edges_one.select(pl.col("dst_id").alias("src_id"), pl.col("src_id").alias("dst_id"), "kind"),
        ]
    ).sort("src_id", "dst_id")
    degree = (
        edges.group_by("src_id")
        .len()
        .select(pl.col("src_id").alias("id"), pl.col("len").cast(pl.Int64).alias("degree"))
    )

    defaulted = _defaulted_customers(inputs).collect()
    declined = (
        inputs.seen.filter(pl.col("outcome") == "decline")
        .select(pl.col("id_number_token").alias("key"))
        .unique()
        if inputs.seen is not None and not inputs.seen.is_empty()
        else pl.DataFrame(schema={"key": pl.String})
    )
    nodes = (
        nodes.join(degree, on="id", how="left")
        .join(negative.with_columns(pl.lit(True).alias("negative")), on=["kind", "key"], how="left")
        .with_columns(
            pl.col("degree").fill_null(0),
            pl.col("negative").fill_null(False),
            (
                (pl.col("kind") == NodeKind.PERSON.value) & pl.col("key").is_in(declined["key"].implode())
            ).alias("declined"),
            (
                (pl.col("kind") == NodeKind.PERSON.value)
                & (
                    pl.col("customer_id").is_in(defaulted["customer_id"].implode()).fill_null(False)
                    | pl.col("key").is_in(pl.Series(inputs.defaulted_people, dtype=pl.String).implode())
                )
            ).alias("defaulted"),
        )
        .select(list(NODE_SCHEMA))
        .cast(NODE_SCHEMA)  # type: ignore[arg-type]
        .sort("id")
    )
    return nodes, edges.cast(EDGE_SCHEMA)  # type: ignore[arg-type]


# ------------------------------------------------------------------ analysis


def _components(n_nodes: int, edges: pl.DataFrame, index: np.ndarray) -> np.ndarray:
    """Component label per node position (edges given by node positions)."""
    # here, not at the top: SciPy takes half a second to import, and the online decision path
    # (and every command) imports this module without building a graph in bulk
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src = edges["src"].to_numpy()
    dst = edges["dst"].to_numpy()
    matrix = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n_nodes, n_nodes)).tocsr()
    _, labels = connected_components(matrix, directed=False)
    return labels[index] if len(index) else labels


def _positions(nodes: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    pos = nodes.select("id").with_row_index("p")
    return (
        edges.join(pos.rename({"id": "src_id", "p": "src"}), on="src_id")
        .join(pos.rename({"id": "dst_id", "p": "dst"}), on="dst_id")
        .select(pl.col("src").cast(pl.Int64), pl.col("dst").cast(pl.Int64), "kind")
    )


def group_labels(
    nodes: pl.DataFrame, edges: pl.DataFrame, settings: FactSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(component label of every node over all edges, group label over group edges without
    super-nodes), in node order."""
    n = nodes.height
    positioned = _positions(nodes, edges)
    everything = _components(n, positioned, np.arange(n))
    degree = nodes["degree"].to_numpy()
    ok = degree <= settings.degree_cap
    kinds = [k.value for k in GROUP_EDGES]
    grouped = positioned.filter(pl.col("kind").is_in(kinds))
    keep = (
        ok[grouped["src"].to_numpy()] & ok[grouped["dst"].to_numpy()] if grouped.height else np.zeros(0, bool)
    )
    groups = _components(n, grouped.filter(pl.Series(keep)) if grouped.height else grouped, np.arange(n))
    return everything, groups


def _largest(labels: np.ndarray, persons: np.ndarray) -> dict[str, int]:
    if len(labels) == 0:
        return {"count": 0, "largest_nodes": 0, "largest_people": 0, "single_people": 0}
    sizes = np.bincount(labels)
    people = np.bincount(labels, weights=persons.astype(np.int64)).astype(np.int64)
    biggest = int(np.argmax(sizes))
    return {
        "count": int(len(sizes)),
        "largest_nodes": int(sizes[biggest]),
        "largest_people": int(people.max()),
        "single_people": int(np.sum(people == 1)),
    }


def summarise(nodes: pl.DataFrame, edges: pl.DataFrame, settings: FactSettings) -> dict[str, Any]:
    """Nodes and edges by kind, components of the whole graph and groups (shared attributes)."""
    everything, groups = group_labels(nodes, edges, settings)
    persons = (nodes["kind"] == NodeKind.PERSON.value).to_numpy()
    group_people = (
        np.bincount(groups, weights=persons.astype(np.int64)).astype(np.int64)
        if len(groups)
        else np.zeros(0, np.int64)
    )
    person_groups = group_people[groups[persons]] if persons.any() else np.zeros(0, np.int64)
    return {
        "nodes": int(nodes.height),
        "edges": int(edges.height // 2),
        "nodes_by_kind": {k: int(v) for k, v in nodes.group_by("kind").len().sort("kind").iter_rows()},
        "edges_by_kind": {k: int(v) // 2 for k, v in edges.group_by("kind").len().sort("kind").iter_rows()},
        "negative_nodes": int(nodes["negative"].sum()),
        "defaulted_people": int(nodes["defaulted"].sum()),
        "declined_people": int(nodes["declined"].sum()),
        "super_nodes": int((nodes["degree"] > settings.degree_cap).sum()),
        "max_degree": int(nodes["degree"].max() or 0),
        "components": _largest(everything, persons),
        "groups": {
            **_largest(groups, persons),
            "people_in_groups_of_3_or_more": int(np.sum(person_groups >= 3)),
        },
    }


def reach(nodes: pl.DataFrame, edges: pl.DataFrame, settings: FactSettings) -> pl.DataFrame:
    """For every person: hops to the nearest negative-list node (NULL beyond ``max_hops``), and
    the size of its group — under the online search's rules (a node with more than
    ``degree_cap`` links is never passed through), for all people at once.

    A multi-source breadth-first search from the negative-list nodes, one join per hop.
    """
    frontier = nodes.filter(pl.col("negative")).select("id")
    dist = frontier.with_columns(pl.lit(0, dtype=pl.Int32).alias("hops"))
    passable = nodes.filter(pl.col("degree") <= settings.degree_cap).select("id")
    slim = edges.select("src_id", "dst_id")
    for hop in range(1, settings.max_hops + 1):
        if frontier.is_empty():
            break
        expand = frontier if hop == 1 else frontier.join(passable, on="id", how="semi")
        reached = (
            slim.join(expand.rename({"id": "src_id"}), on="src_id", how="semi")
            .select(pl.col("dst_id").alias("id"))
            .unique()
            .join(dist, on="id", how="anti")
        )
        dist = pl.concat([dist, reached.with_columns(pl.lit(hop, dtype=pl.Int32).alias("hops"))])
        frontier = reached
    _, groups = group_labels(nodes, edges, settings)
    persons = (nodes["kind"] == NodeKind.PERSON.value).to_numpy()
    people = np.bincount(groups, weights=persons.astype(np.int64)).astype(np.int64)
    return (
        nodes.select("id", "kind", "key", "customer_id", "negative")
        .with_columns(
            pl.Series("group", groups, dtype=pl.Int64),
            pl.Series("group_size", people[groups], dtype=pl.Int64),
        )
        .filter(pl.col("kind") == NodeKind.PERSON.value)
        .join(dist, on="id", how="left")
        .select("id", "key", "customer_id", pl.col("hops").alias("hops_to_negative"), "group", "group_size")
    )


def measure(reach_frame: pl.DataFrame, labels: pl.DataFrame, *, max_hops: int) -> dict[str, Any]:
    """Compare labelled customers (``labels``: ``customer_id``, ``label``, e.g. a fraud ring's
    id; optional ``stratum``) with the other customers of ``reach_frame``:

    * ``within_hops[N]``: share within N hops of the negative list;
    * ``grouped_with_label``: share in a group with another customer of the same label (for the
      unlabelled: with any labelled customer);
    * ``group_3_or_more``: share in a group of three people or more;
    * ``flagged``: share within 2 hops of the negative list or grouped with their label.
    """
    people = reach_frame.filter(pl.col("customer_id").is_not_null())
    cols = ["customer_id", "label"] + (["stratum"] if "stratum" in labels.columns else [])
    frame = people.join(labels.select(cols), on="customer_id", how="left")
    labelled_groups = frame.filter(pl.col("label").is_not_null()).group_by("group", "label").len()
    frame = (
        frame.join(labelled_groups.rename({"len": "same_label"}), on=["group", "label"], how="left")
        .join(
            frame.filter(pl.col("label").is_not_null()).group_by("group").len().rename({"len": "any_label"}),
            on="group",
            how="left",
        )
        .with_columns(
            pl.when(pl.col("label").is_not_null())
            .then(pl.col("same_label").fill_null(0) >= 2)
            .otherwise(pl.col("any_label").fill_null(0) >= 1)
            .alias("grouped")
        )
    )

    def stats(part: pl.DataFrame) -> dict[str, Any]:
        n = part.height
        if n == 0:
            return {"people": 0}
        hops = part["hops_to_negative"]
        within = {str(h): round(float((hops <= h).sum()) / n, 4) for h in range(0, max_hops + 1)}
        flagged = ((hops <= 2).fill_null(False) | part["grouped"]).sum()
        return {
            "people": n,
            "within_hops": within,
            "grouped_with_label": round(float(part["grouped"].sum()) / n, 4),
            "group_3_or_more": round(float((part["group_size"] >= 3).sum()) / n, 4),
            "median_group_size": float(part["group_size"].median() or 0),
            "flagged": round(float(flagged) / n, 4),
        }

    members = frame.filter(pl.col("label").is_not_null())
    out: dict[str, Any] = {
        "labelled": stats(members),
        "unlabelled": stats(frame.filter(pl.col("label").is_null())),
    }
    if "stratum" in frame.columns:
        out["by_stratum"] = {
            str(s): stats(members.filter(pl.col("stratum") == s))
            for s in sorted(members["stratum"].drop_nulls().unique().to_list())
        }
    return out


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, sort_keys=True)
