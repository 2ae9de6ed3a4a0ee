"""Commands whose modules are imported only when they run.

The root command lists every domain's commands. Importing their modules (and through them the
services, SQLAlchemy's mappers, Polars, PyArrow, the decision engine, ...) to print a list of
names would cost seconds at every ``creditfactory --help``. A :class:`Lazy` entry names the
command, its one-line help and a loader; the group shows the line as it is and calls the
loader the first time the command itself is wanted: to run it, to show its own help, or to
complete its arguments. A test checks each line against the loaded command's own help.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

try:  # the Click that Typer uses: its own copy from Typer 0.2x on, Click itself before
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older Typer
    from click.exceptions import UsageError

_LISTING = "creditfactory.cli.listing"


@dataclass(frozen=True)
class Lazy:
    """A command of the root, loaded on first use. ``load`` returns a Typer app (a group of
    commands) or a command function."""

    name: str
    help: str
    load: Callable[[], Any]
    group: bool = True


def command_of(name: str, loaded: Any) -> Any:
    """The Click command Typer makes of ``loaded`` (a Typer app, or a function) under ``name``,
    as ``add_typer`` or ``command`` on the root would: a Typer app stays a group even with one
    command."""
    holder = typer.Typer(add_completion=False)  # completion is the root's option only
    if isinstance(loaded, typer.Typer):
        holder.add_typer(loaded, name=name)
        return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
    holder.command(name)(loaded)
    return typer.main.get_command(holder)


class LazyGroup(TyperGroup):
    """A Typer group with :class:`Lazy` commands beside its own (``lazy``, set by a subclass).
    Listed after the group's own commands of the same kind (commands, then groups)."""

    lazy: ClassVar[tuple[Lazy, ...]] = ()

    def _entry(self, name: str) -> Lazy | None:
        return next((e for e in self.lazy if e.name == name), None)

    def list_commands(self, ctx: Any) -> list[str]:
        own = [n for n in self.commands if n not in {e.name for e in self.lazy}]
        groups = [n for n in own if isinstance(self.commands[n], TyperGroup)]
        plain = [n for n in own if n not in groups]
        return (
            plain
            + [e.name for e in self.lazy if not e.group]
            + groups
            + [e.name for e in self.lazy if e.group]
        )

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if found is not None:
            return found
        entry = self._entry(cmd_name)
        if entry is None:
            return None
        if ctx.meta.get(_LISTING):
            # named in a list only: its line of help, without importing it
            return TyperCommand(name=cmd_name, help=entry.help)
        loaded = command_of(cmd_name, entry.load())
        self.commands[cmd_name] = loaded
        return loaded

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            # the suggestions Typer makes from the group's own commands, the lazy ones too
            if self.suggest_commands and args and "Did you mean" not in exc.message:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    suggestions = ", ".join(f"{m!r}" for m in matches)
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta.pop(_LISTING, None)

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        ctx.meta[_LISTING] = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            ctx.meta.pop(_LISTING, None)
