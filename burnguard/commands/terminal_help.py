"""The command line's help as a terminal user reads it: two corrections to typer's rich help.

typer 0.29 renders help in two ways, and its rich panels (the default with Rich installed) differ
from its own plain formatter (``TyperOption.get_help_record``) in two places:

- a flag (``--quiet``, ``--to-kafka``, ``--incidents/--no-incidents``, ``--help``) shows a
  ``<bool>`` placeholder, as if it took a value; the plain formatter shows none
  (``if not self.is_flag and not self.count``), and neither does click;
- a required argument appears on the usage line as ``{events}``, an optional one as ``[events]``;
  click writes ``EVENTS`` and ``[EVENTS]``, the convention every man page follows.

Both are undone here, once, for every command (``tests/cli/test_help.py`` walks them all and shows
the placeholders coming back if this module is not imported). No upstream issue was found for
either; drop this module when typer's rich panels agree with its plain formatter.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

__all__ = ["install"]

_installed = False


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None  # a flag takes no value: nothing to show after its name
    return _option_type(self, ctx)


def _usage_name(self: TyperArgument) -> str:
    name = (self.metavar or self.name or "").upper()
    if not self.required:
        name = f"[{name}]"
    if self.nargs != 1:
        name += "..."
    return name


_option_type = TyperOption.display_type_rich


def install() -> None:
    """Apply both corrections (idempotent)."""
    global _installed
    if _installed:
        return
    TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]
    TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign]
    _installed = True
