"""Mining end to end on a small sandbox bank: portrait, a registered scorecard, the strategy,
the published version; re-runs, refusals, a run that dies half way, back-tests, engine parity."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select

from creditfactory import bootstrap, modeling, portrait, strategy, whitelist
from creditfactory.bootstrap import Container
from creditfactory.clock import FixedClock
from creditfactory.config import Settings
from creditfactory.contract import IngestSettings, service
from creditfactory.errors import DomainError
from creditfactory.sandbox import SandboxConfig, generate
from creditfactory.whitelist import mining
from creditfactory.whitelist import service as wl
from creditfactory.whitelist.store import WhitelistEntry, WhitelistVersion
from tests.conftest import START

STRATEGY = Path(__file__).with_name("data") / "small_mining.yaml"
AS_OF = date(2025, 6, 30)
TRAIN = date(2024, 6, 30)
ON = date(2025, 7, 1)
FEATURES = [
    "bureau_card_utilisation",
    "months_since_delinquency",
    "bureau_inquiries_12m",
    "inflow_cv_12m",
    "balance_avg_12m",
    "segment",
]


@dataclass
class Bank:
    root: Path
    sandbox: Path

    def container(self, name: str = "db") -> Container:
        settings = Settings(
            data_dir=self.root / "var", database_url=f"sqlite:///{(self.root / name).as_posix()}.db"
        )
        return bootstrap.build(settings, clock=FixedClock(START))


def _train(c: Container, *, name: str, kind: str) -> None:
    dev = modeling.portrait_sample(c.lake_dir, as_of=TRAIN, segment=None, target="dpd30_12m")
    with c.uow() as uow:
        modeling.train_and_register(
            uow,
            models_dir=c.models_dir,
            name=name,
            kind=kind,
            segment=None,
            dev=dev,
            oot=None,
            target="dpd30_12m",
            features=FEATURES,
            trained_by="S100",
            seed=7,
            clock=c.clock,
            categorical=["segment"] if kind == "lightgbm" else (),
            params={"n_estimators": 60, "early_stopping_rounds": 10} if kind == "lightgbm" else None,
        )
        uow.commit()


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bank]:
    """A 3,000-customer sandbox, ingested, with portraits at two dates and one approved scorecard."""
    root = tmp_path_factory.mktemp("mining")
    made = generate(SandboxConfig(customers=3_000, seed=11, chunk_size=3_000), root / "sandbox", workers=1)
    b = Bank(root=root, sandbox=made.out_dir)
    c = b.container()
    try:
        service.ingest_directory(
            directory=made.out_dir,
            uow_factory=c.sessions,
            clock=c.clock,
            vault=c.vault,
            settings=IngestSettings(lake=c.lake_dir, reject_root=c.reject_dir),
        )
        for at in (TRAIN, AS_OF):
            portrait.build(c.lake_dir, as_of=at)
        portrait.build_targets(c.lake_dir, as_of=TRAIN)
        _train(c, name="all_scorecard", kind="scorecard")
        with c.uow() as uow:
            modeling.approve_version(
                uow,
                models_dir=c.models_dir,
                name="all_scorecard",
                version=1,
                approved_by="S200",
                clock=c.clock,
            )
            uow.commit()
    finally:
        c.close()
    yield b


@pytest.fixture
def c(bank: Bank, tmp_path: Path) -> Iterator[Container]:
    """A fresh database per test (the lake and the models are shared: mining only reads them)."""
    container = bank.container()
    template = Path(str(container.engine.url.database))
    container.close()
    shutil.copyfile(template, tmp_path / "db.db")
    built = bootstrap.build(
        Settings(data_dir=bank.root / "var", database_url=f"sqlite:///{(tmp_path / 'db').as_posix()}.db"),
        clock=FixedClock(START),
    )
    # versions made by earlier tests live in the shared lake: clear them for this database
    shutil.rmtree(built.lake_dir / "whitelist", ignore_errors=True)
    yield built
    built.close()


def mine(c: Container, path: Path = STRATEGY, **kw: object) -> mining.MineResult:
    return mining.mine(
        c.uow,
        lake=c.lake_dir,
        models_dir=c.models_dir,
        strategy_path=path,
        as_of=AS_OF,
        business_date=ON,
        created_by="S300",
        now=c.clock.now(),
        **kw,  # type: ignore[arg-type]
    )


class TestMine:
    def test_every_customer_is_scored_and_the_eligible_become_offers(self, c: Container) -> None:
        result = mine(c)
        rows = portrait.read(c.lake_dir, as_of=AS_OF).select(pl.len()).collect().item()
        assert result.scored == rows and not result.unchanged
        lines = whitelist.read_lines(c.lake_dir, result.version_id).collect()
        eligible = lines.filter(pl.col("outcome") == "eligible")
        assert result.eligible == eligible.height > 0
        assert result.excluded == lines.height - eligible.height > 0
        # every excluded line says why; every eligible one has a grade, a limit and a price
        assert lines.filter(pl.col("outcome") == "excluded")["reason"].null_count() == 0
        assert eligible.select(
            pl.col("grade", "limit_fen", "annual_rate_e8", "expiry_date").null_count()
        ).row(0) == (0, 0, 0, 0)
        assert eligible["limit_fen"].min() >= 300_000 and eligible["limit_fen"].max() <= 20_000_000
        assert (eligible["limit_fen"] % 100_000 == 0).all()
        assert set(eligible["annual_rate_e8"].unique()) <= {4_350_000, 5_600_000, 7_200_000}
        assert eligible["expiry_date"].unique().to_list() == [date(2025, 9, 28)]
        with c.uow() as uow:
            n = uow.session.scalar(select(func.count()).select_from(WhitelistEntry))
            first = eligible.sort("customer_id").row(0, named=True)
            offer = wl.current_offer(uow, customer_id=first["customer_id"], on=ON)
        assert n == eligible.height
        assert offer.limit * 100 == first["limit_fen"] and offer.grade == first["grade"]

    def test_reasons_are_the_strategys_codes_and_flags_travel_with_the_offer(self, c: Container) -> None:
        result = mine(c)
        lines = whitelist.read_lines(c.lake_dir, result.version_id).collect()
        codes = {
            r.reason.code
            for r in strategy.compile(
                strategy.load(STRATEGY), mining.mining_schema(c.lake_dir, as_of=AS_OF)
            ).rules
        }
        assert set(lines["reason"].drop_nulls().unique()) <= codes
        flagged = lines.filter((pl.col("outcome") == "eligible") & (pl.col("hit_mask") != 0))
        if flagged.height:
            with c.uow() as uow:
                entry = uow.session.get(WhitelistEntry, (result.version_id, flagged["customer_id"][0]))
                assert entry is not None and entry.reasons == "F_NO_BUREAU"

    def test_mining_again_finds_the_same_version_and_changes_nothing(self, c: Container) -> None:
        first = mine(c)
        again = mine(c)
        assert again.unchanged and again.version_id == first.version_id
        with c.uow() as uow:
            assert uow.session.scalar(select(func.count()).select_from(WhitelistVersion)) == 1

    def test_a_run_that_dies_half_way_leaves_nothing_visible_and_the_rerun_makes_the_same_version(
        self, c: Container
    ) -> None:
        with pytest.raises(DomainError, match="before publication"):
            mine(c, crash_after_lines=True)
        with c.uow() as uow:
            (version,) = wl.list_versions(uow)
            assert version.status is whitelist.VersionStatus.BUILDING
            assert uow.session.scalar(select(func.count()).select_from(WhitelistEntry)) == 0
            vid = version.id
        result = mine(c)
        assert result.version_id == vid and not result.unchanged
        with c.uow() as uow:
            assert wl.get_version(uow, version_id=vid).status is whitelist.VersionStatus.PUBLISHED

    def test_a_decline_since_the_last_run_is_a_new_input_and_excludes_the_customer(
        self, c: Container
    ) -> None:
        first = mine(c)
        lines = whitelist.read_lines(c.lake_dir, first.version_id).collect()
        someone = lines.filter(pl.col("outcome") == "eligible")["customer_id"][0]
        with c.uow() as uow:
            wl.record_event(uow, customer_id=someone, event=whitelist.EntryEvent.DECLINE, on=ON)
            uow.commit()
        second = mine(c)
        assert second.version_id != first.version_id
        again = whitelist.read_lines(c.lake_dir, second.version_id).collect()
        assert again.filter(pl.col("customer_id") == someone)["reason"].to_list() == ["X_RECENT_DECLINE"]
        with c.uow() as uow:
            diff = wl.diff_versions(uow, lake=c.lake_dir, old_id=first.version_id, new_id=second.version_id)
        assert diff.removed.filter(pl.col("customer_id") == someone)["why"].to_list() == [
            "now excluded: X_RECENT_DECLINE"
        ]


class TestRefusals:
    def test_a_strategy_with_errors_never_runs(self, c: Container, tmp_path: Path) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text(STRATEGY.read_text().replace("age NOT BETWEEN 18 AND 65", "agee > 1"))
        with pytest.raises(strategy.StrategyError, match="agee"):
            mine(c, bad)
        with c.uow() as uow:
            assert wl.list_versions(uow) == []

    def test_a_model_that_is_not_approved_cannot_be_used(
        self, c: Container, bank: Bank, tmp_path: Path
    ) -> None:
        _train(c, name="draft_scorecard", kind="scorecard")
        path = tmp_path / "draft.yaml"
        path.write_text(STRATEGY.read_text().replace("all_scorecard", "draft_scorecard"))
        with pytest.raises(modeling.ModelNotApproved):
            mine(c, path)
        with c.uow() as uow:
            assert wl.list_versions(uow) == []
        shutil.rmtree(c.models_dir / "draft_scorecard")

    def test_an_as_of_date_without_a_portrait_is_a_clear_error(self, c: Container) -> None:
        with pytest.raises(portrait.PortraitNotFound, match="2025-03-31"):
            mining.mine(
                c.uow,
                lake=c.lake_dir,
                models_dir=c.models_dir,
                strategy_path=STRATEGY,
                as_of=date(2025, 3, 31),
                business_date=ON,
                created_by="S300",
                now=c.clock.now(),
            )


class TestBacktest:
    def test_volume_limits_and_realised_bad_rate_by_grade_beside_the_champion(
        self, c: Container, tmp_path: Path
    ) -> None:
        strict = tmp_path / "strict.yaml"
        strict.write_text(
            STRATEGY.read_text().replace(
                "farmer: 540, merchant: 540, salaried: 540, other: 540",
                "farmer: 600, merchant: 600, salaried: 600, other: 600",
            )
        )
        result = mining.backtest(
            c.uow().__enter__(),
            lake=c.lake_dir,
            models_dir=c.models_dir,
            strategy_path=strict,
            as_of=TRAIN,
            champion_path=STRATEGY,
        )
        cand, champ = result.totals["candidate"], result.totals["champion"]
        assert cand["scored"] == champ["scored"] == result.population
        assert 0 < cand["eligible"] < champ["eligible"]
        assert {r.grade for r in result.rows if r.strategy == "candidate"} <= {"A", "B"}
        assert sum(r.eligible for r in result.rows if r.strategy == "champion") == champ["eligible"]
        assert result.population_bad_rate is not None and 0 < result.population_bad_rate < 0.2


class TestLightGBM:
    def test_a_tree_model_is_scored_batch_by_batch(self, c: Container, tmp_path: Path) -> None:
        _train(c, name="gbm", kind="lightgbm")
        with c.uow() as uow:
            modeling.approve_version(
                uow, models_dir=c.models_dir, name="gbm", version=1, approved_by="S200", clock=c.clock
            )
            uow.commit()
        path = tmp_path / "gbm.yaml"
        path.write_text(STRATEGY.read_text().replace("all_scorecard", "gbm"))
        result = mine(c, path)
        lines = whitelist.read_lines(c.lake_dir, result.version_id).collect()
        assert lines["score"].null_count() == 0 and result.eligible > 0
        shutil.rmtree(c.models_dir / "gbm")


@pytest.mark.spark
@pytest.mark.slow
class TestSparkParity:
    def test_spark_and_polars_give_the_same_lines(self, c: Container, tmp_path: Path) -> None:
        spark_engine = pytest.importorskip("creditfactory.engines.spark")
        try:
            session = spark_engine.session()
        except spark_engine.SparkUnavailable as exc:
            pytest.skip(str(exc))
        with c.uow() as uow:
            prepared = mining.prepare(
                uow,
                lake=c.lake_dir,
                models_dir=c.models_dir,
                strategy_path=STRATEGY,
                as_of=AS_OF,
                business_date=ON,
            )
        local = mining._run_engine(
            "local",
            lake=c.lake_dir,
            prepared=prepared,
            as_of=AS_OF,
            out=tmp_path / "l",
            spark=None,
            progress=None,
        )
        spark = mining._run_engine(
            "spark",
            lake=c.lake_dir,
            prepared=prepared,
            as_of=AS_OF,
            out=tmp_path / "s",
            spark=session,
            progress=None,
        )
        a = pl.read_parquet(local.parts).sort("customer_id")
        b = pl.read_parquet(spark.parts).sort("customer_id")
        assert a.schema == b.schema and a.height == b.height
        assert a.drop("pd").equals(b.drop("pd"))
        assert ((a["pd"] - b["pd"]).abs() < 1e-12).all()


class TestCommands:
    """``creditfactory whitelist mine / show / diff / export / import / offer / backtest``."""

    def cli(self, c: Container, *args: str) -> tuple[int, str]:
        from tests.cli.test_cli import run

        return run("--data-dir", str(c.data_dir), "--database-url", c.settings.resolved_database_url, *args)

    def test_mine_show_offer_export_import_and_backtest(self, c: Container, tmp_path: Path) -> None:
        from tests.cli.test_cli import last_json

        code, out = self.cli(
            c,
            "whitelist",
            "mine",
            "--strategy",
            str(STRATEGY),
            "--as-of",
            "2025-06-30",
            "--date",
            "2025-07-01",
            "--json",
        )
        assert code == 0, out
        mined = last_json(out)
        assert mined["scored"] == mined["eligible"] + mined["excluded"] and mined["eligible"] > 0
        assert "Pre-approved by grade" in out and "Excluded, by the first rule" in " ".join(out.split())
        vid = mined["version_id"]
        code, again = self.cli(
            c,
            "whitelist",
            "mine",
            "--strategy",
            str(STRATEGY),
            "--as-of",
            "2025-06-30",
            "--date",
            "2025-07-01",
            "--json",
        )
        assert (
            code == 0
            and last_json(again)["unchanged"] is True
            and "nothing changed" in " ".join(again.split())
        )

        code, out = self.cli(c, "whitelist", "show", str(vid), "--json")
        assert code == 0 and last_json(out)["entry_status"] == {"offered": mined["eligible"]}

        lines = whitelist.read_lines(c.lake_dir, vid).collect()
        someone = lines.filter(pl.col("outcome") == "eligible").sort("customer_id")["customer_id"][0]
        code, out = self.cli(
            c, "eod", "open", "--date", "2025-07-01"
        )  # offers are judged on the business date
        assert code == 0, out
        code, out = self.cli(c, "whitelist", "offer", someone, "--json")
        assert code == 0 and last_json(out)["version_id"] == vid

        book = tmp_path / "out.xlsx"
        code, out = self.cli(
            c,
            "whitelist",
            "export",
            "--version",
            str(vid),
            "--out",
            str(book),
            "--role",
            "risk_analyst",
            "--role",
            "approver",
            "--json",
        )
        assert code == 0 and last_json(out)["rows"] == mined["eligible"]
        code, out = self.cli(
            c,
            "whitelist",
            "import",
            str(book),
            "--name",
            "reissue",
            "--max-limit",
            "200000",
            "--date",
            "2025-07-01",
            "--json",
        )
        assert code == 0, out
        imported = last_json(out)
        assert (imported["accepted"], imported["rejected"]) == (mined["eligible"], 0)
        code, out = self.cli(
            c,
            "whitelist",
            "import",
            str(book),
            "--name",
            "reissue",
            "--max-limit",
            "200000",
            "--date",
            "2025-07-01",
            "--json",
        )
        assert last_json(out)["unchanged"] is True

        code, out = self.cli(c, "whitelist", "diff", str(vid), str(imported["version_id"]), "--json")
        assert code == 0
        d = last_json(out)
        assert (d["added"], d["removed"]) == (0, 0)  # the same customers, re-issued

        code, out = self.cli(
            c, "whitelist", "backtest", "--strategy", str(STRATEGY), "--as-of", "2024-06-30", "--json"
        )
        assert code == 0, out
        bt = last_json(out)
        assert set(bt["strategies"]) == {"candidate", "champion"}  # the champion: v1's strategy
        assert "Back-test by strategy" in out

    def test_a_strategy_with_errors_is_refused_with_the_rule_named(
        self, c: Container, tmp_path: Path
    ) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text(STRATEGY.read_text().replace("current_dpd > 0", "current_dpdd > 0"))
        code, out = self.cli(c, "whitelist", "mine", "--strategy", str(bad), "--as-of", "2025-06-30")
        assert code != 0 and "current_dpdd" in out
        code, out = self.cli(c, "strategy", "check", str(bad), "--as-of", "2025-06-30")
        assert code == 1 and "current_overdue" in out


class TestSparkScoreColumns:
    """Segments sharing a model share one expression in the Spark SQL (no Spark needed)."""

    def test_one_branch_per_model(self) -> None:
        from creditfactory.engines import Scoring
        from creditfactory.engines.spark import score_columns

        def card(segment: str, ref: str, points: str) -> Scoring:
            return Scoring(
                segment=segment, ref=ref, features=("age",), score_sql=points, pd_sql="score / 1000D"
            )

        pairs = score_columns(
            [
                card("farmer", "a@1", "`age` * 2D"),
                card("other", "a@1", "`age` * 2D"),
                card("merchant", "b@1", "7D"),
            ]
        )
        assert pairs is not None
        score = dict(pairs)["score"]
        assert score.count("`age` * 2D") == 1
        assert "`segment` IN ('farmer', 'other') THEN" in score and "`segment` = 'merchant' THEN" in score
        predict_only = Scoring(segment="x", ref="gbm@1", features=("age",), predict=lambda f: (f, f))
        assert score_columns([predict_only]) is None
