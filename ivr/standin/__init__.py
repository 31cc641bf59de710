"""A loopback stand-in for Twilio's REST API: a development and test tool, never for production.

It answers the part of api.twilio.com this project uses (Messages, Calls with their updates,
Recordings, Queues and their Members) with Twilio's URLs, Basic auth, JSON shapes, list pages
and error bodies, so the official `twilio` library talks to it unchanged once
`TWILIO_API_BASE_URL` points here. Everything it receives is kept in memory and can be
inspected or steered under `/_standin/` (no auth: bind it to loopback only; see
`ivr.standin.control`). It places no calls and posts no webhooks: the simulator
(`ivr call`, `ivr answer`) plays the phone network and asks the stand-in what the line did.

`StandinServer` runs it on a free loopback port in a background thread (tests, benchmarks);
`standin_command` is `ivr standin`.
"""

from ivr.standin.app import create_standin
from ivr.standin.queues import QueueBook, QueueError
from ivr.standin.server import DEFAULT_PORT, StandinServer, standin_command
from ivr.standin.shapes import API_VERSION
from ivr.standin.state import (
    CallUpdate,
    Fault,
    StandinCall,
    StandinMessage,
    StandinRequest,
    StandinState,
    standin_state,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_PORT",
    "CallUpdate",
    "Fault",
    "QueueBook",
    "QueueError",
    "StandinCall",
    "StandinMessage",
    "StandinRequest",
    "StandinServer",
    "StandinState",
    "create_standin",
    "standin_command",
    "standin_state",
]
