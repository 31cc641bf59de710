"""The agents' console: sign-in, the call list, callback and ticket pages, one-click actions.

`blueprint` holds the blueprint and what the pages and actions share; importing this package
registers every route on it.
"""

from ivr.console import actions, pages
from ivr.console.blueprint import bp

__all__ = ["actions", "bp", "pages"]
