"""Twilio's REST API through the real twilio library, against the loopback stand-in."""

from __future__ import annotations

import dataclasses
import io
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
import soundfile
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from callbacks.settings import Settings
from callbacks.telephony import (
    DownloadFailed,
    RecordingNotReady,
    RecordingRefused,
    TelephonyError,
    close_clients,
    delete_recording,
    download_recording,
    place_call,
    send_sms,
    twilio_client,
)
from ivr.standin import StandinServer

ACCOUNT = "AC" + "1234abcd" * 4
TOKEN = "standin-token-for-telephony-tests"
SID = "RE" + "0123456789abcdef" * 2
SMS_FROM = "+4930555000"


@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT, TOKEN) as standin:
        yield standin
    close_clients()


@pytest.fixture()
def standin(server: StandinServer) -> StandinServer:
    server.reset()
    return server


@pytest.fixture()
def settings(standin: StandinServer) -> Settings:
    return Settings(database_url="sqlite://", twilio_account_sid=ACCOUNT,
                    twilio_auth_token=TOKEN, twilio_api_base_url=standin.url, sms_from=SMS_FROM)


@pytest.fixture(scope="module")
def audio() -> bytes:
    """Half a second of a real 8 kHz WAV, then every byte value (not valid UTF-8)."""
    out = io.BytesIO()
    with soundfile.SoundFile(out, "w", samplerate=8000, channels=1, format="WAV",
                             subtype="PCM_16") as sink:
        sink.buffer_write(bytes(range(256)) * 31 + b"\x00" * 64, dtype="int16")
    return out.getvalue()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# --- the client ----------------------------------------------------------------------


def test_client_goes_through_the_library_to_the_configured_host(standin, settings):
    client = twilio_client(settings)
    message = client.messages.create(to="+4930111222", from_=SMS_FROM, body="hello")

    assert isinstance(client, Client)
    assert client.api.base_url == standin.url
    assert isinstance(message, MessageInstance)
    assert message.sid == standin.messages()[0].sid
    assert message.status == "queued" and message.to == "+4930111222"
    assert message.date_created is not None and message.date_created.year >= 2024


