"""A requests transport that hands a simulated call's webhooks to a WSGI app in this process.

A web page that simulates a call would otherwise post to its own server over HTTP, which
deadlocks a sync gunicorn worker; the requests are still signed and checked exactly as Twilio's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

IN_PROCESS_BASE_URL = "http://in-process.invalid"
"""Where an in-process session sends the app's requests; the hostname never resolves."""

# Recomputed by the WSGI environment builder from the body and the base URL.
_DROPPED_HEADERS = frozenset({"content-length", "host", "connection", "accept-encoding"})


class AppAdapter(BaseAdapter):
    """Answers requests from a Flask app's test client instead of the network."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        """Dispatch one prepared request to the app and wrap its answer as a requests one."""
        parts = urlsplit(request.url or "")
        headers = {name: value for name, value in request.headers.items()
                   if name.lower() not in _DROPPED_HEADERS}
        body = request.body.encode() if isinstance(request.body, str) else request.body
        answer = self.app.test_client().open(
            parts.path or "/", base_url=f"{parts.scheme}://{parts.netloc}",
            query_string=parts.query, method=request.method or "GET", data=body or b"",
            headers=headers)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response._content = answer.get_data()
        response.encoding = answer.mimetype_params.get("charset", "utf-8")
        response.url = request.url or ""
        response.request = request
        response.reason = answer.status.partition(" ")[2]
        return response

    def close(self) -> None:
        """Nothing to release."""


def in_process_session(app: Flask, base_url: str = IN_PROCESS_BASE_URL) -> requests.Session:
    """A requests session whose requests under `base_url` go to `app`; others go out as usual."""
    session = requests.Session()
    session.mount(base_url.rstrip("/") + "/", AppAdapter(app))
    return session
