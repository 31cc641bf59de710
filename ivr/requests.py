"""The app and request classes: Twilio's small url-encoded bodies and query strings parsed
cheaply, and the per-request work Flask repeats for every call step kept to once.

Every step of every call posts about fifteen form fields and carries the call's position in its
query string. Werkzeug parses both with `urllib.parse.parse_qsl`, which decodes each name and
value on its own; here the whole body is decoded in one pass when that gives the same pairs.
Everything else (multipart, JSON, bodies without a Content-Length or over the size limits)
takes werkzeug's own path. A body with a Content-Length is read to that length whether or not
the server also terminates the stream (gunicorn sets `wsgi.input_terminated` on every request).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from flask import Flask, Request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.utils import cached_property

FORM_TYPE = "application/x-www-form-urlencoded"
_ENCODED_SEPARATOR = re.compile(r"%(?:26|3[dD])")
"""An encoded '&' or '=': after decoding, the body could no longer be split on them."""


def parse_form(body: str) -> list[tuple[str, str]]:
    """The name/value pairs of a url-encoded body, exactly as `parse_qsl(body,
    keep_blank_values=True)` gives them.

    Decoding the whole body first, then splitting it, is the same as splitting first and
    decoding each part, unless a part holds an encoded separator: then parse_qsl decides.
    (Invalid UTF-8 becomes U+FFFD either way: no multi-byte sequence spans an ASCII '&'.)
    """
    if "%" in body or "+" in body:
        if _ENCODED_SEPARATOR.search(body):
            return parse_qsl(body, keep_blank_values=True)
        body = unquote_plus(body)
    pairs = []
    for field in body.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((name, value))
    return pairs


class HelpdeskRequest(Request):
    """Flask's request, with the url-encoded form and the query string parsed in one pass."""

    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        environ = self.environ
        length = environ.get("CONTENT_LENGTH", "")
        limits = (self.max_content_length, self.max_form_memory_size)
        if (self.method != "POST" or not length.isdigit()
                or environ.get("CONTENT_TYPE", "").partition(";")[0].strip() != FORM_TYPE
                or any(limit is not None and int(length) > limit for limit in limits)):
            super()._load_form_data()
            return
        state = self.__dict__
        raw = state.get("_cached_data")  # get_data() read it already
        if raw is None:
            raw = environ["wsgi.input"].read(int(length))
        body = raw.decode("utf-8", "replace")
        state["form"] = self.parameter_storage_class(parse_form(body))
        state["files"] = self.parameter_storage_class()

    @cached_property
    def args(self) -> MultiDict[str, str]:
        """The query string's parameters; only a query with escapes takes werkzeug's path."""
        query = self.environ.get("QUERY_STRING", "")
        if "%" in query or "+" in query or not query.isascii():
            return super().args
        return ImmutableMultiDict(parse_form(query))


_MAX_SYNC_MEMO = 1_000
"""Views and hooks remembered; a larger app is a sign of functions made per request."""


class HelpdeskApp(Flask):
    """Flask with the request class above, remembering which views and hooks are plain
    functions: a call step runs about ten of them, and Flask would inspect every one anew
    (`inspect.iscoroutinefunction`) on every request."""

    request_class = HelpdeskRequest

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's `ensure_sync`, looked up once per function."""
        sync = self._sync.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            if len(self._sync) < _MAX_SYNC_MEMO:
                self._sync[func] = sync
        return sync