def test_one_client_per_settings_shared_by_threads(settings):
    clients: list[Client] = []
    threads = [threading.Thread(target=lambda: clients.append(twilio_client(settings)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(clients) == 8 and all(client is clients[0] for client in clients)
    other = dataclasses.replace(settings, twilio_auth_token="another-token")
    assert twilio_client(other) is not clients[0]


def test_edge_and_region_in_the_environment_do_not_reroute(standin, settings, monkeypatch):
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    # A trailing slash makes a new cached client, built while the variables are set.
    fresh = dataclasses.replace(settings, twilio_api_base_url=standin.url + "/")

    sid = send_sms(fresh, "+4930111222", "hello")

    assert [m.sid for m in standin.messages()] == [sid]


def test_missing_credentials_are_refused_before_any_request(standin, settings):
    with pytest.raises(TelephonyError, match="IVR_TWILIO_AUTH_TOKEN") as error:
        send_sms(dataclasses.replace(settings, twilio_auth_token=""), "+4930111222", "hi")

    assert error.value.retryable is False
    assert standin.requests() == []


# --- recordings ----------------------------------------------------------------------


def test_download_with_the_account_credentials(standin, settings, audio):
    standin.put_recording(SID, audio)

    data = download_recording(settings, standin.recording_url(SID))

    assert data == audio
    assert soundfile.info(io.BytesIO(data)).samplerate == 8000
    assert [r.path for r in standin.requests()] == [
        f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{SID}.wav"]


def test_download_keeps_an_explicit_extension(standin, settings, audio):
    standin.put_recording(SID, audio)
    standin.put_recording(SID, b"ID3 mp3 bytes \xff\xfb", audio_format="mp3")

    assert download_recording(settings, standin.recording_url(SID) + ".wav") == audio
    assert download_recording(settings, standin.recording_url(SID) + ".mp3") == (
        b"ID3 mp3 bytes \xff\xfb")


def test_mp3_that_was_never_stored_is_not_ready(standin, settings, audio):
    standin.put_recording(SID, audio)

    with pytest.raises(RecordingNotReady):
        download_recording(settings, standin.recording_url(SID) + ".mp3")


def test_wrong_token_is_a_permanent_failure(standin, settings, audio):
    standin.put_recording(SID, audio)
    wrong = dataclasses.replace(settings, twilio_auth_token="not-the-token")

    with pytest.raises(DownloadFailed, match="check IVR_TWILIO_ACCOUNT_SID and "
                       "IVR_TWILIO_AUTH_TOKEN") as error:
        download_recording(wrong, standin.recording_url(SID))

    assert error.value.retryable is False and error.value.status == 401
    assert "not-the-token" not in str(error.value)


def test_unknown_recording_is_not_ready_yet(standin, settings):
    with pytest.raises(RecordingNotReady) as error:
        download_recording(settings, standin.recording_url(SID))

    assert isinstance(error.value, TelephonyError)
    assert error.value.retryable is True and error.value.status == 404


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True),
                                                   (400, False)])
def test_server_errors_are_retryable(standin, settings, audio, status, retryable):
    standin.put_recording(SID, audio)
    standin.inject_fault("/Recordings/", status)

    with pytest.raises(DownloadFailed) as error:
        download_recording(settings, standin.recording_url(SID))

    assert error.value.retryable is retryable and error.value.status == status
    assert download_recording(settings, standin.recording_url(SID)) == audio  # fault used up


def test_timeout_is_retryable(standin, settings, audio):
    standin.put_recording(SID, audio)
    standin.inject_fault("/Recordings/", None, delay_seconds=3)

    with pytest.raises(DownloadFailed, match=r"within 0\.3 s") as error:
        download_recording(settings, standin.recording_url(SID), timeout=0.3)

    assert error.value.retryable is True


def test_connection_refused_is_retryable(settings):
    unreachable = dataclasses.replace(settings, twilio_api_base_url=closed_port_url())
    url = f"{unreachable.twilio_api_base_url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{SID}"

    with pytest.raises(DownloadFailed, match="cannot reach Twilio") as error:
        download_recording(unreachable, url)

    assert error.value.retryable is True


@pytest.mark.parametrize("make_url", [
    lambda base: f"https://evil.example.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{SID}",
    lambda base: base.replace("http://", "https://") + f"/2010-04-01/Accounts/{ACCOUNT}"
                 f"/Recordings/{SID}",
    lambda base: base.rsplit(":", 1)[0] + f":1/2010-04-01/Accounts/{ACCOUNT}/Recordings/{SID}",
    lambda base: base.replace("127.0.0.1", "localhost") + f"/2010-04-01/Accounts/{ACCOUNT}"
                 f"/Recordings/{SID}",
    lambda base: base.replace("http://", f"http://{ACCOUNT}:{TOKEN}@") + "/2010-04-01/"
                 f"Accounts/{ACCOUNT}/Recordings/{SID}",
    lambda base: f"{base}/2010-04-01/Accounts/AC{'9' * 32}/Recordings/{SID}",
    lambda base: f"{base}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
    lambda base: f"{base}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{SID}.json",
    lambda base: f"{base}/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1234",
    lambda base: f"{base}/2010-04-01/Accounts/{ACCOUNT}/Recordings/../Messages/{SID}",
    lambda base: f"{base}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{SID}?Redirect=1",
    lambda base: f"{base}/_standin/messages",
    lambda base: "not a url",
    lambda base: "http://[::1/2010-04-01",
], ids=["other-host", "other-scheme", "other-port", "other-name", "userinfo", "other-account",
        "not-a-recording", "json", "bad-sid", "dot-segments", "query", "standin-control",
        "garbage", "malformed"])
def test_foreign_urls_are_refused_without_a_request(standin, settings, audio, caplog, make_url):
    standin.put_recording(SID, audio)
    url = make_url(standin.url)

    with caplog.at_level(logging.WARNING, logger="callbacks.telephony"), \
            pytest.raises(RecordingRefused) as error:
        download_recording(settings, url)

    assert error.value.retryable is False
    assert standin.requests() == []
    assert len(caplog.records) == 1
    logged = caplog.records[0].getMessage()
    assert TOKEN not in logged and SID not in logged and ACCOUNT not in logged


def test_refusal_names_the_foreign_host(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="callbacks.telephony"), \
            pytest.raises(RecordingRefused):
        download_recording(settings, f"https://evil.example.com/2010-04-01/Accounts/{ACCOUNT}"
                                     f"/Recordings/{SID}")

    assert "'evil.example.com'" in caplog.records[0].getMessage()


def test_base_url_with_a_path_prefix(standin, settings, audio):
    prefixed = dataclasses.replace(settings, twilio_api_base_url=standin.url + "/twilio")
    url = f"{standin.url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{SID}"

    with pytest.raises(RecordingRefused):  # the prefix is part of the configured API
        download_recording(prefixed, url)


def test_delete_recording(standin, settings, audio):
    standin.put_recording(SID, audio)

    delete_recording(settings, SID)

    assert standin.deleted() == [SID]
    with pytest.raises(RecordingNotReady):
        download_recording(settings, standin.recording_url(SID))
    delete_recording(settings, SID)  # already gone: a retried job succeeds
    assert standin.deleted() == [SID]


def test_delete_recording_failure_is_retryable(standin, settings, audio):
    standin.put_recording(SID, audio)
    standin.inject_fault("/Recordings/", 500, method="DELETE")

    with pytest.raises(TelephonyError) as error:
        delete_recording(settings, SID)

    assert error.value.retryable is True and error.value.status == 500
    assert standin.deleted() == []


# --- SMS and calls -------------------------------------------------------------------


def test_send_sms(standin, settings):
    sid = send_sms(settings, "+4930111222", "Ticket 42 is open.")

    [message] = standin.messages()
    assert message.sid == sid and sid.startswith("SM") and len(sid) == 34
    assert (message.to, message.from_, message.body) == ("+4930111222", SMS_FROM,
                                                         "Ticket 42 is open.")


def test_send_sms_from_another_number(standin, settings):
    send_sms(settings, "+4930111222", "hi", from_="+4930999888")

    assert standin.messages()[0].from_ == "+4930999888"


def test_send_sms_needs_a_sender(standin, settings):
    with pytest.raises(TelephonyError, match="IVR_SMS_FROM") as error:
        send_sms(dataclasses.replace(settings, sms_from=""), "+4930111222", "hi")

    assert error.value.retryable is False
    assert standin.requests() == []


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True),
                                                   (401, False), (400, False)])
