"""What every command shares: the container (built once, on first use), the console, JSON output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from creditfactory.config import Settings
from creditfactory.errors import DomainError

if TYPE_CHECKING:  # the container's modules are imported by the first command that needs them
    from creditfactory.bootstrap import Container


@dataclass
class CliState:
    settings: Settings | None = None
    _container: Container | None = None
    console: Console = field(default_factory=lambda: Console(stderr=False, highlight=False))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))

    @property
    def container(self) -> Container:
        if self._container is None:
            from creditfactory.bootstrap import build

            self._container = build(self.settings or Settings())
        return self._container

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = CliState()
    obj: CliState = root.obj
    return obj


def emit_json(payload: dict[str, Any]) -> None:
    """The one JSON line a ``--json`` command ends with."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def fail(err: Console, exc: DomainError | Exception, *, code: int = 2) -> typer.Exit:
    message = exc.message if isinstance(exc, DomainError) else str(exc)
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)
