"""Admin pages: admins only, live validation with line:column, diff, drafts, publish, rollback,
and the simulator page driving a test call in-process."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callbacks.flowstore import (
    FlowPublication,
    FlowVersion,
    PublishedFlow,
    list_versions,
    save_draft,
)
from callbacks.workqueue.agents import create_agent
from routing.errors import FlowInvalid
from tests.conftest import app_config, empty_tables, publish
from tests.test_voice import FLOW

PASSWORD = "correct horse battery"


@pytest.fixture
def admin_app(database_url: str, redis_url: str) -> Iterator[Flask]:
    """The app with an admin (root) and an agent (ana); CSRF off so forms post directly."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url, WTF_CSRF_ENABLED=False))
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, "root", PASSWORD, display_name="Rita Root", role="admin")
        create_agent(session, "ana", PASSWORD, display_name="Ana Lima")
        session.commit()
    yield app
    empty_tables(app)


def signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post("/console/sign-in", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 303
    return client


def admin_urls(app: Flask) -> list[tuple[str, str]]:
    """Every (method, url) under /admin, placeholders filled in (reports included if present)."""
    samples = {"name": "test-line", "slug": "calls"}
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>",
                     lambda match: samples.get(match.group(1), "1"), rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def test_every_admin_route_refuses_agents_and_anonymous_users(admin_app: Flask) -> None:
    publish(admin_app, FLOW)
    urls = admin_urls(admin_app)
    assert ("POST", "/admin/flows/test-line/publish") in urls and len(urls) >= 11
    anonymous = admin_app.test_client()
    agent = signed_in(admin_app, "ana")
    for method, url in urls:
        answer = anonymous.open(url, method=method)
        assert answer.status_code == 302, (method, url)
        assert "/console/sign-in" in answer.headers["Location"], (method, url)
        assert agent.open(url, method=method).status_code == 403, (method, url)
    with admin_app.extensions["ivr.sessions"]() as session:
        assert len(list_versions(session)) == 1  # nothing was published by the refused posts


def test_admin_pages_render(admin_app: Flask) -> None:
    publish(admin_app, FLOW, by="alice")
    admin = signed_in(admin_app, "root")
    for url in ("/admin/", "/admin/flows", "/admin/flows/test-line", "/admin/settings",
                "/admin/simulator"):
        answer = admin.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["Cache-Control"] == "private, no-store"
    flows = admin.get("/admin/flows").get_data(as_text=True)
    assert "published" in flows and "alice" in flows
    settings = admin.get("/admin/settings").get_data(as_text=True)
    assert settings.count("Valid.") == 6  # priorities, keywords, directory, texts, delivery,
    # incidents
    assert "Texts to callers (SMS)" in settings and "status_waiting_for_caller" in settings
    assert admin.get("/admin/flows/no-such-flow").status_code == 404
    assert "Admin" in admin.get("/console/").get_data(as_text=True)
    assert 'href="/admin/"' not in signed_in(admin_app, "ana").get("/console/").get_data(
        as_text=True)


def test_validate_names_line_and_column(admin_app: Flask) -> None:
    admin = signed_in(admin_app, "root")
    lines = FLOW.splitlines()
    broken = FLOW.replace("    next: office", "    next: ofice")
    typo_line = lines.index("    next: office") + 1
    answer = admin.post("/admin/flows/validate", json={"source": broken, "filename": "t.yaml"})
    errors = answer.get_json()["errors"]
    assert answer.get_json()["valid"] is False
    assert (errors[0]["line"], errors[0]["column"]) == (typo_line, 11)
    assert "did you mean 'office'?" in errors[0]["message"]
    assert errors[0]["text"].startswith(f"t.yaml:{typo_line}:11: ")

    misindented = FLOW.replace("    options: {\"1\": en", "   options: {\"1\": en")
    errors = admin.post("/admin/flows/validate", json={"source": misindented}).get_json()["errors"]
    option_line = lines.index('    options: {"1": en, "2": de}') + 1
    assert errors and errors[0]["line"] == option_line

    assert admin.post("/admin/flows/validate", json={"source": FLOW}).get_json() == {
        "valid": True, "errors": []}
    assert admin.post("/admin/flows/validate", json={}).status_code == 400


def test_diff_against_the_published_version(admin_app: Flask) -> None:
    publish(admin_app, FLOW)
    admin = signed_in(admin_app, "root")
    changed = FLOW.replace("{en: Hello, de: Hallo}", "{en: Hi there, de: Hallo}")
    diff = admin.post("/admin/flows/test-line/diff?against=published",
                      data={"source": changed}).get_data(as_text=True)
    assert diff.startswith("--- test-line version 1\n+++ test-line (editor)\n")
    assert "\n-  hello: {type: say, text: {en: Hello, de: Hallo}, next: lang}\n" in diff
    assert "\n+  hello: {type: say, text: {en: Hi there, de: Hallo}, next: lang}\n" in diff
    same = admin.post("/admin/flows/test-line/diff", data={"source": FLOW})
    assert same.get_data(as_text=True) == "no differences\n"
    admin.post("/admin/flows/test-line/draft", data={"source": changed})
    stored = admin.get("/admin/flows/test-line/diff?against=1&draft=2").get_data(as_text=True)
    assert "+++ test-line version 2" in stored and "Hi there" in stored


def test_crlf_from_the_browser_is_no_change_and_is_stored_as_lf(admin_app: Flask) -> None:
    live = publish(admin_app, FLOW)
    admin = signed_in(admin_app, "root")
    from_a_textarea = FLOW.replace("\n", "\r\n")  # what browsers send for a textarea
    diff = admin.post("/admin/flows/test-line/diff", data={"source": from_a_textarea})
    assert diff.get_data(as_text=True) == "no differences\n"
    changed = from_a_textarea.replace("{en: Hello, de: Hallo}", "{en: Hi there, de: Hallo}")
    diff = admin.post("/admin/flows/test-line/diff", data={"source": changed}).get_data(
        as_text=True)
    assert [line for line in diff.splitlines() if line.startswith(("-", "+"))] == [
        "--- test-line version 1", "+++ test-line (editor)",
        "-  hello: {type: say, text: {en: Hello, de: Hallo}, next: lang}",
        "+  hello: {type: say, text: {en: Hi there, de: Hallo}, next: lang}"]
    assert admin.post("/admin/flows/test-line/draft",
                      data={"source": from_a_textarea}).status_code == 303
    assert admin.post("/admin/flows/test-line/publish",
                      data={"source": changed}).status_code == 303
    with admin_app.extensions["ivr.sessions"]() as session:
        versions = session.scalars(select(FlowVersion).order_by(FlowVersion.number)).all()
        assert [v.number for v in versions] == [1, 2]  # the CRLF copy of v1 is v1
        assert versions[0].id == live.id
        assert "\r" not in versions[1].source and "Hi there" in versions[1].source


def test_publish_records_who_and_an_invalid_flow_keeps_the_live_one(admin_app: Flask) -> None:
    first = publish(admin_app, FLOW, by="cli")
    admin = signed_in(admin_app, "root")
    changed = FLOW.replace("{en: Hello, de: Hallo}", "{en: Hi there, de: Hallo}")
    answer = admin.post("/admin/flows/test-line/publish",
                        data={"source": changed, "filename": "flows/test.yaml"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/admin/flows")
    with admin_app.extensions["ivr.sessions"]() as session:
        live = session.get(PublishedFlow, "test-line")
        assert live is not None and live.published_by == "root" and live.published_at
        version = session.get(FlowVersion, live.version_id)
        assert version is not None and version.number == 2 and version.created_by == "root"
        second_id = version.id

    broken = changed.replace("next: lang", "next: lnag")
    refused = admin.post("/admin/flows/test-line/publish", data={"source": broken})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "did you mean &#39;lang&#39;?" in page and "The live version is unchanged" in page
    renamed = admin.post("/admin/flows/test-line/publish",
                         data={"source": FLOW.replace("name: test-line", "name: other")})
    assert renamed.status_code == 422
    with admin_app.extensions["ivr.sessions"]() as session:
        assert session.get(PublishedFlow, "test-line").version_id == second_id  # type: ignore
        assert session.scalar(select(FlowVersion).where(FlowVersion.name == "other")) is None
        assert len(list_versions(session)) == 2
    assert first.number == 1


def test_rollback_records_who(admin_app: Flask) -> None:
    publish(admin_app, FLOW)
    publish(admin_app, FLOW.replace("Hello", "Hi there"))
    admin = signed_in(admin_app, "root")
    answer = admin.post("/admin/flows/test-line/rollback", data={"version": "1"})
    assert answer.status_code == 303
    assert "version 1 is live again" in admin.get("/admin/flows").get_data(as_text=True)
    unknown = admin.post("/admin/flows/test-line/rollback", data={"version": "9"},
                         follow_redirects=True)
    assert "has no version 9" in unknown.get_data(as_text=True)
    with admin_app.extensions["ivr.sessions"]() as session:
        history = session.scalars(select(FlowPublication).order_by(FlowPublication.id)).all()
        assert [(p.action, p.by) for p in history] == [
            ("publish", "test"), ("publish", "test"), ("rollback", "root")]
        assert [v.published for v in list_versions(session)] == [False, True]


def test_save_draft_stores_without_publishing(admin_app: Flask) -> None:
    live = publish(admin_app, FLOW)
    with admin_app.extensions["ivr.sessions"]() as session:
        draft = save_draft(session, FLOW.replace("Hello", "Hi"), "flows/test.yaml", by="rita")
        session.commit()
        assert (draft.number, draft.created_by) == (2, "rita")
        assert session.get(PublishedFlow, "test-line").version_id == live.id  # type: ignore
        again = save_draft(session, FLOW.replace("Hello", "Hi"), "flows/test.yaml")
        assert again.id == draft.id
        with pytest.raises(FlowInvalid):
            save_draft(session, FLOW.replace("next: lang", "next: nowhere"), "f.yaml")
        assert len(list_versions(session)) == 2
        assert session.scalars(select(FlowPublication)).all()[-1].version_id == live.id
    admin = signed_in(admin_app, "root")
    answer = admin.post("/admin/flows/test-line/draft", data={"source": FLOW + "# note\n"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("version=3")


def test_forms_need_a_csrf_token(database_url: str, redis_url: str) -> None:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    try:
        with app.extensions["ivr.sessions"]() as session:
            create_agent(session, "root", PASSWORD, role="admin")
            session.commit()
        publish(app, FLOW)
        client = app.test_client()
        page = client.get("/console/sign-in").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore
        client.post("/console/sign-in", data={"username": "root", "password": PASSWORD,
                                              "csrf_token": token})
        forged = client.post("/admin/flows/test-line/publish", data={"source": FLOW})
        assert forged.status_code == 400
        assert client.post("/admin/flows/validate", json={"source": FLOW}).status_code == 400
    finally:
        empty_tables(app)


def _wav(seconds: float = 1.0) -> bytes:
    rate = 8000
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)
    out = io.BytesIO()
    soundfile.write(out, tone, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def test_simulator_page_plays_a_draft_step_by_step(admin_app: Flask) -> None:
    publish(admin_app, FLOW)
    admin = signed_in(admin_app, "root")
    admin.post("/admin/flows/test-line/draft",
               data={"source": FLOW.replace("{en: Hello, de: Hallo}", "{en: Draft hi, de: Hallo}")})
    with admin_app.extensions["ivr.sessions"]() as session:
        draft_id = session.scalar(select(FlowVersion.id).where(FlowVersion.number == 2))
    step = admin.post("/admin/simulator/start", data={"version_id": str(draft_id),
                                                      "language": "en"}).get_json()
    heard = [said["text"] for entry in step["entries"] for said in entry["heard"]]
    assert heard[0] == "Draft hi" and step["waiting"] == "gather" and step["token"]
    assert "<Gather" in step["entries"][0]["twiml"]
    assert step["entries"][0]["request"].startswith("→ POST /voice/test?v=")

    step = admin.post("/admin/simulator/input", data={"token": step["token"], "kind": "keys",
                                                      "value": "1"}).get_json()
    assert step["entries"][0]["request"] is None and step["entries"][0]["notes"]  # the keys
    assert step["entries"][1]["request"].startswith("→ POST /voice/step?")
    heard = [said["text"] for entry in step["entries"] for said in entry["heard"]]
    assert heard and ("Press 1 for VPN" in heard[-1] or "closed" in " ".join(heard))

    bad = admin.post("/admin/simulator/input", data={"token": "forged", "kind": "keys",
                                                     "value": "1"})
    assert bad.status_code == 400 and "expired" in bad.get_json()["error"]
    if step["waiting"] == "gather":
        ended = admin.post("/admin/simulator/input", data={"token": step["token"],
                                                           "kind": "hangup"}).get_json()
        assert ended["over"] is True and ended["token"] is None
        assert any("caller hung up" in note for e in ended["entries"] for note in e["notes"])


def test_simulator_refuses_a_voicemail_without_a_standin(admin_app: Flask) -> None:
    publish(admin_app, FLOW)
    admin = signed_in(admin_app, "root")
    page = admin.get("/admin/simulator").get_data(as_text=True)
    assert "No Twilio stand-in is configured" in page
    with admin_app.extensions["ivr.sessions"]() as session:
        version_id = session.scalar(select(FlowVersion.id))
    step = admin.post("/admin/simulator/start", data={"version_id": str(version_id)}).get_json()
    refused = admin.post("/admin/simulator/input", data={
        "token": step["token"], "kind": "recording",
        "wav": (io.BytesIO(_wav()), "test.wav")})
    assert refused.status_code == 400


def test_simulator_page_keeps_a_test_call_waiting_in_a_queue_until_it_hangs_up(
        admin_app: Flask) -> None:
    from ivr.admin.simulator import _serializer
    from ivr.simulator import DEFAULT_CALLED, DEFAULT_CALLER
    from ivr.simulator.stepwise import CallState
    from ivr.simulator.waiting import QueueContext

    publish(admin_app, FLOW)
    admin = signed_in(admin_app, "root")
    with admin_app.extensions["ivr.sessions"]() as session:
        version_id = session.scalar(select(FlowVersion.id))
    # A test call paused after the first pass of Twilio's own hold music (no waitUrl).
    waiting = QueueContext(
        name="servicedesk", queue_sid="QU" + "1" * 32, action=None, action_method="POST",
        wait_url=None, wait_method="POST", entered_at=0.0,
        after_url="http://in-process.invalid/voice",
        after_twiml="<Response><Enqueue>servicedesk</Enqueue><Say>Back</Say></Response>",
        after_index=0, passes=1)
    state = CallState("CA" + "2" * 32, "http://in-process.invalid/voice", "<Response/>", 0,
                      30.0, "wait", queue=waiting.to_dict())
    with admin_app.app_context():
        token = _serializer().dumps({
            "call": {"version": version_id, "language": "en", "caller": DEFAULT_CALLER,
                     "called": DEFAULT_CALLED},
            "state": state.to_dict()})

    step = admin.post("/admin/simulator/input", data={"token": token, "kind": "keys",
                                                      "value": "5"}).get_json()
    assert step["waiting"] == "wait" and step["token"]
    assert step["prompt"]["queue"] == {"name": "servicedesk", "position": 1, "size": 1,
                                       "seconds": 60, "passes": 2}
    notes = [note for entry in step["entries"] for note in entry["notes"]]
    assert any("hold loop pass 2" in note for note in notes)

    ended = admin.post("/admin/simulator/input", data={"token": step["token"],
                                                       "kind": "hangup"}).get_json()
    assert ended["over"] is True and not ended["failures"]
    notes = [note for entry in ended["entries"] for note in entry["notes"]]
    assert any("hung up in queue servicedesk" in note for note in notes)
