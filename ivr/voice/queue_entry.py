"""A caller reaching a queue node: joining the line (once per call), or the overflow at once
when nobody who speaks their language is signed in; and who answered them afterwards."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app, request
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from callbacks.queues import enqueue_route_job, redis_connection
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.line import line_ask, signed_in_agents_for
from callbacks.workqueue.live_calls import OPEN, join_line, live_call_by_sid
from ivr.db import get_session
from ivr.voice.twiml import CallState
from routing.steps import Enqueue

log = logging.getLogger(__name__)


def join_line_or_overflow(step: Enqueue, state: CallState, call_sid: str,
                          moment: datetime) -> bool:
    """Put the caller in line and ask for routing; False when no agent who speaks their
    language is signed in (the caller goes to the overflow instead). A repeated webhook
    finds the caller in line already."""
    session = get_session()
    language = step.position.language
    known = live_call_by_sid(session, call_sid)
    if known is None or known.status not in OPEN:
        if signed_in_agents_for(session, language) == 0:
            log.info("queue %s: no agent for '%s' signed in; overflow", step.position.node,
                     language)
            return False
        ask = line_ask(current_app.extensions["ivr.priorities"],
                       current_app.extensions["ivr.directory"], call_sid=call_sid,
                       caller=request.form.get("From", ""), language=language,
                       category=step.category, menu_priority=step.priority,
                       flow_version_id=state.version_id, node=step.position.node,
                       seq=state.seq + 1, queue_name=step.queue_name, now=moment)
        call = join_line(session, ask, moment)
        live_id, priority = call.id, call.priority
        session.commit()
        log.info("live call %s joined queue %s as %s", live_id, step.queue_name, priority)
    route_soon()
    return True


def route_soon() -> None:
    """Ask a worker to route free agents now; if Redis is away, the periodic sweep will."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return
    try:
        enqueue_route_job(redis_connection(url))
    except RedisError:
        log.warning("could not queue routing; the periodic sweep will route", exc_info=True)


def agent_phone_of(session: Session, call_sid: str) -> list[str]:
    """The phone of the agent who talked to this caller from the line, if known."""
    call = live_call_by_sid(session, call_sid)
    agent = session.get(Agent, call.agent_id) if call is not None and call.agent_id else None
    return [agent.phone] if agent is not None and agent.phone else []