def test_send_sms_errors_say_whether_to_retry(standin, settings, status, retryable):
    standin.inject_fault("/Messages.json", status)

    with pytest.raises(TelephonyError) as error:
        send_sms(settings, "+4930111222", "hi")

    assert error.value.retryable is retryable and error.value.status == status
    assert error.value.code == 20000 + status
    assert "+4930111222" not in str(error.value)
    assert standin.messages() == []


BAD_NUMBER = "+49301234567890123"
"""Too long for E.164: Twilio answers 21211 and quotes the number in its message."""


@pytest.mark.parametrize("action", ["sms", "call"])
def test_twilio_quoting_a_phone_number_never_reaches_the_error_message(standin, settings,
                                                                       action):
    raw = Client(ACCOUNT, TOKEN)
    raw.api.base_url = standin.url
    with pytest.raises(Exception) as quoted:  # the stand-in quotes it, as Twilio does
        raw.messages.create(to=BAD_NUMBER, from_=SMS_FROM, body="hi")
    assert BAD_NUMBER in str(getattr(quoted.value, "msg", ""))

    with pytest.raises(TelephonyError, match="21211") as error:
        if action == "sms":
            send_sms(settings, BAD_NUMBER, "hi")
        else:
            place_call(settings, BAD_NUMBER, SMS_FROM, "https://ivr.example.test/dial/7")

    message = str(error.value)
    assert "is not a valid phone number" in message  # Twilio's words are kept...
    assert "The 'To' number [number] is" in message  # ...with the number cut out
    assert "1234567890123" not in message and "+49" not in message
    assert error.value.retryable is False and error.value.status == 400
    assert standin.messages() == [] and standin.calls() == []


