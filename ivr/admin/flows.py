"""Admin pages: flows (edit with live validation, diff, save a draft, publish, roll back) and the
settings files; the call simulator is in simulator.py, the blueprint in blueprint.py.
Admins only, every route.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from callbacks.db import small_number
from callbacks.flowstore import (
    FlowVersion,
    PublishedFlow,
    UnknownVersion,
    list_versions,
    normalized_source,
    publication_history,
    publish_flow,
    rollback_flow,
    save_draft,
)
from ivr.admin.blueprint import bp, who
from ivr.admin.settings_files import settings_files
from ivr.auth import admin_required, signed_in_agent
from ivr.db import get_session
from routing.errors import FlowError, FlowInvalid
from routing.loader import check_flow, parse_flow

log = logging.getLogger(__name__)
MAX_SOURCE_CHARS = 512 * 1024


@bp.get("/")
@admin_required
def overview() -> str:
    """Links to the flows, the settings files, the simulator and the reports."""
    session = get_session()
    published = session.scalars(select(PublishedFlow).order_by(PublishedFlow.name)).all()
    return render_template("admin/overview.html", published=published,
                           settings=settings_files(current_app.config), me=signed_in_agent())


@bp.get("/flows")
@admin_required
def flows_page() -> str:
    """Each flow: its published version (who, when), every version and the publish history."""
    session = get_session()
    versions = list_versions(session)
    names = sorted({version.name for version in versions})
    published = {row.name: row for row in session.scalars(select(PublishedFlow))}
    flows = [{"name": name, "published": published.get(name),
              "versions": [v for v in versions if v.name == name],
              "history": publication_history(session, name)} for name in names]
    return render_template("admin/flows.html", flows=flows, me=signed_in_agent())


def _version(name: str, number: int | None = None) -> FlowVersion | None:
    """Version `number` of flow `name`; without a number the published one, else the newest."""
    session = get_session()
    query = select(FlowVersion).where(FlowVersion.name == name)
    if number is not None:
        return session.scalar(query.where(FlowVersion.number == number))
    published = session.get(PublishedFlow, name)
    if published is not None:
        return session.get(FlowVersion, published.version_id)
    return session.scalar(query.order_by(FlowVersion.number.desc()).limit(1))


def _number_arg(name: str) -> int | None:
    value = request.values.get(name, "")
    return small_number(value)


@bp.get("/flows/<name>")
@admin_required
def editor(name: str) -> str:
    """The YAML editor, holding the published version (or ?version=N)."""
    version = _version(name, _number_arg("version"))
    if version is None:
        abort(404)
    published = get_session().get(PublishedFlow, name)
    return render_template("admin/editor.html", name=name, version=version,
                           source=version.source, filename=version.filename, errors=[],
                           published=published, me=signed_in_agent())


def _error_json(error: FlowError) -> dict[str, Any]:
    return {"file": error.file, "line": error.line, "column": error.column,
            "message": error.message, "text": str(error)}


@bp.post("/flows/validate")
@admin_required
def validate() -> Response:
    """JSON {source, filename} -> {errors: [{line, column, message, ...}]}, as the CLI checks."""
    body = request.get_json(silent=True) or {}
    source = body.get("source")
    if not isinstance(source, str) or len(source) > MAX_SOURCE_CHARS:
        abort(400, "send {\"source\": \"<the flow's YAML>\"}, at most 512 KiB")
    filename = str(body.get("filename") or "flow.yaml")
    errors = check_flow(source, filename)
    return jsonify({"valid": not errors,
                                      "errors": [_error_json(e) for e in errors]})


@bp.route("/flows/<name>/diff", methods=["GET", "POST"])
@admin_required
def diff(name: str) -> Response:
    """A unified diff of the posted text (or version ?draft=N, else the newest) against the
    published version (?against=published) or version ?against=N."""
    against = request.values.get("against", "published")
    version_id = small_number(against)
    base = _version(name, version_id) if version_id is not None else _version(name)
    if base is None:
        abort(404)
    posted = request.form.get("source")
    if posted is None:
        draft = _version(name, _number_arg("draft")) if _number_arg("draft") else _newest(name)
        if draft is None:
            abort(404)
        posted, label = draft.source, f"{name} version {draft.number}"
    else:
        label = f"{name} (editor)"
    # Line endings are not changes: a browser's textarea sends CRLF, versions hold LF.
    lines = difflib.unified_diff(normalized_source(base.source).splitlines(keepends=True),
                                 normalized_source(posted).splitlines(keepends=True),
                                 fromfile=f"{name} version {base.number}", tofile=label)
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return Response(text or "no differences\n", mimetype="text/plain")


def _newest(name: str) -> FlowVersion | None:
    return get_session().scalar(select(FlowVersion).where(FlowVersion.name == name)
                                .order_by(FlowVersion.number.desc()).limit(1))


def _posted_flow(name: str) -> tuple[str, str, list[FlowError]]:
    """The editor's text and filename, and its problems (including a renamed flow)."""
    source = normalized_source(request.form.get("source", ""))
    current = _version(name)
    filename = request.form.get("filename") or (current.filename if current else f"{name}.yaml")
    try:
        flow = parse_flow(source, filename)
    except FlowInvalid as invalid:
        return source, filename, invalid.errors
    if flow.name != name:
        return source, filename, [FlowError(filename, 1, 1, f"this editor saves flow '{name}' "
                                            f"but the text is named '{flow.name}'")]
    return source, filename, []


