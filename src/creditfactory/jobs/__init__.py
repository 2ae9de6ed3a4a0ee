"""Batch runtime: the business date, job runs keyed by (job, business date, partition), and the
end-of-day orchestrator over steps that domains register."""

from creditfactory.jobs.business_date import (
    BusinessDateNotOpen,
    business_date_ahead,
    close_and_open,
    current_business_date,
    open_business_date,
)
from creditfactory.jobs.eod import EodReport, EodStep, StepContext, StepResult, registry, run_eod, status
from creditfactory.jobs.store import JobRun, JobStatus

__all__ = [
    "BusinessDateNotOpen",
    "EodReport",
    "EodStep",
    "JobRun",
    "JobStatus",
    "StepContext",
    "StepResult",
    "business_date_ahead",
    "close_and_open",
    "current_business_date",
    "open_business_date",
    "registry",
    "run_eod",
    "status",
]
