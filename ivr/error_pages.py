"""Error pages people see (403, 404, 405, ...): the console's header and navigation, a sentence
that says what happened, and a way on. The JSON API answers its own errors in JSON, and
Twilio's webhooks keep their plain answers (Twilio reads only the status)."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from ivr.cookies import WEBHOOK_PREFIXES

MESSAGES = {
    403: ("Not allowed", "Your account may not open this page. Admin pages are for admins."),
    404: ("Not found", "There is no such page, callback or ticket. It may have been typed "
                       "wrong, or the link is old."),
    405: ("Not possible", "This page does not take that kind of request."),
}


def error_page(error: HTTPException) -> Any:
    """The page for an HTTP error outside the API (webhooks get Flask's plain answer)."""
    if request.path.startswith(WEBHOOK_PREFIXES):
        return error
    status = error.code or 500
    title, message = MESSAGES.get(status, (error.name, error.description or error.name))
    user: Any = current_user
    me = user.agent if getattr(user, "is_authenticated", False) else None
    response = render_template("console/error.html", title=title, message=message, me=me,
                               status=status, back=request.path)
    return response, status, dict(error.get_headers()) | {"Content-Type": "text/html"}
