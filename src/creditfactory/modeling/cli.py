"""Commands of the model studio: ``creditfactory model train | list | show | report | approve |
retire | compare``.

Model versions live in ``DATA_DIR/models/<name>/v<version>/``; the registry is the database.
Who trains, approves or retires is given with ``--by STAFF_ID`` (default: the environment
variable ``CREDITFACTORY_STAFF_ID``, else the operating-system user).
"""

from __future__ import annotations

import getpass
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from creditfactory.bootstrap import Container
from creditfactory.cli.context import emit_json, fail, state
from creditfactory.errors import DomainError
from creditfactory.modeling.errors import DataFileError, ModelNotFound, TrainingDataError

# The model code (scikit-learn, LightGBM, optbinning) is imported inside the commands, so that
# starting the CLI for anything else stays quick.

app = typer.Typer(
    help="Model studio: train, validate, register and approve risk models.", no_args_is_help=True
)

STAFF_ENV = "CREDITFACTORY_STAFF_ID"


def _default_staff() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


By = Annotated[
    str | None,
    typer.Option(
        "--by",
        envvar=STAFF_ENV,
        help=f"Staff id of who does this (default: ${STAFF_ENV}, else the OS user).",
        show_default=False,
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="End with one JSON line.")]


def _models_dir(c: Container) -> Path:
    return c.data_dir / "models"


@contextmanager
def _errors(ctx: typer.Context) -> Iterator[None]:
    try:
        yield
    except DomainError as exc:
        raise fail(state(ctx).err, exc) from None


def _default_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._-") or "model"
    return stem[:64]


