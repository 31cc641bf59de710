"""Every table of the store, imported in one place: Alembic's autogenerate and the schema test
see all of them. A module that defines a table is listed here."""

from __future__ import annotations

import callbacks.calllog
import callbacks.delivery.inbound
import callbacks.delivery.outbox
import callbacks.flowstore
import callbacks.incidents.incident
import callbacks.survey
import callbacks.tickets.optout
import callbacks.tickets.ticket
import callbacks.voicemail
import callbacks.workqueue.accounts
import callbacks.workqueue.agents
import callbacks.workqueue.attempts
import callbacks.workqueue.callback_requests
import callbacks.workqueue.live_calls
import callbacks.workqueue.skills  # noqa: F401
from callbacks.db import Base

metadata = Base.metadata
"""The metadata of every table listed above."""
