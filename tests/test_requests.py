"""The request class: url-encoded forms and query strings parsed in one pass, same results."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from flask import Flask, Request, request
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.requests import HelpdeskApp, HelpdeskRequest, parse_form

TWILIO_FORM = {
    "AccountSid": "AC" + "5" * 32, "CallSid": "CA" + "1" * 32, "From": "+4915112345678",
    "To": "+493012345678", "CallerCity": "KÖLN", "SpeechResult": "my VPN & Wi-Fi = broken 100%",
    "Digits": "", "Confidence": "0.91",
}

# Bodies as senders write them, and as fuzzers do: any text, stray escapes, separators.
_text = st.text(st.characters(codec="utf-8"), max_size=12)
_raw = st.text(st.sampled_from("ab=&+%2FEe0-9zé \u20ac"), max_size=40)


@given(st.lists(st.tuples(_text, _text), max_size=6))
@settings(max_examples=300)
def test_encoded_pairs_parse_as_parse_qsl_does(pairs: list[tuple[str, str]]) -> None:
    body = urlencode(pairs)
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)


@given(_raw)
@settings(max_examples=500)
def test_any_body_parses_as_parse_qsl_does(body: str) -> None:
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)


@pytest.mark.parametrize("body", [
    "a=1&&b=2", "=x", "a", "a=%26b%3Dc", "a=%3d", "a=%E2&b=%82%AC", "a=%zz", "a+b=c+d", "",
])
def test_edge_bodies_parse_as_parse_qsl_does(body: str) -> None:
    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.request_class = HelpdeskRequest
    app.config["MAX_CONTENT_LENGTH"] = 1024
    return app


def environ(body: bytes, content_type: str = "application/x-www-form-urlencoded",
            query: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/voice/step", "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
        "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body), **extra,
    }


def test_a_twilio_form_and_query_read_like_werkzeug_reads_them(app: Flask) -> None:
    body = urlencode(TWILIO_FORM).encode()
    with app.request_context(environ(body, query="v=3&n=main_menu&l=de&a=0&s=2")):
        assert request.form.to_dict() == TWILIO_FORM
        assert request.args.to_dict() == {"v": "3", "n": "main_menu", "l": "de", "a": "0",
                                          "s": "2"}
        assert not request.files


def test_the_form_can_follow_get_data(app: Flask) -> None:
    body = urlencode(TWILIO_FORM).encode()
    with app.request_context(environ(body)):
        assert request.get_data() == body
        assert request.form["SpeechResult"] == TWILIO_FORM["SpeechResult"]


def test_a_form_from_gunicorn_takes_the_one_pass_path(app: Flask,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # gunicorn marks every request's input as terminated by the server; the body still has a
    # Content-Length, so it is read to that length in one pass, not by werkzeug's parser.
    def werkzeugs_parser(_request: Any) -> None:
        raise AssertionError("werkzeug's form parser ran")

    monkeypatch.setattr(Request, "_load_form_data", werkzeugs_parser)
    body = urlencode(TWILIO_FORM).encode()
    with app.request_context(environ(body, **{"wsgi.input_terminated": True})):
        assert request.form.to_dict() == TWILIO_FORM


def test_a_chunked_body_takes_werkzeugs_path(app: Flask) -> None:
    body = urlencode(TWILIO_FORM).encode()
    chunked = environ(body, **{"wsgi.input_terminated": True})
    del chunked["CONTENT_LENGTH"]  # Transfer-Encoding: chunked, which the server decodes
    with app.request_context(chunked):
        assert request.form.to_dict() == TWILIO_FORM


def test_escaped_and_non_ascii_queries_take_werkzeugs_path(app: Flask) -> None:
    with app.request_context(environ(b"", query="n=a%20b&x=%ff")):
        assert request.args.to_dict() == {"n": "a b", "x": "%FF"}  # werkzeug keeps bad bytes


def test_other_bodies_take_werkzeugs_path(app: Flask) -> None:
    with app.request_context(environ(b'{"a": 1}', content_type="application/json")):
        assert not request.form and request.get_json() == {"a": 1}
    multipart = (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n")
    with app.request_context(environ(multipart, content_type="multipart/form-data; boundary=x")):
        assert request.form.to_dict() == {"a": "1"}


def test_a_body_over_the_limit_is_refused_not_read(app: Flask) -> None:
    body = urlencode({"Body": "x" * 2000}).encode()
    client = app.test_client()

    @app.post("/voice/step")
    def step() -> str:
        return str(len(request.form))

    response = client.post("/voice/step", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413


def test_the_app_inspects_each_view_and_hook_once(monkeypatch: pytest.MonkeyPatch) -> None:
    inspected: list[Any] = []
    original = Flask.ensure_sync

    def counting(self: Flask, func: Any) -> Any:
        inspected.append(func)
        return original(self, func)

    monkeypatch.setattr(Flask, "ensure_sync", counting)
    app = HelpdeskApp(__name__)

    @app.before_request
    def hook() -> None:
        return None

    @app.post("/voice/step")
    def step() -> str:
        return request.form.get("Digits", "")

    client = app.test_client()
    for digits in "123":
        assert client.post("/voice/step", data={"Digits": digits}).text == digits
    assert inspected.count(hook) == 1 and inspected.count(step) == 1
    assert app.ensure_sync(step) is step  # plain functions run as they are
