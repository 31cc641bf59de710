"""Twilio's Queue and Member resources and call updates at the stand-in, through the twilio
library the line uses; the control endpoints the simulator uses, over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from callbacks.settings import Settings
from callbacks.telephony import close_clients, twilio_client
from ivr.standin import StandinServer

ACCOUNT = "AC" + "5" * 32
TOKEN = "standin-test-token-0123456789"
API = f"/2010-04-01/Accounts/{ACCOUNT}"
CALLERS = ["CA" + digit * 32 for digit in "abcdef"]
CONNECT = "https://support.example.test/voice/queue/connect?live=7"


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
def client(standin: StandinServer) -> Client:
    """The line's own twilio client, pointed at the stand-in."""
    return twilio_client(Settings(database_url="sqlite://", twilio_account_sid=ACCOUNT,
                                  twilio_auth_token=TOKEN, twilio_api_base_url=standin.url))


def join(standin: StandinServer, queue: str, call_sid: str) -> requests.Response:
    """What the simulator does when a caller reaches <Enqueue>queue</Enqueue>."""
    return requests.post(f"{standin.url}/_standin/queues/{queue}/members",
                         json={"call_sid": call_sid}, timeout=5)


def whereabouts(standin: StandinServer, call_sid: str) -> requests.Response:
    return requests.get(f"{standin.url}/_standin/queues/members/{call_sid}", timeout=5)


