"""The chaos run's live callers (benchmarks/chaos.py): agents who answer the phone, a watch for
callers left waiting while an agent is free, and the counts that say nothing was lost or done
twice.

A share of the simulated callers press 4 and wait in line (benchmarks/chaos_flow.yaml): some
until an agent answers, some hang up while waiting, some press 1 for a callback that keeps
their place. Two Korean-speaking agents work the line: a thread per agent plays their phone
for every call the line places through the stand-in (a caller from the line, or a callback),
answers most of them and lets every third ring for a caller ring out; an agent the line then
sets away makes themselves available again through the JSON API a moment later, as a person
would. The second agent also takes a break (away) in the middle of the traffic. The line's P1
level (the queue node's) is made short: answered within 20 s, overflow after 25 s, rings of
10 s, and agents wrap up 4 s after each call, so callers queue up and some overflow.

Counted from SQL and the callers afterwards:

- live callers, bridged (answered), abandoned, turned into callbacks, overflowed;
- lost: a live call not in a final state once the run has converged (waiting, offered,
  bridged), one the reconciler had to close as lost, a caller who waited in a line that has
  no record of them, or a caller seen waiting at least `STUCK_SECONDS` while an agent who
  speaks their language had been free that long;
- duplicated: a caller bridged twice (two conversations in SQL, or two conferences heard by
  the caller), an agent rung twice at once (their rings and callback attempts overlap in
  SQL), or a ring started for a call already bridged.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger("chaos")

ROOT = Path(__file__).resolve().parent.parent
QUEUE_KINDS = ("queue", "queue_hangup", "queue_callback")
"""Callers who wait in line: until answered, hanging up after a few passes, pressing 1."""
WAIT_PACE = 0.5
"""Real seconds between passes of a waiting caller's hold loop."""
MAX_WAIT_PASSES = 400
"""Passes before a simulated caller gives up (the line's max wait overflows them first)."""
STUCK_SECONDS = 15.0
"""A caller seen waiting this long while a qualified agent was free this long is stuck."""
WATCH_EVERY = 2.0
AGENTS = (("chaos.agent", "Chaos Agent", "+493012345690"),
          ("chaos.agent2", "Second Agent", "+493012345691"))
"""User name, name and phone of the line's agents (both speak Korean, both progressive)."""
LIVE_TARGET = "20s"
LIVE_MAX_WAIT = "25s"
RING_SECONDS = 10
WRAP_UP_SECONDS = 4
"""Agents wrap up this long after each call, so callers queue up now and then."""


def queue_script(kind: str, rng: random.Random) -> list[str]:
    """What a caller who waits in line does: key 4, then wait (until answered), or hang up or
    press 1 at once or after a few passes of the hold loop (if nobody answered by then)."""
    passes = rng.randint(0, 4)
    wait = [f"wait:{passes}"] if passes else []
    if kind == "queue_hangup":
        return ["4", *wait, "hangup"]
    if kind == "queue_callback":
        return ["4", *wait, "1", "1"]
    return ["4"]


