"""rq jobs: a voicemail becomes a complete ticket, and the caller gets its number by SMS.

Every job starts from SQL and is safe to run again: Redis may lose it, a worker may die in the
middle, and the reconciler or rq's retry will run it once more.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.calllog import Call
from callbacks.db import record_after_the_fact, utcnow
from callbacks.display_time import local_text, readers_zone
from callbacks.flowstore import compiled_version
from callbacks.sms import can_receive_sms, sms_text
from callbacks.telephony import (
    RecordingRefused,
    TelephonyError,
    delete_recording,
    download_recording,
)
from callbacks.tickets.optout import OptedOut, send_text
from callbacks.tickets.ticket import Ticket, TranscriptionResult, add_event, apply_transcription
from callbacks.tickets.workflow import add_caller_message, sla_due_at
from callbacks.voicemail import Voicemail, store_audio, stored_audio
from callbacks.workqueue.callback_intake import CallbackWish, ask_for_callback
from callbacks.workqueue.dialer import enqueue_dial
from routing.hours import BusinessHours

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""Runs of a voicemail job before it is left visible as failed (rq retries 4 times)."""


class RetryLater(RuntimeError):
    """A passing failure; rq runs the job again after its backoff."""


def process_voicemail(voicemail_id: int) -> dict[str, object]:
    """Download, decode, transcribe and classify a voicemail onto its ticket."""
    sessions = runtime.sessions()
    with sessions() as session:
        voicemail = session.get(Voicemail, voicemail_id, with_for_update=True)
        if voicemail is None or voicemail.state in ("done", "failed"):
            return {"voicemail": voicemail_id, "skipped": True}
        if voicemail.attempts >= MAX_ATTEMPTS:
            session.rollback()
            _give_up(voicemail_id, f"gave up after {MAX_ATTEMPTS} attempts")
            return {"voicemail": voicemail_id, "failed": "attempts used up"}
        voicemail.state = "processing"
        voicemail.attempts += 1
        attempt = voicemail.attempts
        recording_url, language = voicemail.recording_url, voicemail.language
        category_hint, priority_hint = voicemail.category_hint, voicemail.priority_hint
        session.commit()

    try:
        audio = _recording_bytes(voicemail_id, recording_url)
        result = transcribe_recording(audio, language, category_hint, priority_hint)
    except RecordingRefused as refused:
        _give_up(voicemail_id, f"recording refused: {refused}")
        return {"voicemail": voicemail_id, "failed": str(refused)}
    except Exception as error:
        retryable = not isinstance(error, TelephonyError) or error.retryable
        if retryable and attempt < MAX_ATTEMPTS:
            _set_back(voicemail_id, f"attempt {attempt} failed: {error}")
            raise RetryLater(str(error)) from error
        public = (f"the recording could not be fetched: {error.public}"
                  if isinstance(error, TelephonyError)
                  else "the recording could not be processed (the worker log says why)")
        _give_up(voicemail_id, f"failed after {attempt} attempt(s): {error}",
                 f"{public}; tried {attempt} time(s)")
        return {"voicemail": voicemail_id, "failed": str(error)}

    with sessions() as session:
        voicemail = session.get(Voicemail, voicemail_id, with_for_update=True)
        ticket = _ticket_of(session, voicemail)
        assert voicemail is not None and ticket is not None
        if voicemail.state in ("done", "failed"):
            # Another run finished first (Redis lost this job's record, so the reconciler
            # queued it again while it ran): its result stands, nothing is done twice.
            return {"voicemail": voicemail_id, "skipped": True}
        if voicemail.ticket_id is not None:  # a repeat caller's message to their ticket
            add_caller_message(session, ticket, voicemail.id, result.transcript,
                               result.audio_notes or result.detail)
        else:
            priority = ticket.priority
            apply_transcription(session, ticket, result)
            if ticket.priority != priority or ticket.due_at is None:
                ticket.due_at = sla_due_at(ticket, runtime.priority_policy(),
                                           _flow_hours(session, voicemail), utcnow())
        voicemail.state = "done"
        voicemail.last_error = None
        ticket_id = ticket.id
        if voicemail.wants_callback:
            _queue_callback(session, voicemail, ticket, result.priority)
        session.commit()
        if voicemail.wants_callback:
            enqueue_dial(runtime.redis())  # a free agent may take it right away

    if runtime.settings().delete_recordings:
        _delete_at_twilio(voicemail_id, ticket_id)
    registry = runtime.models()
    return {"voicemail": voicemail_id, "ticket": ticket_id, "transcription": result.transcription,
            "pid": os.getpid(), "model_loads": len(registry.loads)}


