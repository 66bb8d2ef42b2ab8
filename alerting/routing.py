"""The route tree: which receivers, with which grouping and timers, an anomaly goes to.

Alertmanager's semantics: a node that matches tries its children in order; a matching child ends
the search unless it has ``continue: true``; a matching node none of whose children match is itself
the destination. The root matches everything, so every anomaly has at least the default route.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from alerting.config import RouteConfig

__all__ = ["DEFAULT_GROUP_BY", "Route", "RouteTree"]

DEFAULT_GROUP_BY = ("workflow", "detector")


@dataclass(frozen=True)
class Route:
    """A resolved node: inherited settings filled in. ``route_id`` is its path, e.g. ``root.0.1``."""

    route_id: str
    config: RouteConfig
    receiver: str
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    children: tuple[Route, ...]

    def match(self, labels: dict[str, str]) -> list[Route]:
        if not self.config.matches(labels):
            return []
        found: list[Route] = []
        for child in self.children:
            matched = child.match(labels)
            found.extend(matched)
            if matched and not child.config.continue_:
                break
        return found or [self]


def _resolve(node: RouteConfig, parent: Route | None, route_id: str) -> Route:
    def pick(value: float | None, inherited: float | None, default: float) -> float:
        return float(value if value is not None else inherited if inherited is not None else default)

    partial = Route(
        route_id=route_id,
        config=node,
        receiver=node.receiver or (parent.receiver if parent else ""),
        group_by=node.group_by if node.group_by is not None else parent.group_by if parent else DEFAULT_GROUP_BY,
        group_wait=pick(node.group_wait, parent.group_wait if parent else None, 30.0),
        group_interval=pick(node.group_interval, parent.group_interval if parent else None, 300.0),
        repeat_interval=pick(node.repeat_interval, parent.repeat_interval if parent else None, 4 * 3600.0),
        children=(),
    )
    children = tuple(_resolve(child, partial, f"{route_id}.{i}") for i, child in enumerate(node.routes))
    return dataclasses.replace(partial, children=children)


class RouteTree:
    """The resolved tree.

    >>> tree = RouteTree(RouteConfig(receiver="team", routes=(
    ...     RouteConfig(match={"severity": "critical"}, receiver="oncall", group_wait=0),)))
    >>> [(r.route_id, r.receiver, r.group_wait) for r in tree.match({"severity": "critical"})]
    [('root.0', 'oncall', 0.0)]
    >>> [r.receiver for r in tree.match({"severity": "warning"})]
    ['team']
    """

    def __init__(self, root: RouteConfig) -> None:
        self.root = _resolve(root, None, "root")

    def match(self, labels: dict[str, str]) -> list[Route]:
        return self.root.match(labels)
