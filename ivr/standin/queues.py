"""Twilio's call queues at the stand-in: the Queue and Member resources, first in, first out.

A queue is made by `client.queues.create` or on demand when a simulated caller reaches
`<Enqueue>` (the simulator registers it under /_standin/queues/...). A member leaves the queue
when the line dequeues it (Member update with a `Url`, or a call update of the waiting call),
or when the simulator reports that the caller hung up or met `<Leave>`. How a member was
dequeued is kept for the simulator, which then follows the URL like Twilio would.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ivr.standin.shapes import API_PREFIX, BAD_PARAMETER, new_sid, rfc2822

MAX_NAME_LENGTH: Final = 64
DEFAULT_MAX_SIZE: Final = 1000
MAX_MAX_SIZE: Final = 5000
FRONT: Final = "Front"
"""The member name Twilio gives the caller at the front of a queue."""


class QueueError(ValueError):
    """A queue request Twilio would refuse: `status` and `code` of the error body."""

    def __init__(self, message: str, status: int = 400, code: int = BAD_PARAMETER) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class QueueMember:
    """A call waiting in a queue."""

    call_sid: str
    queue_sid: str
    enqueued_at: datetime


@dataclass(frozen=True)
class Departure:
    """How a call left its queue because of the line: the URL or TwiML it goes on with."""

    call_sid: str
    queue_sid: str
    position: int
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    hangup: bool = False


@dataclass
class StandinQueue:
    """One call queue of the account."""

    sid: str
    friendly_name: str
    max_size: int
    created_at: datetime
    updated_at: datetime
    members: list[QueueMember] = field(default_factory=list)


class QueueFull(QueueError):
    """The queue holds `max_size` calls already (Twilio's QueueResult `queue-full`)."""


class QueueBook:
    """The account's queues and where each enqueued call is, behind one lock."""

    def __init__(self, account_sid: str) -> None:
        self.account_sid = account_sid
        self._lock = threading.Lock()
        self._queues: dict[str, StandinQueue] = {}
        self._departures: dict[str, Departure] = {}

    # --- the Queue resource ---

    def create(self, friendly_name: str, max_size: int | None = None) -> dict[str, Any]:
        """A new queue; its resource."""
        with self._lock:
            queue = self._create(friendly_name, max_size)
            return self._queue_resource(queue)

    def _create(self, friendly_name: str, max_size: int | None) -> StandinQueue:
        _check_name(friendly_name)
        if any(q.friendly_name == friendly_name for q in self._queues.values()):
            raise QueueError(f"A queue named {friendly_name!r} already exists")
        now = datetime.now(UTC)
        queue = StandinQueue(new_sid("QU"), friendly_name, _checked_size(max_size), now, now)
        self._queues[queue.sid] = queue
        return queue

    def queue_resources(self) -> list[dict[str, Any]]:
        """Every queue's resource, oldest first."""
        with self._lock:
            return [self._queue_resource(q) for q in self._queues.values()]

    def queue_resource(self, sid: str) -> dict[str, Any] | None:
        """The queue's resource, or None."""
        with self._lock:
            queue = self._queues.get(sid)
            return self._queue_resource(queue) if queue else None

    def update(self, sid: str, friendly_name: str | None,
               max_size: int | None) -> dict[str, Any] | None:
        """Rename or resize queue `sid`; its resource, or None when there is no such queue."""
        with self._lock:
            queue = self._queues.get(sid)
            if queue is None:
                return None
            if friendly_name is not None and friendly_name != queue.friendly_name:
                _check_name(friendly_name)
                if any(q.friendly_name == friendly_name for q in self._queues.values()):
                    raise QueueError(f"A queue named {friendly_name!r} already exists")
                queue.friendly_name = friendly_name
            if max_size is not None:
                queue.max_size = _checked_size(max_size)
            queue.updated_at = datetime.now(UTC)
            return self._queue_resource(queue)

    def delete(self, sid: str) -> bool:
        """Forget an empty queue; False when there is none. A queue with callers is refused."""
        with self._lock:
            queue = self._queues.get(sid)
            if queue is None:
                return False
            if queue.members:
                raise QueueError(f"Queue {sid} still holds {len(queue.members)} call(s)")
            del self._queues[sid]
            return True

    # --- the Member resource ---

    def member_resources(self, queue_sid: str) -> list[dict[str, Any]] | None:
        """The members of queue `queue_sid` in order, or None when there is no such queue."""
        with self._lock:
            queue = self._queues.get(queue_sid)
            if queue is None:
                return None
            return [self._member_resource(m, n) for n, m in enumerate(queue.members, 1)]

    def member_resource(self, queue_sid: str, name: str) -> dict[str, Any] | None:
        """Member `name` (a Call SID or `Front`) of queue `queue_sid`, or None."""
        with self._lock:
            found = self._find(queue_sid, name)
            return self._member_resource(*found) if found else None

    def dequeue(self, queue_sid: str, name: str, url: str,
                method: str = "POST") -> dict[str, Any] | None:
        """Take member `name` out of the queue to `url`; its resource, or None if not there."""
        with self._lock:
            found = self._find(queue_sid, name)
            if found is None:
                return None
            member, position = found
            resource = self._member_resource(member, position)
            self._depart(member, position, url=url, method=method)
            return resource

    def _find(self, queue_sid: str, name: str) -> tuple[QueueMember, int] | None:
        queue = self._queues.get(queue_sid)
        if queue is None or not queue.members:
            return None
        if name == FRONT:
            return queue.members[0], 1
        for position, member in enumerate(queue.members, 1):
            if member.call_sid == name:
                return member, position
        return None

    def _depart(self, member: QueueMember, position: int, **how: Any) -> None:
        queue = self._queues[member.queue_sid]
        queue.members.remove(member)
        self._departures[member.call_sid] = Departure(member.call_sid, member.queue_sid,
                                                      position, **how)

    # --- the phone network's side (the simulator) ---

    def join(self, friendly_name: str, call_sid: str) -> dict[str, Any]:
        """Put `call_sid` at the end of the named queue, made on demand; where it stands.

        Joining again the queue it waits in changes nothing; a call waits in one queue only.
        """
        with self._lock:
            queue = next((q for q in self._queues.values()
                          if q.friendly_name == friendly_name), None)
            if queue is not None and any(m.call_sid == call_sid for m in queue.members):
                return self._waiting(call_sid)
            if queue is None:
                queue = self._create(friendly_name, None)
            if len(queue.members) >= queue.max_size:
                raise QueueFull(f"Queue {friendly_name!r} is full ({queue.max_size} calls)",
                                status=409)
            self._remove(call_sid)
            self._departures.pop(call_sid, None)
            queue.members.append(QueueMember(call_sid, queue.sid, datetime.now(UTC)))
            queue.updated_at = datetime.now(UTC)
            return self._waiting(call_sid)

    def whereabouts(self, call_sid: str) -> dict[str, Any] | None:
        """Where the call is: waiting (and its position) or dequeued (and to where); or None."""
        with self._lock:
            return self._whereabouts(call_sid)

    def leave(self, call_sid: str) -> bool:
        """The caller left the queue (hung up, or `<Leave>`); False when it was in none."""
        with self._lock:
            removed = self._remove(call_sid)
            departed = self._departures.pop(call_sid, None) is not None
            return removed or departed

    def redirect(self, call_sid: str, *, url: str | None = None, method: str = "POST",
                 twiml: str | None = None, hangup: bool = False) -> bool:
        """A call update of a waiting call: it leaves its queue for `url` or `twiml`, or ends."""
        with self._lock:
            for queue in self._queues.values():
                for position, member in enumerate(queue.members, 1):
                    if member.call_sid == call_sid:
                        self._depart(member, position, url=url, method=method, twiml=twiml,
                                     hangup=hangup)
                        return True
            return False

    def knows(self, call_sid: str) -> bool:
        """Whether the call waits in a queue or was taken out of one by the line."""
        with self._lock:
            return call_sid in self._departures or any(
                m.call_sid == call_sid for q in self._queues.values() for m in q.members)

    def reset(self) -> None:
        """Forget every queue and member."""
        with self._lock:
            self._queues.clear()
            self._departures.clear()

    def _remove(self, call_sid: str) -> bool:
        for queue in self._queues.values():
            for member in queue.members:
                if member.call_sid == call_sid:
                    queue.members.remove(member)
                    queue.updated_at = datetime.now(UTC)
                    return True
        return False

    def _waiting(self, call_sid: str) -> dict[str, Any]:
        where = self._whereabouts(call_sid)
        assert where is not None, "the caller was just put in the queue"
        return where

    def _whereabouts(self, call_sid: str) -> dict[str, Any] | None:
        for queue in self._queues.values():
            for position, member in enumerate(queue.members, 1):
                if member.call_sid == call_sid:
                    return {"call_sid": call_sid, "queue_sid": queue.sid,
                            "queue": queue.friendly_name, "position": position,
                            "current_size": len(queue.members),
                            "average_wait_time": _average_wait(queue),
                            "wait_time": _seconds_since(member.enqueued_at),
                            "dequeued": False, "url": None, "method": None, "twiml": None,
                            "hangup": False}
        departure = self._departures.get(call_sid)
        if departure is None:
            return None
        gone = self._queues.get(departure.queue_sid)
        return {"call_sid": call_sid, "queue_sid": departure.queue_sid,
                "queue": gone.friendly_name if gone else None, "position": None,
                "current_size": len(gone.members) if gone else 0,
                "average_wait_time": _average_wait(gone) if gone else 0, "wait_time": None,
                "dequeued": True, "url": departure.url, "method": departure.method,
                "twiml": departure.twiml, "hangup": departure.hangup}

    # --- resources ---

    def _queue_uri(self, sid: str) -> str:
        return f"{API_PREFIX}{self.account_sid}/Queues/{sid}"

    def _queue_resource(self, queue: StandinQueue) -> dict[str, Any]:
        uri = self._queue_uri(queue.sid)
        return {"account_sid": self.account_sid, "average_wait_time": _average_wait(queue),
                "current_size": len(queue.members), "date_created": rfc2822(queue.created_at),
                "date_updated": rfc2822(queue.updated_at), "friendly_name": queue.friendly_name,
                "max_size": queue.max_size, "sid": queue.sid,
                "subresource_uris": {"members": f"{uri}/Members.json"}, "uri": f"{uri}.json"}

    def _member_resource(self, member: QueueMember, position: int) -> dict[str, Any]:
        return {"call_sid": member.call_sid, "date_enqueued": rfc2822(member.enqueued_at),
                "position": position, "queue_sid": member.queue_sid,
                "uri": f"{self._queue_uri(member.queue_sid)}/Members/{member.call_sid}.json",
                "wait_time": _seconds_since(member.enqueued_at)}


def _check_name(friendly_name: str) -> None:
    if not friendly_name:
        raise QueueError("FriendlyName is required")
    if len(friendly_name) > MAX_NAME_LENGTH:
        raise QueueError(f"FriendlyName must be at most {MAX_NAME_LENGTH} characters")


def _checked_size(max_size: int | None) -> int:
    if max_size is None:
        return DEFAULT_MAX_SIZE
    if not 1 <= max_size <= MAX_MAX_SIZE:
        raise QueueError(f"MaxSize must be between 1 and {MAX_MAX_SIZE}, not {max_size}")
    return max_size


def _seconds_since(moment: datetime) -> int:
    return max(0, int((datetime.now(UTC) - moment).total_seconds()))


def _average_wait(queue: StandinQueue) -> int:
    if not queue.members:
        return 0
    return round(sum(_seconds_since(m.enqueued_at) for m in queue.members) / len(queue.members))
