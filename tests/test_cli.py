"""The `ivr` command line: flows validate/publish/list/rollback/schema, db upgrade, config."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from flask.testing import FlaskCliRunner
from sqlalchemy import select

from callbacks.workqueue.callback_requests import CallbackRequest, claim_next_callback
from ivr import create_app
from ivr.cli import main
from tests.conftest import AUTH_TOKEN, DEMO_FLOW, PUBLIC_BASE_URL
from tests.test_voice import FLOW, OPEN, Phone, said

BROKEN = FLOW.replace("next: lang", "next: lnag").replace(
    'hours: {mon-fri: "08:00-18:00"}', 'hours: {mon-fri: "08:00-25:00"}')


def test_validate_reports_every_problem_with_its_location(runner: FlaskCliRunner,
                                                          tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(FLOW, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN, encoding="utf-8")
    result = runner.invoke(main, ["flows", "validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"{good}: ok" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith(str(bad))]
    assert any(line.startswith(f"{bad}:8:22:") and "25:00" in line for line in lines), lines
    hello = BROKEN.splitlines()[14]
    column = hello.index("lnag") + 1
    assert any(line.startswith(f"{bad}:15:{column}:") and "unknown node 'lnag'" in line
               and "did you mean 'lang'" in line for line in lines), lines
    assert "problem(s) found" in result.output


def test_validate_the_demo_flow(runner: FlaskCliRunner) -> None:
    result = runner.invoke(main, ["flows", "validate", str(DEMO_FLOW)])
    assert result.exit_code == 0, result.output


def test_publish_list_rollback(runner: FlaskCliRunner, tmp_path: Path) -> None:
    flow = tmp_path / "line.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    assert runner.invoke(main, ["flows", "publish", str(flow)]).exit_code == 0
    flow.write_text(FLOW.replace("Hello", "Good day"), encoding="utf-8")
    result = runner.invoke(main, ["flows", "publish", str(flow), "--by", "alice"])
    assert "published test-line version 2" in result.output

    flow.write_text(BROKEN, encoding="utf-8")
    refused = runner.invoke(main, ["flows", "publish", str(flow)])
    assert refused.exit_code == 1
    assert "live version is unchanged" in refused.output

    listed = runner.invoke(main, ["flows", "list"]).output.splitlines()
    assert listed[0].startswith("* test-line v2") and "alice" in listed[0]
    assert listed[1].startswith("  test-line v1")

    rolled = runner.invoke(main, ["flows", "rollback", "1", "--flow", "test-line"])
    assert rolled.exit_code == 0 and "version 1 is live again" in rolled.output
    assert runner.invoke(main, ["flows", "list"]).output.startswith("  test-line v2")
    missing = runner.invoke(main, ["flows", "rollback", "7", "--flow", "test-line"])
    assert missing.exit_code == 1 and "has no version 7" in missing.output


def test_schema_is_json_schema_for_editors(runner: FlaskCliRunner) -> None:
    result = runner.invoke(main, ["flows", "schema"])
    schema = json.loads(result.output)
    assert schema["$schema"].startswith("https://json-schema.org/")
    text = json.dumps(schema)
    for kind in ("say", "menu", "language", "hours", "voicemail", "callback", "transfer",
                 "hangup", "goto"):
        assert f'"const": "{kind}"' in text or f'"enum": ["{kind}"]' in text


def test_the_embedded_sqlite_default_migrates_and_answers_calls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    app = create_app({"DATABASE_URL": url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                      "PUBLIC_BASE_URL": PUBLIC_BASE_URL, "CALL_LOG_FLUSH_SECONDS": 0,
                      "CLOCK": lambda: OPEN})
    runner = app.test_cli_runner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    published = runner.invoke(main, ["flows", "publish", str(DEMO_FLOW)])
    assert published.exit_code == 0, published.output
    for attempt in range(2):  # the second call joins the first one's callback request
        phone = Phone(app.test_client(), call_sid=f"CA{attempt:032d}")
        twiml = phone.dial_in()
        assert said(twiml), "the demo flow greets the caller"
        phone.press("1")  # English
        phone.press("1")  # password or locked account
        assert phone.twiml is not None and "callback, press 3" in " ".join(said(phone.twiml))
        phone.press("3")  # a callback
        phone.press("1")  # as soon as possible
        phone.press("1")  # at the number I call from
        assert "10001" in " ".join(said(phone.twiml)).replace(" ", "")
    with app.extensions["ivr.sessions"]() as session:
        request = session.scalars(select(CallbackRequest)).one()
        # the second call about the same problem joined the request and raised it from P2
        assert (request.category, request.priority, request.contacts) == ("password", "P1", 2)
    with app.extensions["ivr.sessions"]() as session:  # SQLite: the single writer claims it
        claimed = claim_next_callback(session, "agent-1", OPEN + timedelta(minutes=1))
        assert claimed is not None and claimed.id == request.id and claimed.attempts == 1
    with app.extensions["ivr.sessions"]() as session:
        assert claim_next_callback(session, "agent-2", OPEN + timedelta(minutes=1)) is None
    app.extensions["ivr.engine"].dispose()
