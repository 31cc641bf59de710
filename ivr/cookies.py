"""Signed-cookie sessions: none at all for Twilio's webhooks, a cached signer for the rest."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

WEBHOOK_PREFIXES = ("/voice", "/dialer", "/sms")


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, skipped for the webhooks that answer every call step."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """No session for Twilio's requests (they carry no cookies); Flask's for the rest."""
        if request.path.startswith(WEBHOOK_PREFIXES):
            return None  # Flask then uses a null session, which is never saved
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> Any:
        """The app's serializer, made on first use."""
        cached = app.extensions.get("ivr.cookie_serializer")
        if cached is None:
            cached = super().get_signing_serializer(app)
            app.extensions["ivr.cookie_serializer"] = cached
        return cached
