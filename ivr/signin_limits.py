"""Sign-in limits: a short, escalating wait per user name and a higher limit per address.

Every attempt is counted before its password is checked, in one atomic step (a Lua script in
Redis, a lock in this process without Redis), so parallel guesses cannot slip past the count:

- per user name: the first two attempts go through at once, then each further one waits 1, 2,
  4, 8 ... seconds (at most MAX_DELAY_SECONDS) after the one before; the user is told "wait N
  seconds". Nobody is locked out for long, a guesser gets a handful of tries a minute, and an
  admin can clear the wait at once (`unlock`). A successful sign-in clears it too.
- per client address: at most ADDRESS_LIMIT failed attempts in ADDRESS_WINDOW_SECONDS, high
  enough that colleagues behind one office address do not block each other.

Counts live in Redis when REDIS_URL is set (shared by every web process) and in this process
otherwise. When Redis does not answer, attempts are not limited (logged as a warning).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from callbacks.queues import redis_connection
from callbacks.workqueue.accounts import record
from callbacks.workqueue.agents import Agent

FREE_ATTEMPTS = 2
"""Attempts per user name that never wait (a typo, then the right password)."""
MAX_DELAY_SECONDS = 60
USER_WINDOW_SECONDS = 15 * 60
"""A user name's count is forgotten this long after its last attempt."""
ADDRESS_LIMIT = 50
ADDRESS_WINDOW_SECONDS = 15 * 60
MAX_NAME_LENGTH = 200
log = logging.getLogger(__name__)

# KEYS[1]: the user name's hash {n: attempts, next: when the next may start}. ARGV: now,
# free attempts, maximum delay, window. Returns {1, attempts} or {0, seconds to wait}.
_USER_ATTEMPT = """
local now = tonumber(ARGV[1])
local next_at = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if now < next_at then
  return {0, math.ceil(next_at - now)}
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local delay = 0
if n >= tonumber(ARGV[2]) then
  delay = math.min(2 ^ (n - tonumber(ARGV[2])), tonumber(ARGV[3]))
end
redis.call('HSET', KEYS[1], 'next', tostring(now + delay))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {1, n}
"""
# KEYS[1]: the address's counter. ARGV: limit, window. Returns {1, count} or {0, ttl}.
_ADDRESS_ATTEMPT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  return {0, math.max(redis.call('TTL', KEYS[1]), 1)}
end
count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return {1, count}
"""


@dataclass(frozen=True)
class Attempt:
    """The verdict on one sign-in attempt: check the password, or refuse for `wait` seconds."""

    wait: int = 0
    by_address: bool = False

    @property
    def allowed(self) -> bool:
        """Whether the password may be checked now."""
        return self.wait == 0

    def message(self) -> str:
        """What the person signing in is told when refused."""
        if self.by_address:
            minutes = max(1, math.ceil(self.wait / 60))
            return (f"Too many failed sign-in attempts from this network. Please wait {minutes} "
                    f"minute{'s' if minutes != 1 else ''} and try again.")
        return (f"Too many failed sign-in attempts. Please wait {self.wait} "
                f"second{'s' if self.wait != 1 else ''} and try again, or ask an admin to "
                "unlock your account.")


@dataclass(frozen=True)
class SignInState:
    """A user name's sign-in count as admins see it."""

    attempts: int
    wait: int

    @property
    def slowed(self) -> bool:
        """Whether the next attempt has to wait."""
        return self.wait > 0


def delay_after(attempts: int) -> int:
    """Seconds the next attempt waits after `attempts` counted ones: 0, 0, 1, 2, 4, ... 60."""
    if attempts < FREE_ATTEMPTS:
        return 0
    return int(min(2 ** (attempts - FREE_ATTEMPTS), MAX_DELAY_SECONDS))


def user_key(username: str) -> str:
    """The counter key of a user name (case and surrounding spaces do not matter)."""
    return f"signin:user:{username.strip().lower()[:MAX_NAME_LENGTH]}"


def address_key(address: str | None) -> str:
    """The counter key of a client address."""
    return f"signin:ip:{address or 'unknown'}"


def begin_attempt(username: str, address: str | None) -> Attempt:
    """Count a sign-in attempt before its password is checked; refused attempts count nothing."""
    store = _store()
    refused = store.address_attempt(address_key(address))
    if refused:
        return Attempt(refused, by_address=True)
    wait = store.user_attempt(user_key(username))
    if wait:
        store.address_release(address_key(address))  # not checked: not a failure
    return Attempt(wait)


def succeeded(username: str, address: str | None) -> None:
    """A right password: the user name starts afresh and the address is not charged for it."""
    store = _store()
    store.clear(user_key(username))
    store.address_release(address_key(address))


def unlock(username: str) -> None:
    """An admin clears a user name's wait (its address counts stay)."""
    _store().clear(user_key(username))


def state_of(username: str) -> SignInState:
    """How many attempts a user name has made recently and how long its next one waits."""
    return _store().user_state(user_key(username))


def states_of(usernames: list[str]) -> dict[str, SignInState]:
    """`state_of` for many user names (the admin's agent list)."""
    store = _store()
    return {name: store.user_state(user_key(name)) for name in usernames}


