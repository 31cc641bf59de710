"""A phone-network simulator: plays Twilio and the caller against the web app's voice webhooks.

`Simulator.run` signs every request like Twilio, reads the TwiML answers and follows them verb by
verb; what the caller does comes from a `Caller` (scripted, interactive, or your own). Nothing in
the core prints: events go to `on_event` and into the returned `CallTranscript`.

The caller side lives in `callers`, the Twilio side in `network` (with `<Record>` in
`recording` and queues' hold loops in `waiting`), the terminal in `console`, the agent's phone
for calls the line places in `outbound`.
"""

from ivr.simulator.callers import (
    DIAL_OUTCOMES,
    GATHER_PROMPT,
    HANGUP,
    KEYS,
    RECORD_PROMPT,
    Caller,
    GatherAnswer,
    GatherPrompt,
    Hangup,
    InteractiveCaller,
    QueueWait,
    RecordAnswer,
    Recording,
    RecordPrompt,
    ScriptedCaller,
    ScriptError,
    Speech,
    scripted_caller_from_options,
)
from ivr.simulator.console import call_command, format_event
from ivr.simulator.network import (
    API_VERSION,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_CALLED,
    DEFAULT_CALLER,
    DEFAULT_MAX_WAIT_PASSES,
    TWILIO_API_BASE_URL,
    CallEvent,
    CallTranscript,
    EventKind,
    Simulator,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_CALLED",
    "DEFAULT_CALLER",
    "DEFAULT_MAX_WAIT_PASSES",
    "DIAL_OUTCOMES",
    "GATHER_PROMPT",
    "HANGUP",
    "KEYS",
    "RECORD_PROMPT",
    "TWILIO_API_BASE_URL",
    "CallEvent",
    "CallTranscript",
    "Caller",
    "EventKind",
    "GatherAnswer",
    "GatherPrompt",
    "Hangup",
    "InteractiveCaller",
    "QueueWait",
    "RecordAnswer",
    "RecordPrompt",
    "Recording",
    "ScriptError",
    "ScriptedCaller",
    "Simulator",
    "Speech",
    "call_command",
    "format_event",
    "scripted_caller_from_options",
]
