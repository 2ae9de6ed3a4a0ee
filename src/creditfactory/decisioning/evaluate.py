"""The decision as a pure function: (inputs, compiled strategy, scores) -> verdict.

Nothing here reads a database, a file or a clock. :func:`application_fields` turns what
origination knows about an application into the strategy's application columns;
:func:`evaluation_row` joins them with the portrait row, the facts and the scores;
:func:`evaluate` runs the compiled plan on that row and applies what the strategy cannot know
by itself: the product's amount and rate bounds and, for a whitelisted applicant, the offer
(the limit never exceeds the offer's, the price is the offer's; when the decision departs from
the offer, a reason says so and the rule hits say what changed). Replay and back-test call the
same :func:`evaluate` on stored inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from creditfactory.strategy import Plan

#: Columns an application brings to a decision strategy (beside the portrait and the facts).
APPLICATION_FIELDS: dict[str, str] = {
    "requested_amount": "number",
    "requested_term_months": "number",
    "channel": "string",
    "product_code": "string",
    "purpose": "string",
    "applicant_age": "number",
    "applicant_segment": "string",
    "name_matches_customer": "bool",
    "whitelisted": "bool",
    "offer_limit": "number",
    "offer_price": "number",
    "product_min_amount": "number",
    "product_max_amount": "number",
    "has_portrait": "bool",
    "portrait_age_days": "number",
}

APPLICATION_FIELD_MEANINGS: dict[str, str] = {
    "requested_amount": "Amount applied for, yuan",
    "requested_term_months": "Term applied for, months",
    "channel": "Channel of the application (app, wechat, h5, branch ...)",
    "product_code": "Loan product applied for",
    "purpose": "Declared purpose of the loan",
    "applicant_age": "Age in full years on the business date, from the ID number",
    "applicant_segment": "The portrait's segment, or new_to_bank when the applicant has no portrait row",
    "name_matches_customer": "The name given is the customer's name on file (NULL: customer unknown)",
    "whitelisted": "The applicant holds a current pre-approved offer",
    "offer_limit": "The offer's limit, yuan (NULL: no offer)",
    "offer_price": "The offer's annual rate (NULL: no offer)",
    "product_min_amount": "The product's smallest amount, yuan",
    "product_max_amount": "The product's largest amount, yuan",
    "has_portrait": "A portrait row at or before the business date was found",
    "portrait_age_days": "Days from the portrait's as-of date to the business date (NULL: no row)",
}

#: The segment of an applicant without a portrait row.
NEW_TO_BANK = "new_to_bank"

#: Reasons the engine adds to the strategy's own (Chinese and English, as the strategy's).
ENGINE_REASONS: dict[str, tuple[str, str]] = {
    "W_OFFER_NOT_HONOURED": (
        "预授信额度未能兑现：客户情况自预授信以来发生变化（见命中规则）",
        "The pre-approved offer is not honoured: the applicant's situation changed since the offer "
        "(see the rules hit)",
    ),
    "W_LIMIT_BELOW_OFFER": (
        "核定额度低于申请金额及预授信额度：客户情况自预授信以来发生变化",
        "Limit below the amount asked for within the pre-approved offer: the applicant's situation "
        "changed since the offer",
    ),
    "W_OFFER_LIMIT_CAP": (
        "额度以预授信额度为上限",
        "Limit capped at the pre-approved offer",
    ),
    "W_OFFER_PRICE": (
        "利率按预授信利率执行",
        "Rate as in the pre-approved offer",
    ),
    "P_MAX_AMOUNT_CAP": (
        "额度以产品最高额度为上限",
        "Limit capped at the product's maximum",
    ),
    "P_PRICE_FLOOR": ("利率不低于产品最低利率", "Rate raised to the product's lowest rate"),
    "P_PRICE_CAP": ("利率不高于产品最高利率", "Rate lowered to the product's highest rate"),
    "D_BELOW_PRODUCT_MIN": (
        "可批额度低于产品最低金额",
        "The amount that could be approved is below the product's minimum",
    ),
    "R_NO_PRICE": ("评级无对应利率，需人工定价", "No rate for the grade: priced by an underwriter"),
}


def plain(value: Any) -> Any:
    """A value as JSON keeps it and the strategy reads it back unchanged: dates as ISO text,
    ``Decimal`` as float, non-finite floats as ``None``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


_AS_IS = frozenset({type(None), bool, int, str})


def plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`plain` of each value of a mapping; the values JSON keeps as they are (most of a
    portrait row and of the facts) pass without a call."""
    isfinite = math.isfinite
    return {
        k: v if (t := type(v)) in _AS_IS or (t is float and isfinite(v)) else plain(v)
        for k, v in values.items()
    }


def application_fields(
    app: Mapping[str, Any], *, portrait_row: Mapping[str, Any] | None, portrait_as_of: date | None
) -> dict[str, Any]:
    """The application columns of :data:`APPLICATION_FIELDS` from origination's
    ``application_facts`` (amounts as float; the offer NULL when there is none)."""
    offer = app.get("offer")
    product = app.get("product") or {}
    identity = app.get("identity") or {}
    business_date = app["business_date"]
    if isinstance(business_date, str):
        business_date = date.fromisoformat(business_date)
    segment = None if portrait_row is None else portrait_row.get("segment")
    return {
        "requested_amount": plain(app["amount"]),
        "requested_term_months": int(app["term_months"]),
        "channel": str(app["channel"]),
        "product_code": str(app["product_code"]),
        "purpose": str(app["purpose"]),
        "applicant_age": identity.get("age"),
        "applicant_segment": NEW_TO_BANK if portrait_row is None else (segment or NEW_TO_BANK),
        "name_matches_customer": identity.get("name_matches_record"),
        "whitelisted": offer is not None,
        "offer_limit": None if offer is None else plain(offer["limit"]),
        "offer_price": None if offer is None else plain(offer["annual_rate"]),
        "product_min_amount": plain(product.get("min_amount")),
        "product_max_amount": plain(product.get("max_amount")),
        "has_portrait": portrait_row is not None,
        "portrait_age_days": None if portrait_as_of is None else (business_date - portrait_as_of).days,
    }


def evaluation_row(
    plan: Plan,
    *,
    portrait_row: Mapping[str, Any] | None,
    facts: Mapping[str, Any],
    fields: Mapping[str, Any],
    scores: Mapping[str, Any],
) -> dict[str, Any]:
    """Every column the plan reads: portrait (NULL throughout for a new-to-bank applicant), facts,
    application fields, model outputs. A column none of them has is NULL (the plan was checked
    against the schema, so it can only be a portrait column the row lacks)."""
    row: dict[str, Any] = {}
    if portrait_row is not None:
        row.update(portrait_row)
    row.update(facts)
    row.update(fields)
    row.update(scores)
    return {name: row.get(name) for name in plan.inputs}


@dataclass(frozen=True, slots=True)
class Terms:
    """What bounds a decision from outside the strategy: the product and the offer."""

    min_amount: Decimal
    max_amount: Decimal
    min_rate: Decimal
    max_rate: Decimal
    offer_limit: Decimal | None = None
    offer_rate: Decimal | None = None

    @classmethod
    def of(cls, app: Mapping[str, Any]) -> Terms:
        product = app["product"]
        offer = app.get("offer")
        return cls(
            min_amount=Decimal(str(product["min_amount"])),
            max_amount=Decimal(str(product["max_amount"])),
            min_rate=Decimal(str(product["min_annual_rate"])),
            max_rate=Decimal(str(product["max_annual_rate"])),
            offer_limit=None if offer is None else Decimal(str(offer["limit"])),
            offer_rate=None if offer is None else Decimal(str(offer["annual_rate"])),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "min_amount": str(self.min_amount),
            "max_amount": str(self.max_amount),
            "min_rate": str(self.min_rate),
            "max_rate": str(self.max_rate),
            "offer_limit": None if self.offer_limit is None else str(self.offer_limit),
            "offer_rate": None if self.offer_rate is None else str(self.offer_rate),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Terms:
        def d(key: str) -> Decimal | None:
            return None if data.get(key) is None else Decimal(str(data[key]))

        return cls(
            min_amount=Decimal(data["min_amount"]),
            max_amount=Decimal(data["max_amount"]),
            min_rate=Decimal(data["min_rate"]),
            max_rate=Decimal(data["max_rate"]),
            offer_limit=d("offer_limit"),
            offer_rate=d("offer_rate"),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a decision strategy concluded for one application, after product and offer."""

    outcome: str
    reason_code: str | None
    hits: tuple[dict[str, Any], ...]
    reasons: tuple[dict[str, str], ...]
    grade: str | None
    limit: Decimal | None
    annual_rate: Decimal | None
    strategy_limit: Decimal | None
    strategy_price: Decimal | None
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(r["code"] for r in self.reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason_code": self.reason_code,
            "hits": list(self.hits),
            "reasons": list(self.reasons),
            "grade": self.grade,
            "limit": None if self.limit is None else str(self.limit),
            "annual_rate": None if self.annual_rate is None else str(self.annual_rate),
            "strategy_limit": None if self.strategy_limit is None else str(self.strategy_limit),
            "strategy_price": None if self.strategy_price is None else str(self.strategy_price),
            "variables": self.variables,
        }