def chaos_priorities(workdir: Path) -> Path:
    """The shipped priorities with a short P1 line (the chaos line's queue node) and short
    rings, so waits, overflows and unanswered rings happen within a short run."""
    shipped = (ROOT / "flows" / "priorities.yaml").read_text(encoding="utf-8")
    text = (shipped.replace("P1: {target: 60s, max_wait: 5m}",
                            f"P1: {{target: {LIVE_TARGET}, max_wait: {LIVE_MAX_WAIT}}}")
            .replace("ring_seconds: 20", f"ring_seconds: {RING_SECONDS}"))
    if text == shipped:
        raise RuntimeError("flows/priorities.yaml changed: the chaos run's live levels no "
                           "longer apply")
    path = workdir / "priorities.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class AgentDesk:
    """One agent at their phone: answers what rings (mostly), and comes back when set away."""

    def __init__(self, standin: Any, base_url: str, phone: str, token: str,
                 auth_token: str, seed: int,
                 break_between: tuple[float, float] | None = None) -> None:
        self.standin = standin
        self.base_url = base_url
        self.phone = phone
        self.token = token
        self.auth_token = auth_token
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.seen: set[str] = set()
        self.played = Counter[str]()
        self.came_back = 0
        self.live_rings = 0
        self.break_between = break_between
        """Seconds after the start when the agent goes away for a break, and comes back."""
        self.breaks = 0
        self.lock = threading.Lock()

    def _answer(self, call: Any) -> None:
        from ivr.simulator.outbound import play_outbound_call

        live = "/dialer/live/agent" in (call.url or "")
        with self.lock:
            if live:
                self.live_rings += 1
            answers = self.live_rings % 3 != 2  # the 2nd, 5th, ... ring for a caller rings out
            caller = self.random.choices(("completed", "no-answer"), weights=(9, 1))[0]
            stay = self.random.uniform(1.5, 2.5)
        time.sleep(0.3)  # the phone rings
        try:
            if live:  # a caller from the line: the agent picks up, or lets it ring out
                outcome = "live" if answers else "live-no-answer"
                play_outbound_call(call, self.auth_token, agent="answer" if answers
                                   else "no-answer", talk_seconds=30, stay_seconds=stay,
                                   standin_url=self.standin.url)
            else:  # a callback: the agent picks up, the caller answers or not
                outcome = f"callback-{caller}"
                play_outbound_call(call, self.auth_token, caller=caller,  # type: ignore[arg-type]
                                   talk_seconds=30, standin_url=self.standin.url)
            with self.lock:
                self.played[outcome] += 1
        except Exception:
            log.exception("agent phone %s failed on %s", self.phone, call.sid)
            with self.lock:
                self.played["error"] += 1

    def _keep_availability(self, session: requests.Session, on_break: bool) -> None:
        """Away during a break (once off the phone); otherwise an agent the line set away
        (a ring they missed) is ready again a moment later."""
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            me = session.get(f"{self.base_url}/api/v1/me", headers=headers, timeout=10)
            state = me.json().get("availability") if me.status_code == 200 else None
            wanted = "away" if on_break else "available"
            if state not in ("away", "available") or state == wanted:
                return  # on a call or wrapping up: the line moves them on
            if not on_break:
                time.sleep(1.0)
            answer = session.put(f"{self.base_url}/api/v1/me/availability", headers=headers,
                                 json={"availability": wanted}, timeout=10)
            if answer.status_code == 200:
                self.breaks += on_break
                self.came_back += not on_break
        except (requests.RequestException, ValueError):
            pass  # the web server is busy or a fault is on: try again in a moment

    def run(self) -> threading.Thread:
        """Watch the stand-in for calls to this agent's phone until stopped."""
        def loop() -> None:
            session = requests.Session()
            started, checked = time.monotonic(), 0.0
            while not self.stop.wait(0.2):
                for call in self.standin.calls():
                    if call.to == self.phone and call.sid not in self.seen:
                        self.seen.add(call.sid)
                        threading.Thread(target=self._answer, args=(call,), daemon=True).start()
                if time.monotonic() - checked >= 1.0:
                    checked = time.monotonic()
                    since = checked - started
                    on_break = (self.break_between is not None
                                and self.break_between[0] <= since < self.break_between[1])
                    self._keep_availability(session, on_break)
            session.close()

        thread = threading.Thread(target=loop, name=f"agent {self.phone}", daemon=True)
        thread.start()
        return thread


_STUCK = """
SELECT c.id FROM live_calls c
 WHERE c.status = 'waiting' AND c.entered_at < now() - make_interval(secs => %(after)s)
   AND EXISTS (
       SELECT 1 FROM agents a
        WHERE a.active AND a.phone <> '' AND a.availability = 'available'
          AND a.availability_since < now() - make_interval(secs => %(after)s)
          AND (c.language = '' OR EXISTS (
              SELECT 1 FROM agent_skills s WHERE s.agent_id = a.id AND s.kind = 'language'
                 AND s.code = c.language)))
"""


class StuckWatch:
    """Samples SQL for callers left waiting while a qualified agent is free."""

    def __init__(self, database_url: str, seconds: float = STUCK_SECONDS) -> None:
        self.database_url = database_url
        self.seconds = seconds
        self.stop = threading.Event()
        self.since: dict[int, float] = {}
        self.stuck: dict[int, float] = {}
        """Live call id -> the longest time it was seen stuck."""
        self.samples = 0

    def sample(self) -> None:
        """One look: callers stuck now, and how long each has been (seen continuously)."""
        import psycopg

        from benchmarks.chaos_stack import psycopg_dsn

        try:
            with psycopg.connect(psycopg_dsn(self.database_url), connect_timeout=3) as conn:
                found = {row[0] for row in conn.execute(_STUCK, {"after": self.seconds})}
        except psycopg.Error:
            return  # a fault cut the connection: the next sample looks again
        now = time.monotonic()
        self.samples += 1
        self.since = {call_id: self.since.get(call_id, now) for call_id in found}
        for call_id, first in self.since.items():
            if now - first >= self.seconds:
                self.stuck[call_id] = max(self.stuck.get(call_id, 0.0), now - first)

    def run(self) -> threading.Thread:
        """Sample every few seconds until stopped."""
        def loop() -> None:
            while not self.stop.wait(WATCH_EVERY):
                self.sample()

        thread = threading.Thread(target=loop, name="stuck-watch", daemon=True)
        thread.start()
        return thread