# --- where the counts live ----------------------------------------------------------------


class MemoryCounts:
    """The counts in this process (no Redis): the same rules under one lock."""

    def __init__(self) -> None:
        """Start with no counts."""
        self._lock = threading.Lock()
        self._users: dict[str, tuple[int, float, float]] = {}  # n, next attempt, forget at
        self._addresses: dict[str, tuple[int, float]] = {}  # count, forget at

    def user_attempt(self, key: str) -> int:
        """Count an attempt of a user name: 0, or the seconds it has to wait first."""
        now = time.monotonic()
        with self._lock:
            self._forget_old(now)
            attempts, next_at, _ = self._users.get(key, (0, 0.0, 0.0))
            if now < next_at:
                return math.ceil(next_at - now)
            attempts += 1
            self._users[key] = (attempts, now + delay_after(attempts),
                                now + USER_WINDOW_SECONDS)
            return 0

    def address_attempt(self, key: str) -> int:
        """Count an attempt from an address: 0, or the seconds until it may try again."""
        now = time.monotonic()
        with self._lock:
            count, forget_at = self._addresses.get(key, (0, now + ADDRESS_WINDOW_SECONDS))
            if forget_at <= now:
                count, forget_at = 0, now + ADDRESS_WINDOW_SECONDS
            if count >= ADDRESS_LIMIT:
                return max(1, math.ceil(forget_at - now))
            self._addresses[key] = (count + 1, forget_at)
            return 0

    def address_release(self, key: str) -> None:
        """Take back one attempt of an address (it was not a failure)."""
        with self._lock:
            count, forget_at = self._addresses.get(key, (0, 0.0))
            if count > 0:
                self._addresses[key] = (count - 1, forget_at)

    def clear(self, key: str) -> None:
        """Forget a user name's count."""
        with self._lock:
            self._users.pop(key, None)

    def user_state(self, key: str) -> SignInState:
        """A user name's count and wait."""
        now = time.monotonic()
        with self._lock:
            attempts, next_at, forget_at = self._users.get(key, (0, 0.0, 0.0))
        if forget_at <= now:
            return SignInState(0, 0)
        return SignInState(attempts, max(0, math.ceil(next_at - now)))

    def _forget_old(self, now: float) -> None:
        if len(self._users) > 10_000:
            self._users = {k: v for k, v in self._users.items() if v[2] > now}
        if len(self._addresses) > 10_000:
            self._addresses = {k: v for k, v in self._addresses.items() if v[1] > now}


class RedisCounts:
    """The counts in Redis, shared by every web process; Redis errors fail open."""

    def __init__(self, url: str) -> None:
        """Talk to the Redis at `url`."""
        self.connection = redis_connection(url)

    def user_attempt(self, key: str) -> int:
        """Count an attempt of a user name: 0, or the seconds it has to wait first."""
        result = self._run(_USER_ATTEMPT, key, time.time(), FREE_ATTEMPTS, MAX_DELAY_SECONDS,
                           USER_WINDOW_SECONDS)
        return 0 if result is None or int(result[0]) == 1 else int(result[1])

    def address_attempt(self, key: str) -> int:
        """Count an attempt from an address: 0, or the seconds until it may try again."""
        result = self._run(_ADDRESS_ATTEMPT, key, ADDRESS_LIMIT, ADDRESS_WINDOW_SECONDS)
        return 0 if result is None or int(result[0]) == 1 else int(result[1])

    def address_release(self, key: str) -> None:
        """Take back one attempt of an address (it was not a failure)."""
        try:
            if int(self.connection.decr(key)) < 0:
                self.connection.delete(key)
        except RedisError:
            log.warning("sign-in limits: Redis unavailable, address count not corrected")

    def clear(self, key: str) -> None:
        """Forget a user name's count."""
        try:
            self.connection.delete(key)
        except RedisError:
            log.warning("sign-in limits: Redis unavailable, count not cleared")

    def user_state(self, key: str) -> SignInState:
        """A user name's count and wait."""
        try:
            attempts, next_at = self.connection.hmget(key, ["n", "next"])
        except RedisError:
            return SignInState(0, 0)
        wait = math.ceil(float(next_at) - time.time()) if next_at else 0
        return SignInState(int(attempts or 0), max(0, wait))

    def _run(self, script: str, key: str, *args: Any) -> list[Any] | None:
        try:
            result: list[Any] = self.connection.eval(script, 1, key, *args)  # type: ignore[no-untyped-call]
        except RedisError:
            log.warning("sign-in limits: Redis unavailable, attempt not limited")
            return None
        return result


def _store() -> MemoryCounts | RedisCounts:
    """Redis when the app has one, else this process's counts."""
    url = current_app.config.get("REDIS_URL") or ""
    if url:
        return RedisCounts(url)
    counts = current_app.extensions.get("ivr.signin_limits")
    if counts is None:
        counts = current_app.extensions.setdefault("ivr.signin_limits", MemoryCounts())
    return counts


def unlock_account(session: Session, agent: Agent, by: str) -> None:
    """An admin (browser, API or CLI) clears the agent's sign-in wait; the history says so."""
    unlock(agent.username)
    record(session, agent, "unlocked", by)
