"""The portrait's documentation, generated from the catalogue (``creditfactory portrait features --markdown``)."""

from __future__ import annotations

from creditfactory.portrait.features import COLUMNS, FEATURES, POLICY_FACTS, SOURCES
from creditfactory.portrait.model import FeatureDef
from creditfactory.portrait.service import REQUIRED_TABLES

GROUPS: dict[str, str] = {
    "profile": "Profile and policy facts",
    "deposits": "Deposit balances",
    "flows": "Account flows",
    "income": "Income",
    "merchant": "Merchants: acquiring, invoices, tax",
    "assets": "Assets under management",
    "products": "Product holding",
    "credit": "Loans with the bank",
    "bureau": "Credit bureau",
    "farmer": "Farmers",
    "social": "Social security",
    "digital": "Devices and contacts",
    "negative": "Negative list",
    "ratios": "Ratios",
}

_INTRO = """\
# The customer portrait

Generated from `src/creditfactory/portrait/features.py` by `creditfactory portrait features
--markdown`; do not edit by hand.

The portrait is one row per customer at an **as-of date**, computed only from what the bank knew
on that date. It feeds model training (`modeling`), the nightly mining (`whitelist`) and the live
decision (`decisioning`).

```bash
creditfactory portrait build --as-of 2025-06-30            # features (and targets) into the lake
creditfactory portrait list                                # built as-of dates
creditfactory portrait show C0000000001 --as-of 2025-06-30 # one customer's portrait
```

```python
from datetime import date
from creditfactory import portrait

result = portrait.build(lake, as_of=date(2025, 6, 30))            # engine="spark" on a cluster
frame = portrait.read(lake, as_of=date(2025, 6, 30)).collect()    # Polars
targets = portrait.read_targets(lake, as_of=date(2024, 6, 30))    # bad_12m, observable
```

## Point in time

* The **reference month** is the latest month that has ended by the as-of date: on a month end,
  that month; on any other day, the month before (a month-end balance is not known before the
  month ends).
* Monthly rows count up to the reference month; dated rows (bureau reports, tax quarters,
  devices, negative-list entries, loans, accounts) count when dated on or before the as-of date.
  A customer who joined after the as-of date is not in the portrait.
* A loan is open unless its close date has passed; its final status (settled, written off)
  counts only from its close date. An account is open unless its close date has passed.
* A window of *N* months is the reference month and the *N − 1* before it. A window longer than
  the history sees fewer months; coverage features (`flow_months_12m`, `social_months_24m`,
  `bureau_reports_24m`) tell a model how much there was.
* Attributes without a date (KYC status, consent, marital status, farmland, contacts) are taken
  as the latest extract loaded says; when a key was delivered again by a later load, the newest
  row is used.
* A test changes and adds every row dated after the as-of date in every table and checks that
  the portrait stays the same, byte for byte.

## Exact and the same on both engines

Amounts are kept as integer fen until the end: sums, means, standard deviations (squares in
128-bit integers) and slopes are computed from exact integer sums and turned into yuan (divided
by 100, correctly rounded) only at the end. The result does not depend on the order in which an
engine adds rows: the same lake gives the same bytes on every run, and the Spark engine gives
the same values as the local one (a test compares them). Features are floats in yuan; money
stays `Decimal` in servicing.

## Output

```
LAKE/portrait/as_of=2025-06-30/part-00000.parquet ... _manifest.json
LAKE/portrait_target/as_of=2024-06-30/part-00000.parquet  _manifest.json
```

Each build is written to a staging folder and renamed into place: a reader sees the old
complete portrait or the new complete one; a build that fails leaves nothing behind; a rebuild
replaces. `_manifest.json` lists every column with its type, description and Chinese label, the
rows by segment, the lake files and batches read (with a SHA-256 over them), a SHA-256 of the
catalogue, the engine and the seconds taken.

Every decision asks which portraits are published (the newest at or before its date). The dates
are listed once and kept while `LAKE/portrait/` is unchanged, for a second at most: publishing,
replacing or removing a portrait renames or removes an entry of that folder and so changes its
times, which the next decision sees. A listing is kept only once the folder has been still for
three seconds (a second change within the same timestamp would leave the times as they were,
and some filesystems keep whole seconds or two), and the second's limit covers what the
folder's times cannot show: a manifest removed by hand inside a published folder, or a lake on
a share whose times come from another machine's clock. With a year of daily portraits, asking
went from 2.2 ms (a `stat` of each of 365 folders) to 0.007 ms (one `stat`).

Every row starts with `customer_id`, `as_of` and the columns below, then the features.

| column | type | meaning | 中文 |
|---|---|---|---|
"""