def transcribe_recording(audio: bytes, language: str, category_hint: str | None,
                         priority_hint: str | None) -> TranscriptionResult:
    """What a recording says and what it is about; bad audio gives a result that says why."""
    from speech.audio import AudioProblem, decode_audio
    from speech.models import ModelMissing
    from speech.transcriber import transcribe

    rules = runtime.keyword_rules()
    settings = runtime.settings()

    def without_speech(state: str, notes: str, detail: str) -> TranscriptionResult:
        fallback = rules.classify("", language, menu_category=category_hint,
                                  menu_priority=priority_hint)
        return TranscriptionResult(state, "", "[]", None, fallback.category, fallback.priority,
                                   notes, detail)

    try:
        decoded = decode_audio(audio, max_seconds=settings.max_voicemail_seconds)
    except AudioProblem as problem:
        return without_speech("bad_audio", problem.message, f"audio {problem.kind}")
    notes = " ".join(decoded.notes)
    if decoded.is_silent:
        return without_speech("no_speech", notes or "The recording is silent.", "silent")
    try:
        model = runtime.models().load(language)
    except ModelMissing as missing:
        # The fix (a path, a command) is for admins: the log has it, agents read the ticket.
        log.warning("no transcript: %s", missing)
        return without_speech("no_model", f"{notes} No transcript: speech recognition for "
                              f"'{language}' is not set up on this line yet.".strip(),
                              "no speech model")
    transcript = transcribe(decoded, model, language=language, threads=settings.speech_threads)
    if not transcript.text:
        return without_speech("no_speech", notes or "No words were recognised.", "no words")
    found = rules.classify(transcript.text, language, menu_category=category_hint,
                           menu_priority=priority_hint)
    words = json.dumps([asdict(word) for word in transcript.words], ensure_ascii=False)
    # The real-time factor is read back by /metrics (ivr/metrics.py): keep its wording.
    factor = transcript.decode_seconds / transcript.audio_seconds if transcript.audio_seconds else 0
    detail = (f"{len(transcript.words)} words, confidence {transcript.confidence:.2f}, "
              f"{transcript.audio_seconds:.1f} s audio in {transcript.decode_seconds:.1f} s "
              f"(real-time factor {factor:.3f}); {'; '.join(found.reasons)}")
    return TranscriptionResult("done", transcript.text, words, transcript.confidence,
                               found.category, found.priority, notes, detail)


def send_ticket_sms(ticket_id: int, line: str = "") -> str | None:
    """Text the caller their ticket number, once: from IVR_SMS_FROM, else from `line` (the
    number they dialled, as the webhook that queued the job knew it), else from the number the
    call log holds (a job the reconciler queued again, long after the call)."""
    settings = runtime.settings()
    with runtime.sessions()() as session:
        ticket = session.get(Ticket, ticket_id, with_for_update=True)
        if ticket is None or ticket.sms_sid:
            return None
        if not can_receive_sms(ticket.caller):
            add_event(session, ticket, "sms_skipped", "the caller's number cannot receive texts")
            session.commit()
            return None
        sender = settings.sms_from or line
        if not sender:  # texts go out from the number the caller dialled
            call = session.scalar(select(Call).where(Call.call_sid == ticket.call_sid))
            if call is None:  # the call log is written behind the webhooks: not there yet
                raise RetryLater(f"ticket {ticket_id}: call {ticket.call_sid} not logged yet")
            sender = call.called
        kind = "ticket_created" if ticket.voicemail_id is not None else "callback_queued"
        body = sms_text(kind, ticket.language, number=ticket.number)
        caller, language = ticket.caller, ticket.language
        session.commit()
    try:
        sid = send_text(settings, caller, body, from_=sender or None)
    except OptedOut as refused:
        reason = str(refused)
        record_after_the_fact(runtime.sessions(), lambda session: add_event(
            session, _ticket(session, ticket_id), "sms_skipped", reason))
        return None
    except TelephonyError as error:
        if error.retryable:
            raise RetryLater(str(error)) from error
        log.warning("the ticket text of ticket %s was not sent: %s", ticket_id, error)
        reason = f"ticket number: {error.public}"
        record_after_the_fact(runtime.sessions(), lambda session: add_event(
            session, _ticket(session, ticket_id), "sms_failed", reason))
        return None

    def sent(session: Session) -> None:
        ticket = _ticket(session, ticket_id)
        ticket.sms_sid = sid
        add_event(session, ticket, "sms_sent", f"ticket number sent ({language})")

    record_after_the_fact(runtime.sessions(), sent)
    return sid


