"""The history calendar: ``months`` whole months ending with the month of ``as_of``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from creditfactory.sandbox.config import SandboxConfig
from creditfactory.sandbox.rand import day_number, month_first_day, month_number


@dataclass(frozen=True, slots=True)
class Timeline:
    as_of: int  # day number
    first_month: int  # month number of the first history month
    months: int
    start: np.ndarray  # day number of the first day of each history month
    end: np.ndarray  # day number of the last day of each history month
    calendar_month: np.ndarray  # 1..12 of each history month

    @classmethod
    def of(cls, config: SandboxConfig) -> Timeline:
        last = month_number(config.as_of)
        first = last - config.months + 1
        numbers = np.arange(first, last + 1, dtype=np.int64)
        start = month_first_day(numbers)
        end = month_first_day(numbers + 1) - 1
        return cls(
            as_of=day_number(config.as_of),
            first_month=first,
            months=config.months,
            start=start,
            end=end,
            calendar_month=numbers % 12 + 1,
        )

    @property
    def window_start(self) -> int:
        return int(self.start[0])

    def month_index(self, days: np.ndarray) -> np.ndarray:
        """History month index of each day number (negative before the window)."""
        months = (
            np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        )
        return months - self.first_month
