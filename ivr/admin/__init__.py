"""Admin pages: flows, settings files, the call simulator, delivery and the trend reports.

Importing this package registers the flow and simulator routes on the admin blueprint;
the reports have a blueprint of their own.
"""

from ivr.admin import delivery, flows, simulator
from ivr.admin.blueprint import bp

__all__ = ["bp", "delivery", "flows", "simulator"]
