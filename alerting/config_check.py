"""Settings of a valid alerting config that can never take effect: the warnings of ``config validate``."""

from __future__ import annotations

from alerting.config import AlertingConfig, RouteConfig

__all__ = ["alerting_warnings"]


def alerting_warnings(cfg: AlertingConfig) -> list[tuple[str, str]]:
    """Receivers no route names (never notified) and child routes that can never be reached (an
    earlier sibling without matchers and without ``continue`` takes everything first)."""
    out: list[tuple[str, str]] = []
    used: set[str] = set()

    def walk(node: RouteConfig, where: str) -> None:
        if node.receiver is not None:
            used.add(node.receiver)
        catch_all = None
        for i, child in enumerate(node.routes):
            if catch_all is not None:
                out.append(
                    (
                        f"{where}.routes.{i}",
                        f"can never be reached: {where}.routes.{catch_all} has no match or match_re and no "
                        "continue, so it takes every anomaly first",
                    )
                )
            elif child.empty and not child.continue_:
                catch_all = i
            walk(child, f"{where}.routes.{i}")

    walk(cfg.route, "route")
    for i, receiver in enumerate(cfg.receivers):
        if receiver.name not in used:
            out.append((f"receivers.{i}", f"{receiver.name!r} is named by no route, so it is never notified"))
    return out
