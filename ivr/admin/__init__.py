"""Admin pages: flows, agent accounts, settings files, the call simulator, delivery and the
trend reports.

Importing this package registers the flow, agent and simulator routes on the admin blueprint;
the reports have a blueprint of their own.
"""

from ivr.admin import agents, delivery, flows, simulator
from ivr.admin.blueprint import bp

__all__ = ["agents", "bp", "delivery", "flows", "simulator"]