def _editor_again(name: str, source: str, filename: str, errors: list[FlowError],
                  note: str) -> tuple[str, int]:
    """The editor with the admin's text and its problems; nothing was stored."""
    flash(note, "error")
    return render_template("admin/editor.html", name=name, version=_version(name),
                           source=source, filename=filename, errors=errors,
                           published=get_session().get(PublishedFlow, name),
                           me=signed_in_agent()), 422


@bp.post("/flows/<name>/publish")
@admin_required
def publish(name: str) -> BaseResponse | tuple[str, int]:
    """Validate and publish the editor's text; an invalid flow leaves the published one live."""
    source, filename, errors = _posted_flow(name)
    if errors:
        return _editor_again(name, source, filename, errors,
                             "Not published: fix the problems below. The live version is "
                             "unchanged.")
    session = get_session()
    version = publish_flow(session, source, filename, by=who())
    session.commit()
    log.info("flow %s version %s published from the admin page", name, version.number)
    flash(f"Published {name} version {version.number}; new calls take it now, calls in "
          "progress finish on the version they started with.", "ok")
    return redirect(url_for("admin.flows_page"), code=303)


@bp.post("/flows/<name>/draft")
@admin_required
def draft(name: str) -> BaseResponse | tuple[str, int]:
    """Store the editor's text as an unpublished version, e.g. for a test call."""
    source, filename, errors = _posted_flow(name)
    if errors:
        return _editor_again(name, source, filename, errors, "Not saved: fix the problems below.")
    session = get_session()
    version = save_draft(session, source, filename, by=who())
    session.commit()
    flash(f"Saved as {name} version {version.number} (not published). Try it in the "
          "simulator.", "ok")
    return redirect(url_for("admin.editor", name=name, version=version.number), code=303)


@bp.post("/flows/<name>/rollback")
@admin_required
def rollback(name: str) -> BaseResponse:
    """Publish an earlier version again; the history records who did it."""
    number = _number_arg("version")
    session = get_session()
    try:
        if number is None:
            raise UnknownVersion("choose a version number to roll back to")
        version = rollback_flow(session, name, number, by=who())
        session.commit()
    except UnknownVersion as exc:
        session.rollback()
        flash(f"Not rolled back: {exc}.", "error")
        return redirect(url_for("admin.flows_page"), code=303)
    flash(f"{name} version {version.number} is live again.", "ok")
    return redirect(url_for("admin.flows_page"), code=303)


@bp.get("/settings")
@admin_required
def settings_page() -> str:
    """The priorities, keywords and directory files with the loaders' verdict on each."""
    return render_template("admin/settings.html", files=settings_files(current_app.config),
                           me=signed_in_agent())
