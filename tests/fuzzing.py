"""The loop the API fuzz tests share: each operation's generated requests (schemathesis),
aimed and sent with a fresh ``Idempotency-Key``, none of which may end in a server error."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

#: Generated requests an operation and mode; ``CREDITFACTORY_FUZZ_EXAMPLES=500`` searches harder.
EXAMPLES = int(os.environ.get("CREDITFACTORY_FUZZ_EXAMPLES", "5"))


def fuzz(
    operations: Iterable[Any],
    mode: schemathesis.GenerationMode,
    *,
    aim: Callable[[schemathesis.Case], schemathesis.Case],
    token: Callable[[schemathesis.Case], str],
    after: Callable[[schemathesis.Response, schemathesis.Case], None] | None = None,
) -> list[str]:
    """Send each operation's sample, ``aim`` applied to each case, as the bearer of
    ``token(case)``; ``after`` sees each answer. Returns the operations with nothing to break
    (no parameters and no body: a schema-breaking sample of them cannot be made)."""
    unbreakable: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode).map(aim))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {token(case)}", "Idempotency-Key": uuid.uuid4().hex},
                checks=[not_a_server_error],
            )
            if after is not None:
                after(response, case)

        try:
            run()
        except Unsatisfiable:
            if mode != schemathesis.GenerationMode.NEGATIVE:
                raise
            unbreakable.append(f"{operation.method.upper()} {operation.path}")
    return unbreakable
