"""The agents' console: sign-in, the call list, the ticket inbox, callback and ticket pages,
one-click actions, outage incidents, the wallboard.

`blueprint` holds the blueprint and what the pages and actions share; importing this package
registers every route on it.
"""

from ivr.console import actions, inbox, incidents, pages, ticket_actions, wallboard
from ivr.console.blueprint import bp

__all__ = ["actions", "bp", "inbox", "incidents", "pages", "ticket_actions", "wallboard"]
