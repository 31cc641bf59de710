"""The OpenAPI 3.1 document of the JSON API, generated from its route table and pydantic models."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ivr.api.core import PREFIX, PUBLIC, SAFE_METHODS, ApiRoute
from ivr.api.models import MAX_ID

TITLE = "helpdesk-ivr agents' desk API"
VERSION = "1.0.0"
REF_TEMPLATE = "#/components/schemas/{model}"
SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}, {"cookie": []}]
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "string": {"type": "string", "pattern": "^[0-9]{5,10}$", "examples": ["10042"]},
}
"""Path parameter schemas by Flask converter (strings are ticket numbers here)."""
NAMED_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$",
             "examples": ["servicedesk-mail"]},
}
"""Path parameters whose name decides their schema (a delivery connector's name)."""


def openapi_document(routes: list[ApiRoute], cookie_name: str = "session") -> str:
    """The document as JSON text: every route, its security, bodies and response codes."""
    schemas, refs = _component_schemas(routes)
    webhooks = _delivery_webhook(schemas)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = PREFIX + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.rule)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, refs)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "The call list, callbacks, tickets and desk actions for agents. Sign in with "
                "`Authorization: Bearer <token>` (`ivr agents token USERNAME`) or with the "
                "session cookie from `POST /api/v1/session`; cookie requests that change "
                "something send that response's `csrf_token` as the `X-CSRFToken` header. "
                "Every error is a JSON Problem with a 4xx status."),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": name} for name in dict.fromkeys(route.tag for route in routes)],
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API token from `ivr agents token USERNAME`"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": cookie_name,
                           "description": "The session cookie set by POST /api/v1/session"},
            },
        },
        "security": SIGNED_IN,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _delivery_webhook(schemas: dict[str, Any]) -> dict[str, Any]:
    """The signed POST the webhook connector sends for every ticket event (its body schema is
    added to `schemas`)."""
    from callbacks.delivery.payloads import TicketEventPayload

    schema = TicketEventPayload.model_json_schema(by_alias=True, ref_template=REF_TEMPLATE,
                                                  mode="serialization")
    schemas.update(schema.pop("$defs", {}))
    schemas["TicketEventPayload"] = schema
    header = {"in": "header", "required": True, "schema": {"type": "string"}}
    return {"ticketEvent": {"post": {
        "summary": "A ticket event delivered to the company's ticket system",
        "description": (
            "Sent by a `webhook` connector (flows/delivery.yaml) for every ticket event, in "
            "event order per ticket, until a 2xx answer. Verify `X-Helpdesk-Signature` "
            "(`sha256=` + hex HMAC-SHA256 of `<X-Helpdesk-Timestamp>.<body>` with the "
            "secret), refuse timestamps outside your replay window, and take each "
            "`Idempotency-Key` once (the same on every try of an event)."),
        "parameters": [
            {**header, "name": "X-Helpdesk-Timestamp", "description": "Unix seconds of this try"},
            {**header, "name": "X-Helpdesk-Signature",
             "description": "sha256=<hex HMAC-SHA256 of timestamp + '.' + body>"},
            {**header, "name": "Idempotency-Key",
             "description": "ivr-<ticket number>-<event id>-<connector>"},
            {**header, "name": "X-Helpdesk-Event", "description": "The event's kind"}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF_TEMPLATE.format(model="TicketEventPayload")}}}},
        "responses": {
            "200": {"description": "Taken (also for a repeat of a key taken before)"},
            "503": {"description": "Any 5xx, 408, 425 or 429: tried again after a backoff"},
            "400": {"description": "Any other 4xx: the delivery fails until an admin "
                                   "retries it"}}}}}


def _component_schemas(routes: list[ApiRoute]) -> tuple[dict[str, Any], dict[Any, Any]]:
    """JSON Schemas of every body and response model, with refs into components/schemas."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for route in routes:
        if route.body is not None:
            wanted[(route.body, "validation")] = None
        for response in route.all_responses().values():
            if response.model is not None:
                wanted[(response.model, "serialization")] = None
    refs, top = models_json_schema(list(wanted), ref_template=REF_TEMPLATE)
    return dict(sorted(top.get("$defs", {}).items())), refs


def _operation(route: ApiRoute, refs: dict[Any, Any]) -> dict[str, Any]:
    """One route's operation object."""
    operation: dict[str, Any] = {
        "operationId": route.endpoint,
        "summary": route.summary,
        "tags": [route.tag],
        "description": route.description,
        "security": [] if route.access == PUBLIC else SIGNED_IN,
    }
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": NAMED_PATH_SCHEMAS.get(name, PATH_SCHEMAS[converter])}
                  for name, converter in route.path_params]
    if route.query is not None:
        query = route.query.model_json_schema()
        for name, schema in query.get("properties", {}).items():
            parameters.append({"name": name, "in": "query",
                               "required": name in query.get("required", []),
                               "description": schema.get("description", ""),
                               "schema": {k: v for k, v in schema.items()
                                          if k not in ("title", "description")}})
    if route.access != PUBLIC and route.method not in SAFE_METHODS:
        parameters.append({"name": "X-CSRFToken", "in": "header", "required": False,
                           "description": "Required with the cookie session (the csrf_token "
                                          "of POST /api/v1/session); not with a bearer token",
                           "schema": {"type": "string"}})
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(route.body, "validation")]}}}
    responses: dict[str, Any] = {}
    for status, response in route.all_responses().items():
        entry: dict[str, Any] = {"description": response.description}
        if response.model is not None:
            entry["content"] = {response.media_type: {
                "schema": refs[(response.model, "serialization")]}}
        elif response.media_type != "application/json":
            entry["content"] = {response.media_type: {
                "schema": {"type": "string", "format": "binary"}}}
        elif status != 204:
            entry["content"] = {"application/json": {"schema": {"type": "object"}}}
        responses[str(status)] = entry
    operation["responses"] = responses
    return operation