def _monotone(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, sign = item.rpartition("=")
        if not sep or sign.strip() not in ("1", "+1", "-1"):
            raise TrainingDataError(
                f"--monotone {item!r}: write COLUMN=1 (risk rises) or COLUMN=-1 (risk falls)"
            )
        out[name.strip()] = int(sign)
    return out


TRENDS = ("ascending", "descending", "peak", "valley", "auto", "auto_asc_desc", "convex", "concave")


def _pairs(items: list[str], option: str, what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise TrainingDataError(f"{option} {item!r}: write COLUMN={what}")
        out.append((name.strip(), value.strip()))
    return out


def _trends(items: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, value in _pairs(items, "--trend", "ascending"):
        if value not in (*TRENDS, "none"):
            raise TrainingDataError(f"--trend {name}={value}: use one of {', '.join(TRENDS)} or none")
        out[name] = None if value == "none" else value
    return out


def _specials(items: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name, value in _pairs(items, "--special", "-1,96,98"):
        try:
            out[name] = [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise TrainingDataError(
                f"--special {name}={value}: codes must be numbers separated by commas"
            ) from None
    return out


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise TrainingDataError(f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None


def _f(v: Any, places: int = 4) -> str:
    return "–" if v is None else f"{float(v):.{places}f}"


@app.command("train")
def train(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Option("--target", help="Column holding the outcome (bad_12m, dpd30_12m …).")
    ],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="CSV or Parquet table, one row per case (instead of the portrait)."),
    ] = None,
    train_as_of: Annotated[
        str | None,
        typer.Option(
            "--train-as-of", help="Train on the customer portrait at this as-of date (with --segment)."
        ),
    ] = None,
    oot_as_of: Annotated[
        str | None,
        typer.Option("--oot-as-of", help="Validate out of time on the portrait at this later as-of date."),
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="scorecard or lightgbm.")] = "scorecard",
    oot: Annotated[
        Path | None,
        typer.Option("--oot", help="An out-of-time sample (same columns), validated beside the test split."),
    ] = None,
    test_size: Annotated[
        float, typer.Option("--test-size", help="Share held out for the test sample.")
    ] = 0.3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stratified split (and of LightGBM).")] = 42,
    name: Annotated[str | None, typer.Option("--name", help="Model name (default: the file's name).")] = None,
    segment: Annotated[
        str | None, typer.Option("--segment", help="Customer segment the model serves.")
    ] = None,
    bad_value: Annotated[
        str | None,
        typer.Option("--bad-value", help="Target value meaning bad (default: 1 of 0/1, 2 of 1/2, 'bad')."),
    ] = None,
    drop: Annotated[list[str] | None, typer.Option("--drop", help="Column not to use (repeatable).")] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option("--categorical", help="Numeric column to treat as categories (repeatable)."),
    ] = None,
    monotone: Annotated[
        list[str] | None,
        typer.Option(
            "--monotone", help="LightGBM: COLUMN=1 risk rises with it, COLUMN=-1 it falls (repeatable)."
        ),
    ] = None,
    selection: Annotated[
        str | None, typer.Option("--selection", help="Scorecard feature selection: iv, stepwise or none.")
    ] = None,
    trend: Annotated[
        list[str] | None,
        typer.Option(
            "--trend",
            help="Scorecard: COLUMN=ascending|descending|peak|valley|auto for a numeric column's bad rate (repeatable).",
        ),
    ] = None,
    special: Annotated[
        list[str] | None,
        typer.Option(
            "--special", help="Scorecard: COLUMN=-1,96,98 codes that get a bin of their own (repeatable)."
        ),
    ] = None,
    base_score: Annotated[float, typer.Option(help="Points at the base odds.")] = 600.0,
    base_odds: Annotated[float, typer.Option(help="Good:bad odds at the base score.")] = 50.0,
    pdo: Annotated[float, typer.Option(help="Points to double the odds.")] = 20.0,
    by: By = None,
    json_out: JsonOut = False,
) -> None:
    """Train a scorecard or LightGBM model on a table, validate it, and register a draft version."""
    from creditfactory.modeling import service
    from creditfactory.modeling.model.data import file_sha256, read_table

    st = state(ctx)
    with _errors(ctx):
        c = st.container
        exclude = list(drop or ())
        source: dict[str, Any]
        oot_frame = None
        if (data is None) == (train_as_of is None):
            raise TrainingDataError("give either --data FILE or --train-as-of DATE (the customer portrait)")
        if data is not None:
            if oot_as_of is not None:
                raise TrainingDataError("--oot-as-of goes with --train-as-of; with --data use --oot FILE")
            frame = read_table(data)
            oot_frame = read_table(oot) if oot is not None else None
            source = {
                "source": str(data),
                "file_sha256": file_sha256(data),
                **({"oot_source": str(oot), "oot_file_sha256": file_sha256(oot)} if oot is not None else {}),
            }
            label = str(data)
        else:
            assert train_as_of is not None
            dev_date = _date(train_as_of, "--train-as-of")
            frame = service.portrait_sample(c.lake_dir, as_of=dev_date, segment=segment, target=target)
            exclude += service.portrait_exclusions(frame, target=target)
            windows = {"train_as_of": dev_date.isoformat()}
            if oot_as_of is not None:
                oot_date = _date(oot_as_of, "--oot-as-of")
                if oot_date <= dev_date:
                    raise TrainingDataError("--oot-as-of must be later than --train-as-of")
                oot_frame = service.portrait_sample(
                    c.lake_dir, as_of=oot_date, segment=segment, target=target
                )
                windows["oot_as_of"] = oot_date.isoformat()
            source = {"source": "portrait", **windows, "segment": segment}
            label = f"the portrait at {train_as_of}" + (f" ({segment})" if segment else "")
        params: dict[str, Any] = {"base_score": base_score, "base_odds": base_odds, "pdo": pdo}
        if kind == "scorecard":
            if selection is not None:
                params["selection"] = selection
            if trend:
                params["monotonic_trend"] = _trends(trend)
            if special:
                params["special_codes"] = _specials(special)
            if monotone:
                raise TrainingDataError(
                    "--monotone applies to lightgbm; a scorecard's bins follow the best monotonic trend"
                )
        elif kind == "lightgbm":
            if selection is not None or trend or special:
                raise TrainingDataError("--selection, --trend and --special apply to scorecards")
            if monotone:
                params["monotone_constraints"] = _monotone(monotone)
        else:
            raise TrainingDataError(f"--kind {kind!r}: use scorecard or lightgbm")
        model_name = name or (_default_name(data) if data is not None else f"{segment or 'all'}_{kind}")
        if not json_out:
            st.err.print(
                f"training {kind} {model_name} on {label} ({frame.height:,} rows, {frame.width} columns)"
            )
        with c.uow() as uow:
            result = service.train_and_register(
                uow,
                models_dir=_models_dir(c),
                name=model_name,
                kind=kind,
                segment=segment,
                dev=frame,
                oot=oot_frame,
                target=target,
                features=None,
                trained_by=by or _default_staff(),
                seed=seed,
                clock=c.clock,
                test_size=test_size,
                bad_value=bad_value,
                categorical=categorical or (),
                exclude=exclude,
                params=params,
                windows={k: v for k, v in source.items() if k.endswith("_as_of")} or None,
                source=source,
            )
            uow.commit()
    test = result.test
    oot_figures = result.validation.summary.get("oot")
    used = len(result.validation.features)
    offered = len(result.manifest["offered_features"])
    st.console.print(
        f"[bold]{result.name} v{result.version}[/] ({result.kind}, draft) trained by {result.manifest['trained_by']}"
    )
    st.console.print(
        f"test AUC [bold]{_f(test['auc'])}[/]  KS [bold]{_f(test['ks'])}[/]  Gini [bold]{_f(test['gini'])}[/]  "
        f"({test['rows']:,} rows, {test['bads']:,} bad; stratified {test_size:g} test split, seed {seed})"
    )
    if oot_figures is not None:
        st.console.print(
            f"out-of-time AUC [bold]{_f(oot_figures['auc'])}[/]  KS [bold]{_f(oot_figures['ks'])}[/]  "
            f"Gini [bold]{_f(oot_figures['gini'])}[/]  ({oot_figures['rows']:,} rows, {oot_figures['bads']:,} bad)"
        )
    st.console.print(f"features: {used} of {offered} used")
    for column, why in result.excluded.items():
        st.console.print(f"  column {column} not used: {why}")
    st.console.print(f"report: {result.report_path}")
    if json_out:
        emit_json(
            {
                "name": result.name,
                "version": result.version,
                "kind": result.kind,
                "status": result.status,
                "auc": test["auc"],
                "ks": test["ks"],
                "gini": test["gini"],
                "rows": test["rows"],
                "bads": test["bads"],
                "features": used,
                **(
                    {
                        "oot_auc": oot_figures["auc"],
                        "oot_ks": oot_figures["ks"],
                        "oot_gini": oot_figures["gini"],
                    }
                    if oot_figures is not None
                    else {}
                ),
                "path": str(result.path),
                "report": str(result.report_path),
            }
        )


def _row_dict(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "version": row.version,
        "kind": row.kind,
        "segment": row.segment,
        "status": row.status.value,
        "trained_by": row.trained_by,
        "trained_at": row.trained_at.isoformat(),
        "approved_by": row.approved_by,
        "approved_at": row.approved_at.isoformat() if row.approved_at else None,
        "retired_by": row.retired_by,
        "retired_at": row.retired_at.isoformat() if row.retired_at else None,
        "auc": row.auc,
        "ks": row.ks,
        "path": row.artefact_path,
        "manifest_sha256": row.manifest_sha256,
    }


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="Only this model.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Registered model versions with their status and headline figures."""
    from creditfactory.modeling import service

    st = state(ctx)
    c = st.container
    with c.uow() as uow:
        rows = [_row_dict(r) for r in service.list_versions(uow, name=name)]
    table = RichTable(title="model versions", title_justify="left")
    for col in (
        "name",
        "version",
        "kind",
        "segment",
        "status",
        "AUC",
        "KS",
        "trained by",
        "trained at",
        "approved by",
    ):
        table.add_column(col, justify="right" if col in ("version", "AUC", "KS") else "left")
    for r in rows:
        table.add_row(
            r["name"],
            str(r["version"]),
            r["kind"],
            r["segment"] or "",
            r["status"],
            _f(r["auc"]),
            _f(r["ks"]),
            r["trained_by"],
            r["trained_at"][:19],
            r["approved_by"] or "",
        )
    st.console.print(table if rows else "no model versions registered")
    if json_out:
        emit_json({"versions": rows})


def _version_arg(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.lstrip("vV"))
    except ValueError:
        raise TrainingDataError(f"version {text!r} is not a number (e.g. 3 or v3)") from None


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Argument(help="Version (default: the newest).")] = None,
    json_out: JsonOut = False,
) -> None:
    """A version's registry record, figures, features and (scorecards) points table."""
    from creditfactory.modeling import service

    st = state(ctx)
    c = st.container
    with _errors(ctx), c.uow() as uow:
        number = _version_arg(version)
        if number is None:
            rows = service.list_versions(uow, name=name)
            if not rows:
                raise ModelNotFound(f"no model named {name!r} is registered")
            number = rows[-1].version
        row = service.get_version(uow, name=name, version=number)
        record = _row_dict(row)
        manifest = service.verified_manifest(uow, models_dir=_models_dir(c), name=name, version=number)
        loaded = service.load_version(
            uow, models_dir=_models_dir(c), name=name, version=number, allow_unapproved=True
        )
    st.console.print(
        f"[bold]{name} v{number}[/] {record['kind']} · {record['status']} · segment {record['segment'] or 'all'}"
    )
    st.console.print(f"trained by {record['trained_by']} at {record['trained_at']}")
    if record["approved_by"]:
        st.console.print(f"approved by {record['approved_by']} at {record['approved_at']}")
    if record["retired_by"]:
        st.console.print(f"retired by {record['retired_by']} at {record['retired_at']}")
    figures = manifest.get("metrics", {}).get("samples", {})
    table = RichTable(title="figures", title_justify="left")
    for col in ("sample", "rows", "bads", "AUC", "KS", "Gini"):
        table.add_column(col, justify="left" if col == "sample" else "right")
    for sample, s in figures.items():
        table.add_row(sample, f"{s['rows']:,}", f"{s['bads']:,}", _f(s["auc"]), _f(s["ks"]), _f(s["gini"]))
    st.console.print(table)
    st.console.print("features: " + ", ".join(f"{k} ({v})" for k, v in manifest["features"].items()))
    if loaded.kind == "scorecard":
        pts = loaded.estimator.points_frame()  # type: ignore[union-attr]
        ptable = RichTable(title="points", title_justify="left")
        for col in ("feature", "bin", "count", "WoE", "points"):
            ptable.add_column(col, justify="right" if col in ("count", "WoE", "points") else "left")
        previous = None
        for r in pts.iter_rows(named=True):
            ptable.add_row(
                r["feature"] if r["feature"] != previous else "",
                r["bin"],
                f"{r['count']:,}",
                _f(r["woe"]),
                f"{r['points']:.1f}",
            )
            previous = r["feature"]
        st.console.print(ptable)
    else:
        importance = loaded.estimator.feature_importance().head(15)  # type: ignore[union-attr]
        itable = RichTable(title="gain importance (top 15)", title_justify="left")
        itable.add_column("feature")
        itable.add_column("gain share", justify="right")
        itable.add_column("splits", justify="right")
        for r in importance.iter_rows(named=True):
            itable.add_row(r["feature"], f"{r['gain_share']:.1%}", f"{r['splits']:,}")
        st.console.print(itable)
    st.console.print(f"artefacts: {c.data_dir / 'models' / record['path']}")
    if json_out:
        emit_json({**record, "features": manifest["features"], "metrics": manifest.get("metrics")})


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version.")],
    out: Annotated[Path | None, typer.Option("--out", help="Copy the report to this file.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Where a version's validation report is (checked against the registry), or a copy of it."""
    from creditfactory.modeling import service

    st = state(ctx)
    c = st.container
    with _errors(ctx), c.uow() as uow:
        path = service.report_path(
            uow, models_dir=_models_dir(c), name=name, version=_version_arg(version) or 0
        )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        path = out
    st.console.print(str(path))
    if json_out:
        emit_json({"report": str(path)})


def _read_schema(path: Path) -> dict[str, str]:
    from creditfactory.modeling.artefacts import parse_schema

    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"schema file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(f"schema file {path} is not valid JSON: {exc}") from None
    return parse_schema(data)


@app.command("approve")
def approve(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to approve.")],
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema",
            help="JSON of the data's columns -> number/string/bool/date; refuse if features are missing.",
        ),
    ] = None,
    portrait_as_of: Annotated[
        str | None,
        typer.Option(
            "--portrait-as-of",
            help="Check the model's features against the customer portrait at this date (default: the newest built).",
        ),
    ] = None,
    by: By = None,
    json_out: JsonOut = False,
) -> None:
    """Approve a draft version (the approver must not be the trainer).

    The model's features are checked against a schema first: ``--schema FILE``, or the customer
    portrait (``--portrait-as-of``, else the newest one built, when the model was trained on it).
    """
    from creditfactory import portrait
    from creditfactory.modeling import service

    st = state(ctx)
    c = st.container
    with _errors(ctx), c.uow() as uow:
        columns = _read_schema(schema) if schema is not None else None
        if columns is None:
            built = portrait.available(c.lake_dir)
            if portrait_as_of is not None:
                columns = portrait.schema(c.lake_dir, as_of=_date(portrait_as_of, "--portrait-as-of"))
            elif built:
                manifest = service.verified_manifest(
                    uow, models_dir=_models_dir(c), name=name, version=_version_arg(version) or 0
                )
                if (manifest.get("data") or {}).get("source") == "portrait":
                    columns = portrait.schema(c.lake_dir, as_of=built[-1])
        row = service.approve_version(
            uow,
            models_dir=_models_dir(c),
            name=name,
            version=_version_arg(version) or 0,
            approved_by=by or _default_staff(),
            clock=c.clock,
            schema=columns,
        )
        record = _row_dict(row)
        uow.commit()
    st.console.print(f"{name} v{record['version']} approved by {record['approved_by']}")
    if json_out:
        emit_json(record)


