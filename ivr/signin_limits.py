"""Failed sign-in counters per user name and per client address, to slow password guessing.

After MAX_FAILURES failures within WINDOW_SECONDS for the same user name or the same address,
further attempts are refused before the password is checked. Counters live in Redis when
REDIS_URL is set (shared by every web process) and in this process otherwise (the demo).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from flask import current_app
from redis.exceptions import RedisError

from callbacks.queues import redis_connection

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
MAX_NAME_LENGTH = 200
log = logging.getLogger(__name__)


class MemoryCounters:
    """In-process counters with an expiry, for when there is no Redis."""

    def __init__(self) -> None:
        """Start with no counters."""
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def count(self, key: str) -> tuple[int, int]:
        """The failures counted under `key` and the seconds until they are forgotten."""
        with self._lock:
            count, expires = self._counts.get(key, (0, 0.0))
            left = expires - time.monotonic()
            if left <= 0:
                self._counts.pop(key, None)
                return 0, 0
            return count, math.ceil(left)

    def increment(self, key: str) -> None:
        """Count one more failure under `key` (a new window starts when none is open)."""
        now = time.monotonic()
        with self._lock:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, expires = self._counts.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + WINDOW_SECONDS
            self._counts[key] = (count + 1, expires)

    def clear(self, key: str) -> None:
        """Forget the failures under `key`."""
        with self._lock:
            self._counts.pop(key, None)


def user_key(username: str) -> str:
    """The counter key of a user name (case and surrounding spaces do not matter)."""
    return f"signin-fail:user:{username.strip().lower()[:MAX_NAME_LENGTH]}"


def address_key(address: str | None) -> str:
    """The counter key of a client address."""
    return f"signin-fail:ip:{address or 'unknown'}"


def blocked_for(username: str, address: str | None) -> int:
    """Seconds until a sign-in may be tried again for this name or address; 0 if it may now."""
    waits = [left for count, left in (_count(user_key(username)), _count(address_key(address)))
             if count >= MAX_FAILURES]
    return max(waits, default=0)


def record_failure(username: str, address: str | None) -> None:
    """Count a failed sign-in against the user name and the client address."""
    for key in (user_key(username), address_key(address)):
        _increment(key)


def record_success(username: str) -> None:
    """Clear the user name's failures after a successful sign-in."""
    key = user_key(username)
    url = current_app.config.get("REDIS_URL") or ""
    if not url:
        _memory().clear(key)
        return
    try:
        redis_connection(url).delete(key)
    except RedisError:
        log.warning("sign-in limits: Redis unavailable, counter not cleared")


def retry_message(seconds: int) -> str:
    """What someone who is blocked is told."""
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return (f"Too many failed sign-in attempts. Please wait {minutes} {unit} and try again, "
            "or ask an admin to reset your password.")


def _memory() -> MemoryCounters:
    """The app's in-process counters."""
    counters = current_app.extensions.get("ivr.signin_limits")
    if counters is None:
        counters = current_app.extensions.setdefault("ivr.signin_limits", MemoryCounters())
    return counters


def _count(key: str) -> tuple[int, int]:
    """(failures, seconds left) for `key`; (0, 0) when Redis cannot be asked (fail open)."""
    url = current_app.config.get("REDIS_URL") or ""
    if not url:
        return _memory().count(key)
    try:
        pipe = redis_connection(url).pipeline()
        pipe.get(key)
        pipe.ttl(key)
        raw, ttl = pipe.execute()
    except RedisError:
        log.warning("sign-in limits: Redis unavailable, attempt not limited")
        return 0, 0
    return int(raw or 0), max(int(ttl), 1) if raw else 0


def _increment(key: str) -> None:
    """INCR `key` and make sure it expires at the end of its window."""
    url = current_app.config.get("REDIS_URL") or ""
    if not url:
        _memory().increment(key)
        return
    try:
        connection = redis_connection(url)
        pipe = connection.pipeline()
        pipe.incr(key)
        pipe.ttl(key)
        _, ttl = pipe.execute()
        if int(ttl) < 0:  # new key (or one left without expiry): start the window
            connection.expire(key, WINDOW_SECONDS)
    except RedisError:
        log.warning("sign-in limits: Redis unavailable, failure not counted")