_TARGETS = """\

## Targets

`creditfactory portrait build --as-of D --targets` (the default) also writes
`LAKE/portrait_target/as_of=D/`: `customer_id`, `as_of`, `bad_12m`, `observable`,
`unobservable_reason` (`portrait.build_targets(lake, as_of=D, horizon_months=12)`).

* `bad_12m` is 1 when any of the customer's loans is 90 or more days past due at a month end of
  the twelve months after the reference month, or is written off within them; else 0.
* `observable` is false when the lake's loan performance does not reach the end of those twelve
  months (`history`), when the customer had no loan outstanding at any time in them
  (`no_exposure`), or when the customer was already 90+ days past due at the as-of date
  (`in_default`). Models are trained on observable rows only.

Targets live in their own table so that no feature file ever holds what happened after its
as-of date.

## Errors

| code | when |
|---|---|
| `portrait_not_found` | reading a portrait (or targets) never built for that date |
| `portrait_no_data` | no customer was a customer on the as-of date, or the lake's account flows do not cover its reference month |
| `portrait_missing_tables` | the lake lacks a table the portrait cannot do without |
| `portrait_unknown_engine` | an engine other than `local` or `spark` |
| `portrait_engine_unavailable` | the Spark engine was asked for but PySpark or Java is missing |
| `portrait_customer_not_found` | `portrait show` for a customer not in that portrait |
"""


def _window(feat: FeatureDef) -> str:
    return "all" if feat.window_months is None else f"{feat.window_months}m"


def render_markdown() -> str:
    out: list[str] = [_INTRO.rstrip("\n")]
    for col in COLUMNS:
        kind = "number" if col.dtype == "float" else col.dtype
        out.append(f"| `{col.name}` | {kind} | {col.description} | {col.label_zh} |")
    out += [
        "",
        "## Sources",
        "",
        f"Tables the portrait cannot do without: {', '.join(f'`{t}`' for t in REQUIRED_TABLES)}. "
        "When the lake lacks another one, its features are empty (or zero for counts) and the manifest "
        "lists it under `missing_tables`.",
        "",
        "| source | table | placed in time by | reaches the customer through | what it holds |",
        "|---|---|---|---|---|",
    ]
    for src in SOURCES:
        time = f"`{src.time}` ({src.kind.value})" if src.time else "(no date)"
        link = f"`{src.link.table}.{src.link.right_on}`" if src.link else "`customer_id`"
        out.append(f"| `{src.name}` | `{src.table}` | {time} | {link} | {src.description} |")
    out += [
        "",
        "## Policy facts",
        "",
        "Strategies use these features as facts: " + ", ".join(f"`{name}`" for name in POLICY_FACTS) + ".",
        "",
        f"## Features ({len(FEATURES)})",
        "",
        "Types: `number` (float; whole numbers for counts, days and months), `bool`, `string`. "
        "Windows count months back from the reference month. `how` is the aggregate over the "
        "source, or the formula (SQL) over other features.",
    ]
    for group, title in GROUPS.items():
        members = [f for f in FEATURES if f.group == group]
        if not members:
            continue
        out += [
            "",
            f"### {title}",
            "",
            "| feature | type | window | how | meaning | 中文 |",
            "|---|---|---|---|---|---|",
        ]
        for feat in members:
            kind = feat.dtype.family + (" (whole)" if feat.dtype.value == "int" else "")
            out.append(
                f"| `{feat.name}` | {kind} | {_window(feat)} | {feat.how()} | {feat.description} | {feat.label_zh} |"
            )
    out.append(_TARGETS.rstrip("\n"))
    return "\n".join(out) + "\n"