@app.command("retire")
def retire(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to retire.")],
    by: By = None,
    json_out: JsonOut = False,
) -> None:
    """Retire a version: it can no longer be loaded for production use."""
    from creditfactory.modeling import service

    st = state(ctx)
    c = st.container
    with _errors(ctx), c.uow() as uow:
        row = service.retire_version(
            uow,
            name=name,
            version=_version_arg(version) or 0,
            retired_by=by or _default_staff(),
            clock=c.clock,
        )
        record = _row_dict(row)
        uow.commit()
    st.console.print(f"{name} v{record['version']} retired by {record['retired_by']}")
    if json_out:
        emit_json(record)


def _ref(text: str) -> tuple[str, int]:
    name, sep, version = text.rpartition(":")
    if not sep or not name:
        raise TrainingDataError(f"model {text!r}: write NAME:VERSION, e.g. german_credit:2")
    number = _version_arg(version)
    assert number is not None
    return name, number


@app.command("compare")
def compare(
    ctx: typer.Context,
    models: Annotated[list[str], typer.Argument(help="Versions as NAME:VERSION (two or more).")],
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet with the features and the target.")],
    target: Annotated[str, typer.Option("--target", help="Outcome column.")],
    bad_value: Annotated[str | None, typer.Option("--bad-value", help="Target value meaning bad.")] = None,
    test_size: Annotated[
        float | None,
        typer.Option(
            "--test-size", help="Compare on the stratified test split of the data (as in training)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of that split.")] = 42,
    json_out: JsonOut = False,
) -> None:
    """Score the same data with several versions and put their figures side by side."""
    from creditfactory.modeling import service
    from creditfactory.modeling.model.data import encode_target, read_table, require_columns

    st = state(ctx)
    c = st.container
    with _errors(ctx):
        refs = [_ref(m) for m in models]
        frame = read_table(data)
        if test_size is not None:
            require_columns(frame, [target], what=str(data))
            y = encode_target(frame[target], name=target, bad_value=bad_value)
            _, test_rows = service.split_rows(y, test_size=test_size, seed=seed)
            frame = frame[test_rows]
        with c.uow() as uow:
            result = service.compare_versions(
                uow, models_dir=_models_dir(c), refs=refs, data=frame, target=target, bad_value=bad_value
            )
    sample = f"{data}" + (f", test split {test_size:g} seed {seed}" if test_size is not None else "")
    table = RichTable(
        title=f"comparison on {result.rows:,} rows ({result.bads:,} bad) of {sample}", title_justify="left"
    )
    table.add_column("")
    for m in result.models:
        table.add_column(f"{m['model']} ({m['kind']}, {m['status']})", justify="right")
    for label, key, places in (
        ("AUC", "auc", 4),
        ("KS", "ks", 4),
        ("Gini", "gini", 4),
        ("mean PD", "mean_pd", 4),
        ("Brier", "brier", 4),
        ("top-decile bad rate", "top_decile_bad_rate", 4),
        ("top-decile capture of bads", "top_decile_capture", 4),
        ("Hosmer-Lemeshow p", "hosmer_lemeshow_p", 4),
    ):
        table.add_row(label, *[_f(m[key], places) for m in result.models])
    st.console.print(table)
    if result.rank_correlation is not None:
        st.console.print(f"rank correlation of the two models' PDs: {result.rank_correlation:.4f}")
    if json_out:
        emit_json(
            {
                "rows": result.rows,
                "bads": result.bads,
                "models": result.models,
                "rank_correlation": result.rank_correlation,
            }
        )
