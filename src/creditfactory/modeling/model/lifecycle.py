"""A model version's life: draft -> approved -> retired (a draft may also be retired unused).

Approval is four-eyes: the person who approves a version is not the person who trained it.
"""

from __future__ import annotations

from enum import StrEnum

from creditfactory.modeling.errors import IllegalTransition, MakerCheckerViolation


class ModelStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    RETIRED = "retired"


class ModelAction(StrEnum):
    APPROVE = "approve"
    RETIRE = "retire"


TRANSITIONS: dict[tuple[ModelStatus, ModelAction], ModelStatus] = {
    (ModelStatus.DRAFT, ModelAction.APPROVE): ModelStatus.APPROVED,
    (ModelStatus.DRAFT, ModelAction.RETIRE): ModelStatus.RETIRED,
    (ModelStatus.APPROVED, ModelAction.RETIRE): ModelStatus.RETIRED,
}


def next_status(status: ModelStatus | str, action: ModelAction | str, *, label: str = "model") -> ModelStatus:
    """The status after ``action``; raises :class:`IllegalTransition` if it is not allowed."""
    current, act = ModelStatus(status), ModelAction(action)
    try:
        return TRANSITIONS[(current, act)]
    except KeyError:
        raise IllegalTransition(
            f"{label} is {current.value}: it cannot be {act.value}d", status=current.value, action=act.value
        ) from None


def check_four_eyes(*, trained_by: str, approver: str, label: str = "model") -> None:
    if not approver or not approver.strip():
        raise MakerCheckerViolation(f"approving {label} needs the approver's staff id")
    if approver.strip().lower() == trained_by.strip().lower():
        raise MakerCheckerViolation(
            f"{label} was trained by {trained_by}: another person must approve it (maker-checker)",
            trained_by=trained_by,
        )
