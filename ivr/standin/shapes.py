"""Twilio's JSON at the HTTP boundary: error bodies, SIDs, dates, URIs and list pages."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from flask import Response, jsonify, request

API_VERSION: Final = "2010-04-01"
API_PREFIX: Final = f"/{API_VERSION}/Accounts/"
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
BAD_PARAMETER: Final = 20001
"""The code of the stand-in's 400 answers to a missing or invalid parameter."""
ERROR_TITLES: Final = {400: "Bad Request", 401: "Authenticate", 403: "Forbidden",
                       404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
                       500: "Internal Server Error", 502: "Bad Gateway",
                       503: "Service Unavailable", 504: "Gateway Timeout"}

T = TypeVar("T")


def json_response(payload: Any, status: int = 200) -> Response:
    """`payload` as a JSON response with `status`."""
    response = jsonify(payload)
    response.status_code = status
    return response


def twilio_error(status: int, code: int, message: str, detail: str | None = None) -> Response:
    """An error body shaped like Twilio's, which the twilio library turns into exceptions."""
    body: dict[str, Any] = {"code": code, "message": message, "status": status,
                            "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    if detail:
        body["detail"] = detail
    return json_response(body, status)


def not_found() -> Response:
    """Twilio's 404 for the requested path (code 20404)."""
    return twilio_error(404, 20404, f"The requested resource {request.path} was not found")


def bad_parameter(message: str) -> Response:
    """A 400 for a missing or invalid request parameter."""
    return twilio_error(400, BAD_PARAMETER, message)


def same_secret(given: str, expected: str) -> bool:
    """Whether two secrets are equal, compared in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def new_sid(prefix: str) -> str:
    """A fresh SID: the two-letter prefix and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def rfc2822(moment: datetime) -> str:
    """A date as Twilio writes it (RFC 2822, GMT)."""
    return format_datetime(moment.astimezone(UTC))


def rfc2822_now() -> str:
    """Now, as Twilio writes dates."""
    return rfc2822(datetime.now(UTC))


def resource_name(name: str) -> str | None:
    """The SID in a path segment such as `QU123.json`; None without the `.json` suffix."""
    return name.removesuffix(".json") if name.endswith(".json") else None


def list_page(items: Sequence[T], key: str, uri: str,
              render: Callable[[T], dict[str, Any]]) -> Response:
    """One page of `items` in Twilio's list envelope (`Page`, `PageSize` from the query)."""
    try:
        page = int(request.args.get("Page", 0))
        page_size = int(request.args.get("PageSize", DEFAULT_PAGE_SIZE))
    except ValueError:
        return bad_parameter("Page and PageSize must be integers")
    if page < 0 or not 1 <= page_size <= MAX_PAGE_SIZE:
        return bad_parameter(f"PageSize must be between 1 and {MAX_PAGE_SIZE}, Page at least 0")
    start = page * page_size
    chunk = items[start:start + page_size]

    def page_uri(number: int) -> str:
        return f"{uri}?{urlencode({'PageSize': page_size, 'Page': number})}"

    return json_response({
        key: [render(item) for item in chunk],
        "end": start + max(len(chunk), 1) - 1,
        "first_page_uri": page_uri(0),
        "next_page_uri": page_uri(page + 1) if start + page_size < len(items) else None,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "page": page,
        "page_size": page_size,
        "start": start,
        "uri": page_uri(page),
    })
