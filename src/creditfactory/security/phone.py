"""PRC mainland mobile numbers: validation and normalisation to 11 digits.

A mainland mobile number is eleven digits, ``1`` then ``3``–``9`` then nine more digits. Input
may carry the country code (``+86`` or ``86``) and spaces or hyphens between groups, as people
write it (``+86 138-1234-5678``); :func:`normalise` returns the bare eleven digits.
Error messages describe the problem without repeating the number, which is personal data.
"""

from __future__ import annotations

import re

from creditfactory.errors import InvalidInput

__all__ = ["InvalidPhone", "is_valid", "normalise", "problems"]

_MOBILE = re.compile(r"^1[3-9][0-9]{9}$", re.ASCII)
_SEPARATORS = re.compile(r"[\s\-]+")
_DIGITS = re.compile(r"^[0-9]*$", re.ASCII)


class InvalidPhone(InvalidInput):
    code = "invalid_phone"
    title = "Invalid mobile number"


def _strip(value: str) -> tuple[str, bool]:
    """The number without separators and country code, and whether a ``+`` prefix was wrong."""
    compact = _SEPARATORS.sub("", value)
    if compact.startswith("+86"):
        return compact[3:], False
    if compact.startswith("+"):
        return compact, True
    if compact.startswith("86") and len(compact) == 13:
        return compact[2:], False
    return compact, False


def problems(value: object) -> list[str]:
    """Every reason ``value`` is not a mainland mobile number (empty list when it is valid)."""
    if not isinstance(value, str):
        return [f"expected text, got {type(value).__name__}"]
    digits, bad_prefix = _strip(value)
    if not digits:
        return ["is empty"]
    if bad_prefix:
        return ["only the +86 country code is accepted"]
    if not _DIGITS.match(digits):
        return ["may contain only digits, spaces, hyphens and a +86 prefix"]
    found: list[str] = []
    if len(digits) != 11:
        found.append(f"must be 11 digits, got {len(digits)}")
    if digits[0] != "1":
        found.append(f"must start with 1, got {digits[0]}")
    elif len(digits) > 1 and digits[1] not in "3456789":
        found.append(f"second digit must be 3-9, got {digits[1]}")
    return found


def is_valid(value: object) -> bool:
    return not problems(value)


def normalise(value: str) -> str:
    """The eleven digits of a valid number; raise :class:`InvalidPhone` naming every problem."""
    found = problems(value)
    if found:
        raise InvalidPhone("invalid mobile number: " + "; ".join(found))
    digits, _ = _strip(value)
    assert _MOBILE.match(digits)
    return digits
