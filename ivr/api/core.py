"""The JSON API's machinery: the blueprint, its route table, sign-in checks and JSON errors.

Each route is declared once with `api_route`: the declaration registers the Flask view,
enforces who may call it, validates its body and query with pydantic, and is what the
OpenAPI document is generated from.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError as CsrfInvalid

from ivr.api.models import FieldProblem, Problem
from ivr.error_pages import error_page

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

PUBLIC, AGENT, ADMIN = "public", "agent", "admin"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
JSON_MEDIA = "application/json"
M = TypeVar("M", bound=BaseModel)


class ApiProblem(Exception):
    """An error the API answers with a JSON Problem body."""

    def __init__(self, status: int, error: str, message: str,
                 fields: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = Problem(error=error, message=message, fields=fields or [])


@dataclass(frozen=True)
class Reply:
    """One documented response of a route."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str = JSON_MEDIA


@dataclass(frozen=True)
class ApiRoute:
    """A route as declared: method, path, who may call it, its bodies and its responses."""

    method: str
    rule: str
    endpoint: str
    summary: str
    tag: str
    access: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, Reply] = field(default_factory=dict)
    description: str = ""

    @property
    def path_params(self) -> list[tuple[str, str]]:
        """(name, converter) of each variable part of the rule."""
        return [(name, converter or "string") for converter, name in
                re.findall(r"<(?:(\w+):)?(\w+)>", self.rule)]

    def all_responses(self) -> dict[int, Reply]:
        """Every status the route can answer: its own plus those of its checks."""
        replies = dict(self.responses)
        if self.access != PUBLIC:
            replies[401] = Reply("Not signed in: no valid bearer token or session cookie",
                                 Problem)
        if self.access == ADMIN:
            replies[403] = Reply("Signed in, but not an admin", Problem)
        bad_request = []
        if self.access != PUBLIC and self.method not in SAFE_METHODS:
            bad_request.append("cookie session without a valid X-CSRFToken header")
        if self.body is not None:
            bad_request.append("the body is not JSON")
            replies[415] = Reply("The body is not sent as application/json", Problem)
            replies[422] = Reply("The body does not match the schema; `fields` says where",
                                 Problem)
        if self.query is not None:
            replies[422] = Reply("Invalid request; `fields` says where", Problem)
        if 400 in replies:
            bad_request.insert(0, replies[400].description)
        if bad_request:
            text = "; ".join(bad_request)
            replies[400] = Reply(text[0].upper() + text[1:], Problem)
        if self.path_params:
            replies.setdefault(404, Reply("No such item", Problem))
        return dict(sorted(replies.items()))


ROUTES: list[ApiRoute] = []
"""Every declared route, in declaration order (the OpenAPI document lists them so)."""


def api_route(method: str, rule: str, *, summary: str, tag: str, access: str = AGENT,
              body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              responses: dict[int, Reply]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare and register a route; the view gets `body=`/`query=` models when declared."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        route = ApiRoute(method, rule, view.__name__, summary, tag, access, body, query,
                         responses, (view.__doc__ or "").strip())
        ROUTES.append(route)

        @functools.wraps(view)
        def guarded(**kwargs: Any) -> Any:
            check_access(route)
            if route.body is not None:
                kwargs["body"] = parse_body(route.body)
            if route.query is not None:
                kwargs["query"] = parse_query(route.query)
            return view(**kwargs)

        bp.add_url_rule(rule, route.endpoint, guarded, methods=[method])
        return guarded

    return register


def check_access(route: ApiRoute) -> None:
    """401 unless signed in, 403 unless an admin where required, 400 for a missing CSRF token."""
    if route.access == PUBLIC:
        return
    user: Any = current_user
    if not user.is_authenticated:
        raise ApiProblem(401, "unauthorized",
                         "sign in (POST /api/v1/session) or send Authorization: Bearer <token>")
    if route.access == ADMIN and not user.is_admin:
        raise ApiProblem(403, "forbidden", "only admins may do this")
    if request.method not in SAFE_METHODS and not user.by_token:
        check_csrf_header()


def check_csrf_header() -> None:
    """A cookie-signed request that changes something must carry the session's CSRF token."""
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    token = next((request.headers[name] for name in
                  current_app.config.get("WTF_CSRF_HEADERS", ["X-CSRFToken"])
                  if request.headers.get(name)), None)
    try:
        validate_csrf(token)
    except CsrfInvalid as invalid:
        raise ApiProblem(400, "csrf_failed",
                         f"{invalid.args[0]} Send the csrf_token from POST /api/v1/session "
                         "as the X-CSRFToken header, or use a bearer token.") from None


def parse_body(model: type[M]) -> M:
    """The request's JSON body as `model`: 415 if not JSON, 400 if malformed, 422 if invalid."""
    if not request.is_json:
        raise ApiProblem(415, "unsupported_media_type",
                         "send the body as JSON with Content-Type: application/json")
    raw = request.get_data()
    try:
        json.loads(raw)
    except ValueError as exc:
        raise ApiProblem(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as invalid:
        if any(error["type"] == "json_invalid" for error in invalid.errors()):
            raise ApiProblem(400, "invalid_json", "the body is not valid JSON") from None
        raise validation_problem(invalid, "") from None


def parse_query(model: type[M]) -> M:
    """The query string as `model` (422 with the field errors if invalid)."""
    unknown = set(request.args) - set(model.model_fields)
    values: dict[str, Any] = {name: request.args[name] for name in request.args
                              if name in model.model_fields}
    try:
        parsed = model.model_validate(values)
    except ValidationError as invalid:
        raise validation_problem(invalid, "query.") from None
    if unknown:
        fields = [FieldProblem(field=f"query.{name}", message="unknown parameter")
                  for name in sorted(unknown)]
        raise ApiProblem(422, "validation_failed", "unknown query parameter", fields)
    return parsed


def validation_problem(invalid: ValidationError, prefix: str) -> ApiProblem:
    """A 422 naming each invalid field."""
    fields = [FieldProblem(field=prefix + (".".join(str(part) for part in error["loc"])
                                           or "(body)"),
                           message=error["msg"]) for error in invalid.errors()]
    names = ", ".join(problem.field for problem in fields)
    return ApiProblem(422, "validation_failed", f"invalid: {names}", fields)


def problem_response(status: int, problem: Problem) -> Response:
    """A Problem as a JSON response."""
    response = jsonify(problem.model_dump(mode="json"))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ivr"'
    return response


def reply(model: BaseModel, status: int = 200) -> Response:
    """A model as a JSON response."""
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response


@bp.errorhandler(ApiProblem)
def _api_problem(problem: ApiProblem) -> Response:
    return problem_response(problem.status, problem.problem)


@bp.app_errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    # Routing errors (404, 405) happen before a blueprint is chosen, so this is app-wide:
    # API paths answer in JSON, every other path gets a page people can find their way on from.
    if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
        return error_page(error)
    status = error.code or 500
    name = re.sub(r"[^a-z]+", "_", (error.name or "error").lower()).strip("_")
    response = problem_response(status, Problem(error=name, message=error.description or name))
    for key, value in error.get_headers():
        if key.lower() == "allow":
            response.headers["Allow"] = value
    return response
