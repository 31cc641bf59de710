"""Over-long Twilio fields beyond what a caller typed or said: an SMS `Body` and a recording's
`Recording*` fields are cut to their limits after the signature check, the recording is stored
cut and the call goes on, and each cut is noted (in the request and in the log, by length)."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import pytest
from flask import Flask, g, request
from sqlalchemy import select

from callbacks.tickets.ticket import Ticket
from callbacks.voicemail import Voicemail
from ivr.voice.form_limits import FIELD_LIMITS
from tests.conftest import twilio_post
from tests.test_voice import Phone, make_app, open_app, said

__all__ = ["make_app", "open_app"]  # fixtures of the voice webhooks' tests

ACCOUNT = "AC" + "7" * 32


def test_an_over_long_sms_body_is_cut_before_the_line_reads_it(
        open_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    body = "5 " + "x" * 100_000
    client = open_app.test_client()
    with client, caplog.at_level(logging.WARNING, logger="ivr.voice.form_limits"):
        answer = twilio_post(client, "/sms", {"MessageSid": "SM" + "1" * 32,
                                              "From": "+4915112345678", "To": "+493012345678",
                                              "Body": body})
        assert answer.status_code == 200 and ET.fromstring(answer.data).tag == "Response"
        assert request.form["Body"] == body[:1600] and FIELD_LIMITS["Body"] == 1600
        assert g.cut_fields == {"Body": len(body)}
    assert "Body (100002 characters, 1600 kept)" in caplog.text
    assert "xxx" not in caplog.text  # lengths, never the text


def test_over_long_recording_fields_are_stored_cut_and_the_caller_hears_the_ticket(
        open_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    client = open_app.test_client()
    phone = Phone(client)
    phone.dial_in()
    phone.press("1")
    phone.press("7")
    record = phone.stay_silent().find("Record")
    assert record is not None
    sid = "RE" + "a" * 5000
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}"
    fields = {"RecordingSid": sid, "RecordingUrl": url, "RecordingDuration": "9" * 300}
    with client, caplog.at_level(logging.WARNING, logger="ivr.voice.form_limits"):
        twiml = phone.post(record.attrib["action"], **fields)
        assert g.cut_fields == {name: len(value) for name, value in fields.items()}
    assert any("ticket" in line.lower() for line in said(twiml)), said(twiml)
    assert twiml.find("Record") is None or "n=apology" not in twiml.find("Record").get(
        "action", "")
    # Twilio's recording-status callback repeats the same fields: still the one voicemail.
    phone.post(record.attrib["recordingStatusCallback"], **fields)
    with open_app.extensions["ivr.sessions"]() as session:
        [voicemail] = session.scalars(select(Voicemail)).all()
        assert voicemail.recording_sid == sid[:FIELD_LIMITS["RecordingSid"]]
        assert voicemail.recording_url == url[:FIELD_LIMITS["RecordingUrl"]]
        assert voicemail.duration_seconds == 0  # sixteen nines are no duration
        assert session.scalar(select(Ticket.voicemail_id)) == voicemail.id
    for name in fields:
        assert f"{name} ({len(fields[name])} characters, {FIELD_LIMITS[name]} kept)" in caplog.text
    assert "aaaa" not in caplog.text
