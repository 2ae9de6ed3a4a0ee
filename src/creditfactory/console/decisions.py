"""Console pages of decisions: ``GET /console/decisions/{id}``, one decision record laid out for
an underwriter (Chinese and English labels; readable on a phone)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from creditfactory.api.deps import PrincipalDep, UowDep
from creditfactory.decisioning import FACTS, decisions_of_application, get_decision
from creditfactory.decisioning.evaluate import APPLICATION_FIELD_MEANINGS
from creditfactory.errors import PermissionDenied
from creditfactory.security.roles import Permission, Principal, PrincipalKind, require

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

OUTCOME_LABELS = {
    "approve": ("批准", "Approved"),
    "decline": ("拒绝", "Declined"),
    "refer": ("转人工审核", "Referred"),
}
FAMILY_LABELS = {
    "velocity": ("申请频率", "Velocity"),
    "person": ("身份", "Person"),
    "device": ("设备", "Device"),
    "location": ("位置", "Location"),
    "graph": ("关系图谱", "Relationship graph"),
    "income": ("收入核验", "Income"),
}


def staff_only(principal: Principal) -> None:
    if principal.kind == PrincipalKind.CUSTOMER:
        raise PermissionDenied("the console is for staff", principal_id=principal.id)
    require(principal, Permission.APPLICATION_REVIEW)


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(FsPath(__file__).with_name("templates")),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是 / yes" if value else "否 / no"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def render_decision(view: Any, *, others: list[Any]) -> str:
    d = view.to_json()
    facts = d["inputs"].get("facts", {})
    families: dict[str, list[tuple[str, str, str]]] = {}
    for f in FACTS:
        families.setdefault(f.family, []).append((f.name, f.meaning, _shown(facts.get(f.name))))
    fields = [
        (name, APPLICATION_FIELD_MEANINGS.get(name, ""), _shown(value))
        for name, value in d["inputs"].get("fields", {}).items()
    ]
    row = (d["inputs"].get("portrait") or {}).get("row") or {}
    return (
        _env()
        .get_template("decision.html.j2")
        .render(
            d=d,
            outcome=OUTCOME_LABELS.get(d["outcome"], (d["outcome"], d["outcome"])),
            families=[(FAMILY_LABELS.get(k, (k, k)), v) for k, v in families.items()],
            fields=fields,
            portrait=[(k, _shown(v)) for k, v in row.items()],
            others=[o.to_json() for o in others],
            shown=_shown,
            outcome_labels=OUTCOME_LABELS,
        )
    )


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision_page(
    decision_id: Annotated[int, Path(ge=1, le=2**53)], uow: UowDep, principal: PrincipalDep
) -> HTMLResponse:
    """One decision for an underwriter: outcome, reasons, rule hits, scores, inputs, timings."""
    staff_only(principal)
    view = get_decision(uow, decision_id=decision_id)
    others = [v for v in decisions_of_application(uow, application_id=view.application_id) if v.id != view.id]
    return HTMLResponse(render_decision(view, others=others))
