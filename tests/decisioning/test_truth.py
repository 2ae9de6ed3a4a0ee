"""A small sandbox bank with planted fraud rings, ingested and its graph built in bulk: the
online search agrees with the bulk reach for every customer, and ring members sit closer to the
negative list and in bigger groups than everyone else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from creditfactory import contract, decisioning
from creditfactory.bootstrap import Container
from creditfactory.cli.graph_truth import measure_rings, ring_labels
from creditfactory.contract import IngestSettings, ingest_directory

CUSTOMERS = 800


@pytest.fixture(scope="session")
def sandbox_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from creditfactory.sandbox import SandboxConfig, generate

    root = tmp_path_factory.mktemp("rings") / "bank"
    generate(
        SandboxConfig(customers=CUSTOMERS, seed=11, chunk_size=400, ring_share=0.04, months=6),
        root,
        workers=1,
    )
    return root


@pytest.fixture
def ingested(container: Container, sandbox_bank: Path) -> Iterator[Container]:
    result = ingest_directory(
        directory=sandbox_bank,
        uow_factory=container.sessions,
        clock=container.clock,
        vault=container.vault,
        settings=IngestSettings(lake=container.lake_dir, reject_root=container.reject_dir),
    )
    assert result.rejected == 0
    with container.uow() as uow:
        decisioning.build_graph(uow, lake=container.lake_dir, clock=container.clock)
        uow.commit()
    yield container


def test_online_search_agrees_with_bulk_reach_and_rings_stand_out(
    ingested: Container, sandbox_bank: Path
) -> None:
    settings = decisioning.FactSettings()
    with ingested.uow() as uow:
        bulk = decisioning.graph_reach(uow, settings=settings)
    customers = (
        contract.scan(ingested.lake_dir, "customers")
        .select("customer_id", "id_number_token", "phone_token")
        .collect()
    )
    expected = {
        r["customer_id"]: r for r in bulk.filter(pl.col("customer_id").is_not_null()).iter_rows(named=True)
    }
    assert len(expected) == CUSTOMERS
    at = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)
    with ingested.uow() as uow:
        for cid, id_token, phone in customers.iter_rows():
            app = decisioning.Applicant(
                id_number_token=id_token,
                phone_token=phone,
                customer_id=cid,
                applied_at=at,
                business_date=date(2025, 7, 1),
            )
            values = decisioning.gather(uow, applicant=app, portrait_row=None, settings=settings).values
            assert values["graph_hops_to_negative"] == expected[cid]["hops_to_negative"], cid
            assert values["graph_component_size"] == min(expected[cid]["group_size"], settings.group_cap), cid

    labels = ring_labels(sandbox_bank)
    members = labels.filter(pl.col("label").is_not_null())
    assert members.height >= 20
    measures = measure_rings(ingested, sandbox=sandbox_bank, settings=settings)
    ring, others = measures["labelled"], measures["unlabelled"]
    assert ring["people"] == members.height
    assert ring["people"] + others["people"] == CUSTOMERS
    # Rings log in from shared phones behind shared IPs: every member shares a group with its ring.
    assert ring["grouped_with_label"] == 1.0
    assert others["group_3_or_more"] < 0.01
    # Exposed rings have their devices and organiser on the list: their members are one hop away.
    assert measures["by_stratum"]["exposed"]["within_hops"]["1"] == 1.0
    assert ring["within_hops"]["2"] > 3 * others["within_hops"]["2"]