def _reason(code: str) -> dict[str, str]:
    zh, en = ENGINE_REASONS[code]
    return {"code": code, "en": en, "zh": zh, "source": "engine"}


def evaluate(plan: Plan, row: Mapping[str, Any], *, terms: Terms) -> Verdict:
    """Run the plan on one row and bound its offer by the product and the applicant's offer.

    Every rule hit carries its reason (code, English, Chinese); the decisive reason comes first. An approval's limit is the
    strategy's, never above the offer's limit nor the product's maximum; its rate is the offer's
    for a whitelisted applicant, else the strategy's price for the grade, kept within the
    product's rates. An approval whose limit falls below the product's minimum is declined; one
    with no price for its grade is referred. A whitelisted applicant who is not approved gets
    ``W_OFFER_NOT_HONOURED`` beside the rules that say what changed.
    """
    out = plan.evaluate_one(row)
    hits = tuple(
        {
            "rule": h.rule,
            "stage": h.stage,
            "action": h.action.value,
            "code": h.reason.code,
            "en": h.reason.en,
            "zh": h.reason.zh,
        }
        for h in out.hits
    )
    reasons: list[dict[str, str]] = []
    seen: set[str] = set()
    for h in hits:
        if h["code"] not in seen:
            seen.add(h["code"])
            reasons.append({"code": h["code"], "en": h["en"], "zh": h["zh"], "source": "strategy"})
    # the decisive reason first, the others in the order the strategy lists its rules
    reasons.sort(key=lambda r: r["code"] != out.reason_code)
    outcome = out.outcome
    reason_code = out.reason_code
    limit: Decimal | None = None
    rate: Decimal | None = None
    whitelisted = terms.offer_limit is not None
    if outcome == "approve":
        assert out.limit is not None or plan.strategy.limit is None
        limit = out.limit if out.limit is not None else Decimal(str(row.get("requested_amount") or 0))
        if whitelisted and terms.offer_limit is not None and limit > terms.offer_limit:
            limit = terms.offer_limit
            reasons.append(_reason("W_OFFER_LIMIT_CAP"))
        if limit > terms.max_amount:
            limit = terms.max_amount
            reasons.append(_reason("P_MAX_AMOUNT_CAP"))
        limit = limit.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        if whitelisted and terms.offer_rate is not None:
            rate = terms.offer_rate
            reasons.append(_reason("W_OFFER_PRICE"))
        else:
            rate = out.price
        if limit < terms.min_amount:
            outcome, reason_code, limit, rate = "decline", "D_BELOW_PRODUCT_MIN", None, None
            reasons.append(_reason("D_BELOW_PRODUCT_MIN"))
        elif rate is None:
            outcome, reason_code, limit = "refer", "R_NO_PRICE", None
            reasons.append(_reason("R_NO_PRICE"))
        else:
            if rate < terms.min_rate:
                rate = terms.min_rate
                reasons.append(_reason("P_PRICE_FLOOR"))
            elif rate > terms.max_rate:
                rate = terms.max_rate
                reasons.append(_reason("P_PRICE_CAP"))
            asked = row.get("requested_amount")
            wanted = terms.offer_limit if asked is None else min(terms.offer_limit or 0, Decimal(str(asked)))
            if whitelisted and terms.offer_limit is not None and limit < wanted:
                reasons.append(_reason("W_LIMIT_BELOW_OFFER"))
    if whitelisted and outcome != "approve":
        reasons.append(_reason("W_OFFER_NOT_HONOURED"))
    if outcome != "approve":
        limit, rate = None, None
    return Verdict(
        outcome=outcome,
        reason_code=reason_code,
        hits=hits,
        reasons=tuple(reasons),
        grade=out.grade,
        limit=limit,
        annual_rate=rate,
        strategy_limit=out.limit,
        strategy_price=out.price,
        variables={k: plain(v) for k, v in out.variables.items()},
    )


__all__ = [
    "APPLICATION_FIELDS",
    "APPLICATION_FIELD_MEANINGS",
    "ENGINE_REASONS",
    "NEW_TO_BANK",
    "Terms",
    "Verdict",
    "application_fields",
    "evaluate",
    "evaluation_row",
    "plain",
]
