"""Security headers on every page, file and API answer for people: a Content-Security-Policy
with no inline scripts or styles, no framing, no MIME sniffing, a strict Referrer-Policy, and
HSTS in production. Twilio's webhooks (TwiML for Twilio, not for browsers) are left as they are.

Every page's scripts and styles come from /static (the console, admin pages, the editor, the
simulator and the Chart.js reports), so the policy needs no 'unsafe-inline' anywhere.
"""

from __future__ import annotations

from typing import Final

from flask import Flask, Response, request

from ivr.cookies import WEBHOOK_PREFIXES

CONTENT_SECURITY_POLICY: Final = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self'",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS: Final = "max-age=31536000; includeSubDomains"
"""A year; production is served over https only (IVR_PUBLIC_BASE_URL must be https)."""


def init_app(app: Flask) -> None:
    """Add the headers to every response but the webhooks'; HSTS only in production."""
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), geolocation=(), microphone=()",
    }
    if app.config["ENV"] == "production":
        headers["Strict-Transport-Security"] = HSTS

    @app.after_request
    def secure_headers(response: Response) -> Response:
        """The headers above, unless a view set its own."""
        if request.path.startswith(WEBHOOK_PREFIXES):
            return response
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
