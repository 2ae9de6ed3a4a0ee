"""Masking of personal data for display to staff who may not see it in full.

Every function passes ``None`` through, so a missing value stays missing. Masks keep a short,
fixed part of the value (enough to tell records apart on a screen) and replace the rest
with ``*``.
"""

from __future__ import annotations

from typing import overload

from creditfactory.security import phone as _phone

__all__ = ["mask_address", "mask_id_number", "mask_name", "mask_phone"]

MASK = "*"


def _keep_ends(text: str, *, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return MASK * len(text)
    return text[:head] + MASK * (len(text) - head - tail) + text[len(text) - tail :]


@overload
def mask_id_number(value: str) -> str: ...
@overload
def mask_id_number(value: None) -> None: ...
def mask_id_number(value: str | None) -> str | None:
    """Keep the first 3 and last 4 characters: ``110***********002X``.

    Values of 7 characters or fewer are masked entirely.
    """
    if value is None:
        return None
    return _keep_ends(value.strip().upper(), head=3, tail=4)


@overload
def mask_phone(value: str) -> str: ...
@overload
def mask_phone(value: None) -> None: ...
def mask_phone(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits of the number: ``138****5678``.

    A valid mainland number is normalised first, so ``+86 138-1234-5678`` masks the same
    way; other text has its separators removed and the same rule applied.
    """
    if value is None:
        return None
    if _phone.is_valid(value):
        text = _phone.normalise(value)
    else:
        text = "".join(ch for ch in value if not ch.isspace() and ch != "-")
    return _keep_ends(text, head=3, tail=4)


@overload
def mask_name(value: str) -> str: ...
@overload
def mask_name(value: None) -> None: ...
def mask_name(value: str | None) -> str | None:
    """Keep the first character: ``张*``, ``欧***``, ``J*********`` for ``John Smith``.

    A one-character name is masked entirely.
    """
    if value is None:
        return None
    text = value.strip()
    if len(text) <= 1:
        return MASK * len(text)
    return text[0] + MASK * (len(text) - 1)


@overload
def mask_address(value: str) -> str: ...
@overload
def mask_address(value: None) -> None: ...
def mask_address(value: str | None) -> str | None:
    """Keep the first 6 characters (province, city, district) and add ``****``.

    An address of 6 characters or fewer keeps only its first half, so a short address is
    never shown whole.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return ""
    keep = 6 if len(text) > 6 else len(text) // 2
    return text[:keep] + MASK * 4
