"""Loops in a flow's graph of nodes: the simple cycles worth reporting, found without recursion."""

from __future__ import annotations

from collections import deque

MAX_LOOPS_REPORTED = 20
MAX_LOOP_STEPS = 20_000  # bounds the cycle search on pathological graphs


def loops(nodes: list[str], graph: dict[str, list[str]]) -> list[list[str]]:
    """Simple cycles, each once, starting at its node that comes first in `nodes`.

    Enumeration is capped; every tangle of nodes still gets at least one cycle reported.
    """
    order = {node_id: index for index, node_id in enumerate(nodes)}
    cycles: list[list[str]] = []
    budget = [MAX_LOOP_STEPS]
    for component in _strongly_connected(nodes, graph):
        members = set(component)
        first = min(component, key=order.__getitem__)
        if len(component) == 1 and first not in graph[first]:
            continue
        found = [
            cycle
            for start in sorted(component, key=order.__getitem__)
            for cycle in _cycles_from(start, graph, members, order, budget)
        ]
        cycles.extend(found or [_shortest_cycle(first, graph, members)])
    return cycles[:MAX_LOOPS_REPORTED]


def _cycles_from(
    start: str,
    graph: dict[str, list[str]],
    members: set[str],
    order: dict[str, int],
    budget: list[int],
) -> list[list[str]]:
    """Simple cycles through `start` whose other nodes come later in `order`."""
    cycles: list[list[str]] = []
    path = [start]
    pending = [iter(graph[start])]
    while pending and budget[0] > 0:
        budget[0] -= 1
        target = next(pending[-1], None)
        if target is None:
            pending.pop()
            path.pop()
        elif target == start:
            cycles.append(list(path))
        elif target in members and order[target] > order[start] and target not in path:
            path.append(target)
            pending.append(iter(graph[target]))
    return cycles


def _shortest_cycle(start: str, graph: dict[str, list[str]], members: set[str]) -> list[str]:
    """A shortest cycle from `start` back to itself inside one strongly connected set."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for target in graph[current]:
            if target == start:
                cycle = [current]
                while cycle[-1] != start:
                    cycle.append(came_from[cycle[-1]])
                return cycle[::-1]
            if target in members and target not in came_from:
                came_from[target] = current
                queue.append(target)
    return [start]


def _strongly_connected(nodes: list[str], graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Kosaraju, without recursion)."""
    finished: list[str] = []
    seen: set[str] = set()
    for root in nodes:
        if root in seen:
            continue
        seen.add(root)
        pending = [(root, iter(graph[root]))]
        while pending:
            node_id, successors = pending[-1]
            target = next(successors, None)
            if target is None:
                finished.append(node_id)
                pending.pop()
            elif target not in seen:
                seen.add(target)
                pending.append((target, iter(graph[target])))
    reverse: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for node_id in nodes:
        for target in graph[node_id]:
            reverse[target].append(node_id)
    components: list[list[str]] = []
    assigned: set[str] = set()
    for root in reversed(finished):
        if root in assigned:
            continue
        component, stack = [], [root]
        assigned.add(root)
        while stack:
            node_id = stack.pop()
            component.append(node_id)
            for source in reverse[node_id]:
                if source not in assigned:
                    assigned.add(source)
                    stack.append(source)
        components.append(component)
    return components
