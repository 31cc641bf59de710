"""The wallboard for supervisors: the desk at a glance in large type, refreshed by itself.

Every signed-in agent may open it (a link in the console's top bar). The figures come from
callbacks/workqueue/wallboard.py; this module only renders them.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, url_for
from flask_login import login_required

from callbacks.db import utcnow
from callbacks.workqueue.wallboard import wallboard
from ivr.console.blueprint import bp, display_zone, page_view
from ivr.db import get_session


@bp.get("/wallboard")
@login_required
def wallboard_page() -> str:
    """Callers waiting, agents by state, today's service level, answer speed, abandonment and
    callbacks due; refreshed live, with the waits ticking in between."""
    return render_template("console/wallboard.html", **_board_view())


@bp.get("/wallboard/board")
@login_required
def wallboard_fragment() -> str:
    """The wallboard's figures alone, for the live refresh."""
    return render_template("console/_wallboard.html", **_board_view())


def _board_view() -> dict[str, Any]:
    board = wallboard(get_session(), utcnow(), display_zone(),
                      current_app.extensions["ivr.priorities"].live)
    return {"board": board, **page_view(back=url_for("console.wallboard_page"))}