@dataclass
class LiveCounts:
    """The live callers' side of the chaos report."""

    callers: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    bridged: int = 0
    abandoned: int = 0
    to_callback: int = 0
    overflowed: int = 0
    offers: int = 0
    offers_by_outcome: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    duplicated: int = 0
    detail: dict[str, int] = field(default_factory=dict)
    """Each kind of loss and duplicate, and the agents' side (rings played, came back)."""


def _overlaps(intervals: list[tuple[datetime, datetime]]) -> int:
    """Intervals that start before an earlier one has ended."""
    overlapping, latest_end = 0, None
    for start, end in sorted(intervals):
        if latest_end is not None and start < latest_end:
            overlapping += 1
        latest_end = end if latest_end is None else max(latest_end, end)
    return overlapping


def count_live(conn: Any, results: list[Any], watch: StuckWatch,
               desks: list[AgentDesk]) -> LiveCounts:
    """The live callers' counts from SQL (`conn`: psycopg), the callers and the agents."""
    counts = LiveCounts()
    calls = conn.execute("SELECT id, call_sid, status, answered_at FROM live_calls").fetchall()
    counts.callers = len(calls)
    statuses = Counter(status for _, _, status, _ in calls)
    counts.by_status = dict(statuses)
    counts.bridged = sum(1 for *_, answered in calls if answered is not None)
    counts.abandoned = statuses["abandoned"]
    counts.to_callback = statuses["to_callback"]
    counts.overflowed = statuses["overflowed"]

    offers = conn.execute("SELECT live_call_id, agent_id, stage, started_at, answered_at, "
                          "coalesce(ended_at, now()) FROM live_offers").fetchall()
    counts.offers = len(offers)
    counts.offers_by_outcome = dict(Counter(stage for _, _, stage, *_ in offers))
    completed: dict[int, list[datetime]] = defaultdict(list)
    for call_id, _, stage, _, answered_at, _ in offers:
        if stage == "completed":
            completed[call_id].append(answered_at)
    bridged_twice_sql = sum(1 for times in completed.values() if len(times) > 1)
    offer_after_bridge = sum(
        1 for call_id, _, _, started_at, _, _ in offers
        if any(answered is not None and answered < started_at
               for answered in completed.get(call_id, [])))
    busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for _, agent_id, _, started_at, _, ended_at in offers:
        busy[agent_id].append((started_at, ended_at))
    for agent_id, started_at, ended_at in conn.execute(
            "SELECT agent_id, started_at, coalesce(ended_at, now()) FROM callback_attempts "
            "WHERE agent_id IS NOT NULL").fetchall():
        busy[agent_id].append((started_at, ended_at))
    rung_twice = sum(_overlaps(intervals) for intervals in busy.values())

    in_line = {sid for _, sid, _, _ in calls}
    waited = [r for r in results if r.kind in QUEUE_KINDS and r.enqueued]
    missing = sum(1 for r in waited if r.call_sid not in in_line)
    conferences_twice = sum(1 for r in waited if r.conferences > 1)
    not_final = sum(statuses[s] for s in ("waiting", "offered", "bridged"))
    counts.detail = {
        "not_final": not_final, "closed_lost": statuses["lost"], "missing": missing,
        "stuck_with_a_free_agent": len(watch.stuck), "stuck_samples": watch.samples,
        "bridged_twice": bridged_twice_sql, "conferences_twice": conferences_twice,
        "agent_rung_twice_at_once": rung_twice, "offer_after_bridge": offer_after_bridge,
        "agents_came_back": sum(desk.came_back for desk in desks),
        "agents_breaks": sum(desk.breaks for desk in desks),
        **{f"agent_{outcome}": n for outcome, n in
           sum((desk.played for desk in desks), Counter[str]()).items()},
    }
    counts.lost = not_final + statuses["lost"] + missing + len(watch.stuck)
    counts.duplicated = bridged_twice_sql + conferences_twice + rung_twice + offer_after_bridge
    return counts
