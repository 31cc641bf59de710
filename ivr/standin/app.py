"""The stand-in Flask app: Twilio's Basic auth and account check in front of the REST API."""

from __future__ import annotations

import re
from typing import Final

from flask import Flask, Response, request

from ivr.standin.control import register_control
from ivr.standin.rest import register_rest_api
from ivr.standin.shapes import API_VERSION, ERROR_TITLES, not_found, same_secret, twilio_error
from ivr.standin.state import StandinState, current_state

_ACCOUNT_IN_PATH: Final = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)(/|$)")


def create_standin(account_sid: str, auth_token: str) -> Flask:
    """The stand-in app for one account; its state is `standin_state(app)`."""
    if not account_sid or not auth_token:
        raise ValueError("the stand-in needs the account SID and auth token to check")
    app = Flask(__name__)
    app.extensions["ivr.standin"] = StandinState(account_sid, auth_token)
    app.before_request(_before_api_request)
    app.register_error_handler(404, lambda _: not_found())
    app.register_error_handler(405, lambda _: twilio_error(405, 20004, "Method not allowed"))
    register_rest_api(app)
    register_control(app)
    return app


def _before_api_request() -> Response | None:
    """Faults, Basic auth and the account check, as Twilio does them, for REST API paths."""
    if request.path.startswith("/_standin/"):
        return None
    state = current_state()
    state.record_request(request.method, request.path)
    fault = state.take_fault(request.method, request.path)
    if fault is not None:
        if fault.delay_seconds:
            state.stopping.wait(fault.delay_seconds)
        if fault.status:
            return twilio_error(fault.status, 20000 + fault.status,
                                ERROR_TITLES.get(fault.status, "Injected failure"))
    auth = request.authorization
    if (auth is None or auth.type != "basic"
            or not same_secret(auth.username or "", state.account_sid)
            or not same_secret(auth.password or "", state.auth_token)):
        response = twilio_error(401, 20003, "Authenticate",
                                detail="Your AccountSid or AuthToken was incorrect.")
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response
    match = _ACCOUNT_IN_PATH.match(request.path)
    if match is None or match.group(1) != state.account_sid:
        return not_found()
    return None