def refused(call: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


# --- the Queue resource --------------------------------------------------------------


def test_a_queue_is_created_fetched_resized_listed_and_deleted(standin, client):
    created = client.queues.create(friendly_name="servicedesk", max_size=20)

    assert created.sid.startswith("QU") and len(created.sid) == 34
    assert (created.friendly_name, created.max_size, created.current_size) == (
        "servicedesk", 20, 0)
    assert created.average_wait_time == 0 and created.account_sid == ACCOUNT
    assert created.uri == f"{API}/Queues/{created.sid}.json"
    assert created.date_created is not None and created.date_created.tzinfo is not None

    resized = client.queues(created.sid).update(max_size=50)
    fetched = client.queues(created.sid).fetch()

    assert resized.max_size == 50 and fetched.max_size == 50
    assert [q.sid for q in client.queues.list()] == [created.sid]
    assert client.queues(created.sid).delete() is True
    assert client.queues.list() == []
    assert refused(client.queues(created.sid).fetch).status == 404


def test_a_queue_made_without_a_size_holds_1000_calls(standin, client):
    assert client.queues.create(friendly_name="de").max_size == 1000


@pytest.mark.parametrize(("name", "size"), [("", None), ("x" * 65, None), ("ok", 0),
                                            ("ok", 5001)])
def test_queue_names_of_1_to_64_characters_and_sizes_of_1_to_5000(standin, client, name, size):
    error = refused(lambda: client.queues.create(friendly_name=name, max_size=size))

    assert error.status == 400 and error.msg
    assert client.queues.list() == []


def test_two_queues_cannot_share_a_name(standin, client):
    client.queues.create(friendly_name="servicedesk")
    other = client.queues.create(friendly_name="network")

    assert refused(lambda: client.queues.create(friendly_name="servicedesk")).status == 400
    assert refused(lambda: client.queues(other.sid).update(
        friendly_name="servicedesk")).status == 400
    assert sorted(q.friendly_name for q in client.queues.list()) == ["network", "servicedesk"]


def test_queue_lists_come_in_pages_that_the_library_follows(standin, client):
    made = [client.queues.create(friendly_name=f"q{n}").sid for n in range(7)]

    first = client.queues.page(page_size=3)
    raw = requests.get(f"{standin.url}{API}/Queues.json?PageSize=3&Page=2",
                       auth=(ACCOUNT, TOKEN), timeout=5).json()

    assert [q.sid for q in client.queues.list(page_size=3)] == made
    assert len(list(first)) == 3 and first.next_page_url is not None
    assert [q["sid"] for q in raw["queues"]] == made[6:]
    assert raw["next_page_uri"] is None and raw["page"] == 2 and raw["page_size"] == 3
    assert raw["first_page_uri"] == f"{API}/Queues.json?PageSize=3&Page=0"
    assert raw["previous_page_uri"] == f"{API}/Queues.json?PageSize=3&Page=1"
    assert raw["uri"] == f"{API}/Queues.json?PageSize=3&Page=2" and raw["start"] == 6


def test_a_queue_with_callers_in_it_is_not_deleted(standin, client):
    join(standin, "servicedesk", CALLERS[0])
    sid = client.queues.list()[0].sid

    assert refused(client.queues(sid).delete).status == 400
    assert client.queues(sid).fetch().current_size == 1


def test_queues_need_the_accounts_credentials(standin, client):
    sid = client.queues.create(friendly_name="servicedesk").sid
    stranger = Client(ACCOUNT, "wrong-token")
    stranger.api.base_url = standin.url

    assert refused(stranger.queues(sid).fetch).status == 401
    assert refused(lambda: stranger.queues.create(friendly_name="x")).status == 401


# --- members -------------------------------------------------------------------------


def test_callers_reaching_enqueue_wait_as_members_first_in_first_out(standin, client):
    answers = [join(standin, "servicedesk", sid) for sid in CALLERS[:3]]

    [queue] = client.queues.list()
    members = client.queues(queue.sid).members.list()
    front = client.queues(queue.sid).members("Front").fetch()
    second = client.queues(queue.sid).members(CALLERS[1]).fetch()

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert [a.json()["position"] for a in answers] == [1, 2, 3]
    assert answers[0].json()["queue_sid"] == queue.sid and queue.friendly_name == "servicedesk"
    assert queue.current_size == 3 and queue.average_wait_time >= 0
    assert [(m.call_sid, m.position) for m in members] == [(s, n) for n, s in
                                                           enumerate(CALLERS[:3], 1)]
    assert front.call_sid == CALLERS[0] and front.queue_sid == queue.sid
    assert second.position == 2 and second.wait_time >= 0
    assert second.uri == f"{API}/Queues/{queue.sid}/Members/{CALLERS[1]}.json"
    assert second.date_enqueued is not None and second.date_enqueued.tzinfo is not None


def test_a_member_update_dequeues_that_caller_to_the_url(standin, client):
    for sid in CALLERS[:3]:
        join(standin, "servicedesk", sid)
    queue_sid = client.queues.list()[0].sid

    member = client.queues(queue_sid).members(CALLERS[1]).update(url=CONNECT, method="POST")

    assert member.call_sid == CALLERS[1] and member.position == 2
    assert [m.call_sid for m in client.queues(queue_sid).members.list()] == [CALLERS[0],
                                                                          CALLERS[2]]
    assert client.queues(queue_sid).members(CALLERS[2]).fetch().position == 2
    where = whereabouts(standin, CALLERS[1]).json()
    assert where["dequeued"] is True and where["queue_sid"] == queue_sid
    assert (where["url"], where["method"]) == (CONNECT, "POST")
    assert whereabouts(standin, CALLERS[0]).json()["dequeued"] is False


def test_the_front_member_is_dequeued_by_name(standin, client):
    join(standin, "servicedesk", CALLERS[0])
    join(standin, "servicedesk", CALLERS[1])
    queue_sid = client.queues.list()[0].sid

    client.queues(queue_sid).members("Front").update(url=CONNECT, method="GET")

    assert whereabouts(standin, CALLERS[0]).json()["method"] == "GET"
    assert client.queues(queue_sid).members("Front").fetch().call_sid == CALLERS[1]


def test_dequeuing_a_caller_who_hung_up_is_twilios_404(standin, client):
    join(standin, "servicedesk", CALLERS[0])
    queue_sid = client.queues.list()[0].sid
    assert requests.delete(f"{standin.url}/_standin/queues/members/{CALLERS[0]}",
                           timeout=5).status_code == 204

    error = refused(lambda: client.queues(queue_sid).members(CALLERS[0]).update(url=CONNECT))

    assert (error.status, error.code) == (404, 20404)
    assert refused(client.queues(queue_sid).members("Front").fetch).status == 404
    assert whereabouts(standin, CALLERS[0]).status_code == 404


def test_a_caller_who_hung_up_in_the_queue_is_a_completed_call_and_left_is_unknown(
        standin, client):
    join(standin, "servicedesk", CALLERS[0])
    join(standin, "servicedesk", CALLERS[1])
    members = f"{standin.url}/_standin/queues/members"
    assert requests.delete(f"{members}/{CALLERS[0]}", params={"status": "completed"},
                           timeout=5).status_code == 204
    assert requests.delete(f"{members}/{CALLERS[1]}", timeout=5).status_code == 204

    assert client.calls(CALLERS[0]).fetch().status == "completed"
    assert refused(client.calls(CALLERS[1]).fetch).status == 404  # <Leave>: on elsewhere
    assert requests.delete(f"{members}/{CALLERS[2]}", params={"status": "talking"},
                           timeout=5).status_code == 400


def test_a_caller_is_dequeued_only_once(standin, client):
    join(standin, "servicedesk", CALLERS[0])
    queue_sid = client.queues.list()[0].sid
    client.queues(queue_sid).members(CALLERS[0]).update(url=CONNECT)

    again = refused(lambda: client.queues(queue_sid).members(CALLERS[0]).update(
        url=CONNECT + "&again=1"))

    assert again.status == 404
    assert whereabouts(standin, CALLERS[0]).json()["url"] == CONNECT


def test_members_of_an_unknown_queue_are_not_found(standin, client):
    with pytest.raises(TwilioException) as caught:  # a list page the library cannot fetch
        client.queues("QU" + "0" * 32).members.list()
    fetch = refused(client.queues("QU" + "0" * 32).members(CALLERS[0]).fetch)

    assert "404" in str(caught.value) and (fetch.status, fetch.code) == (404, 20404)


def test_a_member_update_needs_a_url(standin):
    join(standin, "servicedesk", CALLERS[0])
    queue_sid = whereabouts(standin, CALLERS[0]).json()["queue_sid"]

    response = requests.post(f"{standin.url}{API}/Queues/{queue_sid}/Members/{CALLERS[0]}.json",
                             auth=(ACCOUNT, TOKEN), data={"Method": "POST"}, timeout=5)

    assert response.status_code == 400 and response.json()["status"] == 400
    assert whereabouts(standin, CALLERS[0]).json()["dequeued"] is False


# --- call updates --------------------------------------------------------------------


def agent_call(client: Client) -> str:
    return str(client.calls.create(to="+4930555011", from_="+493012345678",
                                   url="https://support.example.test/dialer/live/agent?offer=1",
                                   status_callback="https://support.example.test/s").sid)


def test_a_ringing_agent_call_is_canceled(standin, client):
    sid = agent_call(client)

    updated = client.calls(sid).update(status="canceled")

    assert updated.status == "canceled" and client.calls(sid).fetch().status == "canceled"
    shown = requests.get(f"{standin.url}/_standin/calls/{sid}", timeout=5).json()
    assert shown["status"] == "canceled" and shown["url"].endswith("/dialer/live/agent?offer=1")
    assert [u["status"] for u in shown["updates"]] == ["canceled"]
    listed = requests.get(f"{standin.url}/_standin/calls", timeout=5).json()
    assert [c["status"] for c in listed] == ["canceled"]


def test_an_answered_call_is_completed_and_an_ended_call_cannot_be_redirected(standin, client):
    sid = agent_call(client)
    reported = requests.post(f"{standin.url}/_standin/calls/{sid}",
                             json={"status": "in-progress"}, timeout=5)

    canceled = client.calls(sid).update(status="canceled")  # too late: it was answered
    completed = client.calls(sid).update(status="completed")
    again = client.calls(sid).update(status="canceled")
    redirect = refused(lambda: client.calls(sid).update(url="https://support.example.test/x"))

    assert reported.json()["status"] == "in-progress"
    assert (canceled.status, completed.status, again.status) == ("in-progress", "completed",
                                                                 "completed")
    assert (redirect.status, redirect.code) == (400, 21220)
    assert standin.call_status(sid) == "completed"


def test_a_call_update_with_a_url_takes_a_waiting_caller_out_of_the_queue(standin, client):
    join(standin, "servicedesk", CALLERS[0])
    join(standin, "servicedesk", CALLERS[1])

    updated = client.calls(CALLERS[0]).update(url=CONNECT, method="POST")
    client.calls(CALLERS[1]).update(twiml="<Response><Say>Bye</Say><Hangup/></Response>")

    assert updated.sid == CALLERS[0] and updated.status == "in-progress"
    first, second = (whereabouts(standin, sid).json() for sid in CALLERS[:2])
    assert first["dequeued"] and first["url"] == CONNECT
    assert second["dequeued"] and second["twiml"].startswith("<Response><Say>Bye")
    assert client.queues.list()[0].current_size == 0
    shown = requests.get(f"{standin.url}/_standin/calls/{CALLERS[0]}", timeout=5).json()
    assert shown["url"] == CONNECT and shown["updates"][0]["by"] == "line"


def test_completing_a_waiting_callers_call_hangs_it_up(standin, client):
    join(standin, "servicedesk", CALLERS[0])

    client.calls(CALLERS[0]).update(status="completed")

    where = whereabouts(standin, CALLERS[0]).json()
    assert where["dequeued"] and where["hangup"] and where["url"] is None
    assert client.calls(CALLERS[0]).fetch().status == "completed"


def test_updating_an_unknown_call_is_twilios_404(standin, client):
    error = refused(lambda: client.calls(CALLERS[5]).update(status="completed"))

    assert (error.status, error.code) == (404, 20404)


@pytest.mark.parametrize("form", [{"Status": "busy"}, {},
                                  {"Url": "https://x.test/", "Method": "PUT"}])
def test_bad_call_updates_are_refused(standin, client, form):
    sid = agent_call(client)

    response = requests.post(f"{standin.url}{API}/Calls/{sid}.json", data=form,
                             auth=(ACCOUNT, TOKEN), timeout=5)

    assert response.status_code == 400 and response.json()["code"]
    assert standin.call_status(sid) == "queued" and standin.call_updates(sid) == []


# --- the control endpoints -----------------------------------------------------------


def test_joining_twice_changes_nothing_and_another_queue_moves_the_caller(standin, client):
    join(standin, "servicedesk", CALLERS[0])
    again = join(standin, "servicedesk", CALLERS[0])
    moved = join(standin, "network", CALLERS[0]).json()

    assert again.json()["position"] == 1
    sizes = {q.friendly_name: q.current_size for q in client.queues.list()}
    assert sizes == {"servicedesk": 0, "network": 1}
    assert moved["queue"] == "network" and moved["position"] == 1


def test_a_full_queue_turns_callers_away(standin, client):
    client.queues.create(friendly_name="small", max_size=1)
    join(standin, "small", CALLERS[0])

    full = join(standin, "small", CALLERS[1])

    assert full.status_code == 409 and "full" in full.json()["message"]
    assert whereabouts(standin, CALLERS[1]).status_code == 404


@pytest.mark.parametrize("body", [{}, {"call_sid": "CA123"}, {"call_sid": 5}, []])
def test_joining_needs_a_call_sid(standin, body):
    response = requests.post(f"{standin.url}/_standin/queues/servicedesk/members", json=body,
                             timeout=5)

    assert response.status_code == 400 and response.json()["message"]


def test_whereabouts_tell_position_size_and_wait(standin):
    join(standin, "servicedesk", CALLERS[0])
    join(standin, "servicedesk", CALLERS[1])

    where = whereabouts(standin, CALLERS[1]).json()

    assert (where["position"], where["current_size"], where["dequeued"]) == (2, 2, False)
    assert where["wait_time"] >= 0 and where["average_wait_time"] >= 0
    assert requests.delete(f"{standin.url}/_standin/queues/members/{CALLERS[3]}",
                           timeout=5).status_code == 404


def test_the_network_reports_call_progress(standin, client):
    sid = agent_call(client)

    bad = requests.post(f"{standin.url}/_standin/calls/{sid}", json={"status": "lost"},
                        timeout=5)
    unknown = requests.post(f"{standin.url}/_standin/calls/{CALLERS[4]}",
                            json={"status": "completed"}, timeout=5)
    ok = requests.post(f"{standin.url}/_standin/calls/{sid}", json={"status": "no-answer"},
                       timeout=5)

    assert (bad.status_code, unknown.status_code, ok.status_code) == (400, 404, 200)
    assert client.calls(sid).fetch().status == "no-answer"
    assert ok.json()["updates"][0]["by"] == "network"
    assert parsedate_to_datetime(ok.json()["updates"][0]["at"]).tzinfo is not None


def test_reset_forgets_queues_members_and_call_updates(standin, client):
    join(standin, "servicedesk", CALLERS[0])
    sid = agent_call(client)
    client.calls(sid).update(status="canceled")

    assert requests.post(f"{standin.url}/_standin/reset", timeout=5).status_code == 204

    assert client.queues.list() == [] and whereabouts(standin, CALLERS[0]).status_code == 404
    assert standin.call_updates(sid) == [] and standin.call_status(sid) is None
