"""What ``burnguard kill list`` and ``kill show`` print: one line per proposal that fits the terminal,
and every detail of one proposal. Plain text, no table: a line is never wrapped, and the id on it
is what ``kill approve|deny|show`` accept."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from burnguard.commands.lines import cut, fit_columns
from schemas.timefmt import format_ts
from streams.killswitch_proposals import short_ids
from streams.killswitch_records import KillProposal, ProposalStatus

__all__ = ["detail_lines", "list_lines", "status_of"]

#: the longest target shown on a line (characters; `kill show` gives it whole)
MAX_TARGET = 32


def status_of(p: KillProposal, now: float) -> str:
    """``pending``, ``expired`` (pending past its expiry), ``approved`` or ``denied``."""
    if p.status is ProposalStatus.PENDING and now >= p.expires_at:
        return "expired"
    return p.status.value


def _when(ts: float, now: float | None = None) -> str:
    """``MM-DD HH:MM`` in UTC, or ``HH:MM`` on the same UTC day as ``now``."""
    text = format_ts(ts)
    if now is not None and text[:10] == format_ts(now)[:10]:
        return text[11:16]
    return text[5:16].replace("T", " ")


def _short_reason(p: KillProposal) -> str:
    """The reason without the words naming the target, which the line shows already:
    ``code-fix task T1 spent $12 of …`` -> ``spent $12 of …``."""
    text = " ".join(p.reason.split())
    named = re.match(rf"(?:[\w.-]+ )?[Tt]ask {re.escape(p.target.key)}(?: in [\w.-]+)? ", text)
    return text[named.end() :] if named else text


def _target(p: KillProposal) -> str:
    return f"{p.target.scope.value} {p.target.key}"


def list_lines(
    shown: Iterable[KillProposal], every_id: list[str], now: float, width: int, *, with_status: bool
) -> list[str]:
    """A header and one line per proposal, each at most ``width`` characters: the shortest unique
    id (among ``every_id``, all the ids on the topic), target (the scope in the header when all
    share it), detector, proposed (UTC; the time alone today), status with ``with_status``, and the
    reason cut to what is left."""
    shown = list(shown)
    ids = short_ids(every_id)
    scopes = {p.target.scope.value for p in shown}
    one_scope = scopes.pop() if len(scopes) == 1 else None
    rows = [
        [
            ids.get(p.command_id, p.command_id),
            cut(p.target.key if one_scope else _target(p), MAX_TARGET),
            str(p.anomaly.get("detector", "")),
            _when(p.proposed_at, now),
            *([status_of(p, now)] if with_status else []),
            _short_reason(p),
        ]
        for p in shown
    ]
    header = ["id", one_scope or "target", "detector", "proposed", *(["status"] if with_status else []), "reason"]
    return fit_columns(header, rows, width)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def detail_lines(p: KillProposal, now: float) -> list[str]:
    """Every detail of one proposal, and the exact commands that decide it."""
    a = p.anomaly
    target = p.target.model_dump(mode="json", exclude_none=True)
    lines = [
        f"kill proposal {p.command_id}",
        f"  status      {status_of(p, now)}",
        f"  target      {_target(p)} ({', '.join(f'{k}={v}' for k, v in target.items() if k != 'scope')})",
        f"  detector    {a.get('detector', '')} ({a.get('severity', '')})",
        f"  anomaly     {p.anomaly_id}",
        f"  observed    {a.get('metric', '')} = {a.get('observed', '')} {a.get('unit', '')}".rstrip(),
        f"  event time  {format_ts(p.event_ts)}",
        f"  proposed    {format_ts(p.proposed_at)}",
        f"  expires     {format_ts(p.expires_at)}",
    ]
    if p.decided_at is not None:
        lines.append(f"  decided     {format_ts(p.decided_at)} by {p.decided_by or 'someone'}")
    lines += ["  reason", f"    {' '.join(p.reason.split())}"]
    evidence = a.get("evidence") or {}
    if evidence:
        lines.append("  evidence")
        lines += [f"    {k}: {_value(v)}" for k, v in evidence.items()]
    if status_of(p, now) == "pending":
        lines += [
            "  decide with",
            f"    burnguard kill approve {p.command_id} --by YOUR-NAME",
            f"    burnguard kill deny {p.command_id} --by YOUR-NAME",
        ]
    return lines
