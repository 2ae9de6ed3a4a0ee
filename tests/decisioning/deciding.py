"""A bank ready to decide: the factory extract ingested, a portrait at 2025-06-30, the graph,
one approved scorecard, and the example decision strategy published as champion.

The scorecard reads ``current_dpd`` and ``age``; it is trained on a synthetic sample where being
past due makes a customer bad half the time (3% otherwise), so that the factory bank's C0004 (12
days past due) scores far below the others. The strategy is the shipped example
(``strategy/examples/decision.yaml``) with every segment scored by that scorecard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from creditfactory import decisioning, modeling, portrait, strategy
from creditfactory.bootstrap import Container

AS_OF = date(2025, 6, 30)
MODEL = "tiny_scorecard"


def example_text(*, model: str = MODEL) -> str:
    text = strategy.example_path("decision.yaml").read_text(encoding="utf-8")
    for name in ("farmer_scorecard", "merchant_scorecard", "salaried_scorecard", "general_scorecard"):
        text = text.replace(name, model)
    return text


def write_strategy(path: Path, text: str | None = None, **replace: str) -> Path:
    text = text if text is not None else example_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sample(n: int = 1_500, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    overdue = rng.random(n) < 0.2
    dpd = np.where(overdue, rng.integers(1, 60, n), 0)
    age = rng.integers(20, 66, n)
    bad = rng.random(n) < np.where(overdue, 0.5, 0.03)
    return pl.DataFrame({"current_dpd": dpd, "age": age, "bad": bad.astype(int)})


def train(container: Container, *, name: str = MODEL) -> None:
    with container.uow() as uow:
        modeling.train_and_register(
            uow,
            models_dir=container.models_dir,
            name=name,
            kind="scorecard",
            segment=None,
            dev=sample(),
            oot=None,
            target="bad",
            features=["current_dpd", "age"],
            trained_by="S100",
            seed=1,
            clock=container.clock,
            params={"base_score": 700.0, "base_odds": 30.0, "pdo": 40.0},
        )
        uow.commit()
    with container.uow() as uow:
        modeling.approve_version(
            uow,
            models_dir=container.models_dir,
            name=name,
            version=1,
            approved_by="S200",
            clock=container.clock,
        )
        uow.commit()


@dataclass(frozen=True)
class Trained:
    """A scorecard trained and approved once (per test session), to be installed in each test's
    database: its artefacts directory and its registry row."""

    models_dir: Path
    row: dict[str, Any]


def train_once(root: Path) -> Trained:
    from creditfactory import bootstrap
    from creditfactory.clock import FixedClock
    from creditfactory.config import Settings
    from creditfactory.modeling.store import ModelVersion
    from tests.conftest import START

    c = bootstrap.build(
        Settings(data_dir=root / "var", database_url=f"sqlite:///{(root / 'models.db').as_posix()}"),
        clock=FixedClock(START),
    )
    try:
        train(c)
        with c.uow() as uow:
            mv = uow.session.query(ModelVersion).filter_by(name=MODEL, version=1).one()
            row = {
                col.name: getattr(mv, col.key) for col in ModelVersion.__table__.columns if col.name != "id"
            }
    finally:
        c.close()
    return Trained(root / "var" / "models", row)


def install(container: Container, trained: Trained) -> None:
    """Put the trained scorecard into this container's models directory and registry."""
    import shutil

    from creditfactory.modeling.store import ModelVersion

    target = container.models_dir / trained.row["artefact_path"]
    shutil.copytree(trained.models_dir / trained.row["artefact_path"], target)
    with container.uow() as uow:
        uow.session.add(ModelVersion(**trained.row))
        uow.commit()


@dataclass
class Ready:
    container: Container
    champion: decisioning.PublishedStrategy

    def decisions(self, application_id: int) -> list[decisioning.DecisionView]:
        with self.container.uow() as uow:
            return decisioning.decisions_of_application(uow, application_id=application_id)

    def publish(self, path: Path, **options: Any) -> decisioning.PublishedStrategy:
        with self.container.uow() as uow:
            published = decisioning.publish_strategy(
                uow,
                path=path,
                clock=self.container.clock,
                actor="S100",
                lake=self.container.lake_dir,
                models_dir=self.container.models_dir,
                **options,
            )
            uow.commit()
        return published


def make_ready(container: Container, tmp_path: Path, trained: Trained | None = None) -> Ready:
    """The bank (already ingested by the ``bank`` fixture) made ready to decide."""
    portrait.build(container.lake_dir, as_of=AS_OF)
    with container.uow() as uow:
        decisioning.build_graph(uow, lake=container.lake_dir, clock=container.clock)
        uow.commit()
    if trained is None:
        train(container)
    else:
        install(container, trained)
    path = write_strategy(tmp_path / "strategies" / "champion.yaml")
    with container.uow() as uow:
        champion = decisioning.publish_strategy(
            uow,
            path=path,
            clock=container.clock,
            actor="S100",
            lake=container.lake_dir,
            models_dir=container.models_dir,
        )
        uow.commit()
    return Ready(container, champion)
