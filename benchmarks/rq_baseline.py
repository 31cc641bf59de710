"""The baseline job of benchmarks/queue.py's dialer run: rq's own cost per job, nothing else.

`noop` takes what a dial job takes (an agent id) and returns a dict like `route_agent` does, so
the two differ only in the work inside the job. It imports nothing, so the worker loads it at
once.
"""

from __future__ import annotations


def noop(agent_id: int) -> dict[str, object]:
    """Job: do nothing with `agent_id` and say so."""
    return {"agent": agent_id, "assigned": None}
