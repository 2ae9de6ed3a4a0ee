"""PRC resident identity numbers (GB 11643-1999): checksum, region, birth date, sex.

An 18-character number is ``RRRRRR YYYYMMDD SSS C``: six-digit region code (GB/T 2260), birth
date, a sequence whose last digit is odd for men and even for women, and a check character
computed with ISO 7064 MOD 11-2 over the first seventeen digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from creditfactory.errors import InvalidInput

#: ISO 7064 MOD 11-2 weights for positions 1..17.
WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: Check character for ``sum(d_i * w_i) % 11``.
CHECK_CHARS = "10X98765432"

#: Province-level codes (first two digits) of GB/T 2260, incl. Taiwan, Hong Kong and Macau.
PROVINCE_CODES: frozenset[str] = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
        "71", "81", "82",
    }
)  # fmt: skip

_PATTERN = re.compile(r"^\d{17}[\dX]$", re.ASCII)  # ASCII digits: "３" is not "3"


class InvalidIdNumber(InvalidInput):
    code = "invalid_id_number"
    title = "Invalid ID number"


@dataclass(frozen=True, slots=True)
class IdNumber:
    value: str
    region_code: str
    birth_date: date
    sex: str  # "M" or "F"

    @property
    def province_code(self) -> str:
        return self.region_code[:2]

    def age_on(self, on: date) -> int:
        """Completed years of age on ``on`` (a birthday counts from its day)."""
        years = on.year - self.birth_date.year
        if (on.month, on.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


def check_char(first17: str) -> str:
    """The check character for the first seventeen digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise InvalidIdNumber(f"need 17 digits to compute a check character, got {first17!r}")
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def problems(value: object, *, as_of: date | None = None) -> list[str]:
    """Every reason ``value`` is not a valid ID number (empty list when it is valid)."""
    if not isinstance(value, str):
        return [f"expected text, got {type(value).__name__}"]
    v = value.strip().upper()
    if len(v) != 18:
        return [f"must be 18 characters, got {len(v)}"]
    if not _PATTERN.match(v):
        return ["must be 17 digits followed by a digit or X"]
    found: list[str] = []
    if v[:2] not in PROVINCE_CODES:
        found.append(f"unknown province code {v[:2]}")
    elif v[2:6] == "0000":
        found.append(f"region code {v[:6]} names a province, not a county")
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        found.append(f"birth date {v[6:14]} is not a calendar date")
    else:
        if born.year < 1900:
            found.append(f"birth year {born.year} is before 1900")
        if as_of is not None and born > as_of:
            found.append(f"birth date {born.isoformat()} is in the future")
    expected = CHECK_CHARS[sum(int(d) * w for d, w in zip(v[:17], WEIGHTS, strict=True)) % 11]
    if v[17] != expected:
        found.append(f"check character is {v[17]}, expected {expected}")
    return found


def is_valid(value: object, *, as_of: date | None = None) -> bool:
    return not problems(value, as_of=as_of)


def parse(value: str, *, as_of: date | None = None) -> IdNumber:
    """Parse and validate; raise :class:`InvalidIdNumber` naming every problem."""
    found = problems(value, as_of=as_of)
    if found:
        raise InvalidIdNumber("invalid ID number: " + "; ".join(found))
    v = value.strip().upper()
    return IdNumber(
        value=v,
        region_code=v[:6],
        birth_date=date(int(v[6:10]), int(v[10:12]), int(v[12:14])),
        sex="M" if int(v[16]) % 2 == 1 else "F",
    )


def make(region_code: str, birth_date: date, sequence: int) -> str:
    """Build a valid number from its parts (sequence 0..999; odd last digit = male)."""
    if len(region_code) != 6 or not region_code.isdigit():
        raise InvalidIdNumber(f"region code must be 6 digits, got {region_code!r}")
    if not 0 <= sequence <= 999:
        raise InvalidIdNumber(f"sequence must be 0..999, got {sequence}")
    first17 = f"{region_code}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)
