"""Commands of origination: ``creditfactory applications list | show``.

They show applications as reviewers and operators need them, without personal data (identity
only as the facts derived from it), so reading them needs no access audit.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from creditfactory.cli.context import emit_json, fail, state
from creditfactory.errors import DomainError
from creditfactory.origination import service
from creditfactory.origination.model import ApplicationStatus

app = typer.Typer(help="Loan applications: list them, show one with its timeline.", no_args_is_help=True)


def _summary(a: service.ApplicationView) -> dict[str, Any]:
    return {
        "id": a.id,
        "customer_id": a.customer_id,
        "status": a.status.value,
        "channel": a.channel.value,
        "product_code": a.product_code,
        "amount": str(a.amount),
        "term_months": a.term_months,
        "offer_version_id": a.offer.version_id if a.offer else None,
        "submitted_at": a.submitted_at.isoformat(),
    }


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: Annotated[
        ApplicationStatus | None, typer.Option(help="Only applications in this status, e.g. referred.")
    ] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's.")] = None,
    after: Annotated[int | None, typer.Option("--after", help="Page on after this application id.")] = None,
    limit: Annotated[int, typer.Option(help="How many, in id order.", min=1, max=10_000)] = 50,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Applications in id order (the review queue with --status referred)."""
    st = state(ctx)
    with st.container.uow() as uow:
        items = service.list_applications(
            uow, status=status, customer_id=customer, after_id=after, limit=limit
        )
    table = RichTable(title="Applications", title_justify="left")
    for col in ("id", "customer", "status", "channel", "product", "amount", "term", "offer", "submitted"):
        table.add_column(col, justify="right" if col in ("id", "amount", "term", "offer") else "left")
    for a in items:
        table.add_row(
            str(a.id),
            a.customer_id,
            f"{a.status.value} ({a.status.label_zh})",
            a.channel.value,
            a.product_code,
            f"{a.amount:,.2f}",
            str(a.term_months),
            str(a.offer.version_id) if a.offer else "",
            a.submitted_at.isoformat(timespec="seconds"),
        )
    st.console.print(table)
    st.console.print(f"{len(items)} application(s)")
    if json_out:
        emit_json({"applications": [_summary(a) for a in items]})


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    application_id: Annotated[int, typer.Argument(help="Application id.")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One application: terms, offer, decision, contract and the timeline of its transitions."""
    st = state(ctx)
    try:
        with st.container.uow() as uow:
            a = service.get_application(uow, application_id=application_id)
            steps = service.timeline(uow, application_id=application_id)
            facts = service.application_facts(uow, application_id=application_id)
            counts = service.velocity(uow, application_id=application_id)
    except DomainError as exc:
        raise fail(st.err, exc) from None
    out = st.console.print
    out(
        f"[bold]application {a.id}[/] of customer {a.customer_id}: [bold]{a.status.value}[/] "
        f"({a.status.label_zh} / {a.status.label_en})"
    )
    out(
        f"  {a.product_code}: {a.amount:,.2f} yuan over {a.term_months} months, {a.repayment_method}, "
        f"for {a.purpose.value} ({a.purpose.label_zh}); via {a.channel.value} on {a.business_date.isoformat()}"
    )
    ident = facts["identity"]
    out(
        f"  applicant aged {ident['age']}, region {ident['region_code']}; known customer: {ident['known_customer']}; "
        f"ID/phone/name agree with the bank's record: {ident['id_matches_record']}/"
        f"{ident['phone_matches_record']}/{ident['name_matches_record']}"
    )
    device = facts["device"]
    out(
        f"  device {device['fingerprint']} ({device['os']}, {device['model']}"
        f"{', emulator' if device['is_emulator'] else ''}{', rooted' if device['is_rooted'] else ''}), IP {facts['ip']}"
    )
    if a.offer:
        out(
            f"  offer: whitelist version {a.offer.version_id}, {a.offer.limit:,.2f} yuan at "
            f"{a.offer.annual_rate * 100:.2f}%"
        )
    else:
        out("  no pre-approved offer")
    if a.decision:
        d = a.decision
        terms = f" {d.limit:,.2f} yuan at {d.annual_rate * 100:.2f}%" if d.limit and d.annual_rate else ""
        out(
            f"  decision {d.decision_id}: {d.outcome.value}{terms} by {d.decided_by}; reasons {' '.join(d.reasons) or '-'}"
        )
    if a.contract:
        out(
            f"  contract {a.contract.template} signed {a.contract.accepted_at.isoformat()} ({a.contract.sha256[:16]}…)"
        )
    table = RichTable(title="Timeline", title_justify="left")
    for col in ("at", "business date", "event", "status", "actor", "reason"):
        table.add_column(col)
    for t in steps:
        table.add_row(
            t.at.isoformat(timespec="seconds"),
            t.business_date.isoformat(),
            t.event.value,
            f"{t.to_status.value} ({t.to_status.label_zh})",
            t.actor,
            t.reason,
        )
    out(table)
    if json_out:
        emit_json(
            {
                **_summary(a),
                "repayment_method": a.repayment_method,
                "purpose": a.purpose.value,
                "decision": None
                if a.decision is None
                else {
                    "decision_id": a.decision.decision_id,
                    "outcome": a.decision.outcome.value,
                    "limit": None if a.decision.limit is None else str(a.decision.limit),
                    "annual_rate": None
                    if a.decision.annual_rate is None
                    else service.rate_text(a.decision.annual_rate),
                    "reasons": list(a.decision.reasons),
                    "decided_by": a.decision.decided_by,
                },
                "contract_sha256": a.contract.sha256 if a.contract else None,
                "line_id": a.line_id,
                "timeline": [
                    {
                        "event": t.event.value,
                        "status": t.to_status.value,
                        "actor": t.actor,
                        "business_date": t.business_date.isoformat(),
                        "reason": t.reason,
                        "at": t.at.isoformat(),
                    }
                    for t in steps
                ],
                "velocity": counts,
            }
        )