def _ticket_of(session: Session, voicemail: Voicemail | None) -> Ticket | None:
    """The voicemail's own ticket, or the ticket a repeat caller added it to."""
    if voicemail is None:
        return None
    if voicemail.ticket_id is not None:
        return session.get(Ticket, voicemail.ticket_id, with_for_update=True)
    return session.scalar(select(Ticket).where(Ticket.voicemail_id == voicemail.id))


def _flow_hours(session: Session, voicemail: Voicemail) -> BusinessHours | None:
    """The business hours of the flow the voicemail was left in (its first calendar)."""
    if voicemail.flow_version_id is None:
        return None
    compiled = compiled_version(session, voicemail.flow_version_id)
    return next(iter(compiled.calendars.values()), None)


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None
    return ticket


def _queue_callback(session: Session, voicemail: Voicemail, ticket: Ticket,
                    keyword_priority: str | None) -> None:
    """The flow asked for a callback after this voicemail: queue it, tied to the ticket."""
    hours = _flow_hours(session, voicemail)
    wish = CallbackWish(caller=ticket.caller, call_sid=voicemail.call_sid,
                        language=voicemail.language, category=ticket.category,
                        menu_priority=voicemail.priority_hint, ticket_id=ticket.id,
                        keyword_priority=keyword_priority)
    queued = ask_for_callback(session, wish, runtime.priority_policy(), runtime.directory(),
                              hours, utcnow())
    add_event(session, ticket, "callback_queued" if queued else "callback_impossible",
              f"{queued.priority}, due {local_text(queued.due_at, readers_zone(session))}"
              if queued else "the caller's number cannot be called back")


def _recording_bytes(voicemail_id: int, recording_url: str) -> bytes:
    with runtime.sessions()() as session:
        kept = stored_audio(session, voicemail_id)
    if kept is not None:
        return kept
    data = download_recording(runtime.settings(), recording_url)
    with runtime.sessions()() as session:
        store_audio(session, voicemail_id, data)
        session.commit()
    return data


def _set_back(voicemail_id: int, error: str) -> None:
    with runtime.sessions()() as session:
        voicemail = session.get(Voicemail, voicemail_id, with_for_update=True)
        if voicemail is not None and voicemail.state not in ("done", "failed"):
            voicemail.state = "recorded"
            voicemail.last_error = error
            session.commit()
    log.warning("voicemail %s: %s; will retry", voicemail_id, error)


def _give_up(voicemail_id: int, error: str, public: str | None = None) -> None:
    """The voicemail failed for good: `error` is kept with it and logged, `public` (or the
    error) is what the ticket tells agents."""
    with runtime.sessions()() as session:
        voicemail = session.get(Voicemail, voicemail_id, with_for_update=True)
        ticket = _ticket_of(session, voicemail)
        if voicemail is None or voicemail.state in ("done", "failed"):
            return  # another run of the job finished it already
        voicemail.state = "failed"
        voicemail.last_error = error
        if ticket is not None and voicemail.ticket_id is not None:
            # the caller's added message stays on the ticket, audio and all, without words
            add_caller_message(session, ticket, voicemail.id, "",
                               f"not transcribed: {public or error}")
        elif ticket is not None:
            ticket.transcription = "failed"
            ticket.audio_notes = public or error
            add_event(session, ticket, "transcription_failed", public or error)
            if voicemail.wants_callback:  # no transcript, but nobody is forgotten
                _queue_callback(session, voicemail, ticket, None)
        session.commit()
    log.error("voicemail %s failed for good: %s", voicemail_id, error)


def _delete_at_twilio(voicemail_id: int, ticket_id: int) -> None:
    with runtime.sessions()() as session:
        recording_sid = session.scalar(
            select(Voicemail.recording_sid).where(Voicemail.id == voicemail_id))
    assert recording_sid is not None
    try:
        delete_recording(runtime.settings(), recording_sid)
    except TelephonyError as error:
        log.warning("voicemail %s: recording not deleted at Twilio: %s", voicemail_id, error)
        return
    with runtime.sessions()() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        add_event(session, ticket, "recording_deleted",
                  f"deleted at Twilio {local_text(utcnow(), readers_zone(session), '%H:%M %Z')}")
        session.commit()