def test_send_sms_rejected_by_twilio_is_permanent(settings):
    with pytest.raises(TelephonyError, match="21604") as error:
        send_sms(settings, "", "hi")

    assert error.value.retryable is False and error.value.status == 400


def test_send_sms_wrong_token(settings):
    with pytest.raises(TelephonyError, match="IVR_TWILIO_AUTH_TOKEN") as error:
        send_sms(dataclasses.replace(settings, twilio_auth_token="wrong"), "+4930111222", "hi")

    assert error.value.retryable is False and error.value.status == 401


def test_send_sms_unreachable_is_retryable(settings):
    unreachable = dataclasses.replace(settings, twilio_api_base_url=closed_port_url())

    with pytest.raises(TelephonyError, match="ConnectionError") as error:
        send_sms(unreachable, "+4930111222", "hi")

    assert error.value.retryable is True


def test_send_sms_timeout_is_retryable(standin, settings, monkeypatch):
    monkeypatch.setattr(twilio_client(settings).http_client, "timeout", 0.3)
    standin.inject_fault("/Messages.json", None, delay_seconds=3)

    with pytest.raises(TelephonyError, match="ReadTimeout") as error:
        send_sms(settings, "+4930111222", "hi")

    assert error.value.retryable is True


def test_place_call(standin, settings):
    sid = place_call(settings, "+4930111222", "+4930555000", "https://ivr.example.test/dial/7",
                     status_callback="https://ivr.example.test/dial/7/status")

    [call] = standin.calls()
    assert call.sid == sid and sid.startswith("CA") and len(sid) == 34
    assert (call.to, call.from_) == ("+4930111222", "+4930555000")
    assert call.url == "https://ivr.example.test/dial/7"
    assert call.status_callback == "https://ivr.example.test/dial/7/status"
    assert call.resource["status"] == "queued"


def test_place_call_without_status_callback(standin, settings):
    place_call(settings, "+4930111222", "+4930555000", "https://ivr.example.test/dial/7")

    assert standin.calls()[0].status_callback is None
    assert "StatusCallback" not in standin.calls()[0].params


def test_place_call_failure_is_retryable(standin, settings):
    standin.inject_fault("/Calls.json", 502)

    with pytest.raises(TelephonyError) as error:
        place_call(settings, "+4930111222", "+4930555000", "https://ivr.example.test/dial/7")

    assert error.value.retryable is True and standin.calls() == []


# --- callers in queues and the agents' rings ----------------------------------------------


def test_a_ring_has_its_timeout_and_can_be_cancelled_while_it_rings(standin, settings):
    from callbacks.telephony import cancel_call

    sid = place_call(settings, to="+4930555010", from_=SMS_FROM, url="https://x.test/a",
                     timeout=20)
    assert standin.calls()[-1].params["Timeout"] == "20"
    assert cancel_call(settings, sid) is True
    assert standin.call_status(sid) == "canceled"
    assert cancel_call(settings, sid) is True  # a repeated cancel: still canceled
    from ivr.standin.state import CallUpdate

    answered = place_call(settings, to="+4930555011", from_=SMS_FROM, url="https://x.test/a")
    standin.state.update_call(answered, CallUpdate("in-progress", None, None, None, "network"))
    assert cancel_call(settings, answered) is False  # picked up: too late to cancel
    assert standin.call_status(answered) == "in-progress"


def test_a_caller_is_dequeued_by_call_sid_once(standin, settings):
    from callbacks.telephony import MemberGone, dequeue_member, queue_sid_for

    where = standin.queues.join("servicedesk", "CA" + "5" * 32)
    assert queue_sid_for(settings, "servicedesk") == where["queue_sid"]
    assert queue_sid_for(settings, "elsewhere") is None
    dequeue_member(settings, where["queue_sid"], "CA" + "5" * 32, "https://x.test/connect")
    after = standin.queues.whereabouts("CA" + "5" * 32)
    assert after is not None and after["dequeued"] and after["url"] == "https://x.test/connect"
    with pytest.raises(MemberGone):  # taken already, or hung up: not in the queue any more
        dequeue_member(settings, where["queue_sid"], "CA" + "5" * 32, "https://x.test/connect")
