"""Decoding recordings: every format a phone line or an upload may bring, and every bad one."""

from __future__ import annotations

import io
import random
import struct

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from speech.audio import AudioProblem, DecodedAudio, decode_audio
from speech.resampling import resample
from tests.speech_fixtures import shortest_clip

Samples = npt.NDArray[np.float32]


def encode(samples: npt.ArrayLike, rate: int, format: str = "WAV", subtype: str | None = None
           ) -> bytes:
    """`samples` (frames x channels, or mono) written to bytes with soundfile."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(samples, dtype=np.float32), rate, format=format,
                    subtype=subtype)
    return buffer.getvalue()


def tone(seconds: float, rate: int, dbfs: float = -12.0, hz: float = 440.0) -> Samples:
    """A sine at `dbfs` RMS (relative to full scale)."""
    time = np.arange(int(seconds * rate)) / rate
    amplitude = 10 ** (dbfs / 20) * np.sqrt(2)
    return (amplitude * np.sin(2 * np.pi * hz * time)).astype(np.float32)


def samples_of(audio: DecodedAudio) -> npt.NDArray[np.int16]:
    return np.frombuffer(audio.pcm16, dtype="<i2")


def expect_problem(data: bytes, kind: str) -> AudioProblem:
    with pytest.raises(AudioProblem) as caught:
        decode_audio(data)
    assert caught.value.kind == kind, caught.value.message
    assert str(caught.value) == caught.value.message
    return caught.value


# --- what Twilio sends, and other good recordings ---------------------------------


def test_twilio_8k_pcm16_is_kept_sample_for_sample() -> None:
    original = (np.random.default_rng(1).uniform(-0.5, 0.5, 8000 * 3) * 32768).astype("<i2")
    data = encode(original.astype(np.float32) / 32768, 8000, subtype="PCM_16")
    audio = decode_audio(data)
    assert audio.sample_rate == 8000
    assert audio.source_format == "WAV PCM_16 8000 Hz 1 ch"
    assert audio.duration_seconds == pytest.approx(3.0)
    assert audio.problems == () and audio.notes == ()
    assert not audio.is_silent
    np.testing.assert_array_equal(samples_of(audio), original)


def test_the_shared_speech_clip_is_sound_not_silence() -> None:
    audio = decode_audio(shortest_clip().path.read_bytes())
    assert audio.sample_rate == 16000 and audio.problems == ()
    assert audio.sound_seconds > 2.0
    assert -20.0 < audio.loudest_dbfs < 0.0


@pytest.mark.parametrize(
    ("subtype", "tolerance"), [("ULAW", 0.03), ("ALAW", 0.03), ("FLOAT", 1e-4), ("PCM_24", 1e-4),
                               ("PCM_U8", 0.01)],
)
def test_other_wav_encodings(subtype: str, tolerance: float) -> None:
    signal = tone(1.0, 8000, dbfs=-10)
    audio = decode_audio(encode(signal, 8000, subtype=subtype))
    assert audio.source_format == f"WAV {subtype} 8000 Hz 1 ch"
    assert audio.problems == ()
    decoded = samples_of(audio).astype(np.float32) / 32768
    assert np.max(np.abs(decoded - signal)) < tolerance


def test_stereo_float_44k_is_mixed_down_and_kept_at_its_rate() -> None:
    left, right = tone(1.0, 44100, -10, 440), tone(1.0, 44100, -10, 660)
    audio = decode_audio(encode(np.stack([left, right], axis=1), 44100, subtype="FLOAT"))
    assert audio.sample_rate == 44100
    assert audio.source_format == "WAV FLOAT 44100 Hz 2 ch"
    assert audio.problems == ("mixed_down",)
    assert audio.notes == ("The recording had 2 channels; they were mixed into one.",)
    expected = (left + right) / 2
    assert np.max(np.abs(samples_of(audio) / 32768 - expected)) < 1e-4


@pytest.mark.parametrize(("format", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                                  ("MP3", "MPEG_LAYER_III")])
def test_compressed_formats(format: str, subtype: str) -> None:
    audio = decode_audio(encode(tone(2.0, 16000, -12), 16000, format=format, subtype=subtype))
    assert audio.source_format == f"{format} {subtype} 16000 Hz 1 ch"
    assert audio.sample_rate == 16000
    assert audio.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert not audio.is_silent and "truncated" not in audio.problems


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 32000, 44100, 48000])
def test_rates_vosk_resamples_itself_are_passed_through(rate: int) -> None:
    audio = decode_audio(encode(tone(0.5, rate), rate, subtype="PCM_24"))
    assert audio.sample_rate == rate
    assert "resampled" not in audio.problems


def test_rates_above_48k_are_resampled_to_16k() -> None:
    speech_band, above = tone(1.0, 96000, -10, 1000), tone(1.0, 96000, -10, 12000)
    audio = decode_audio(encode(speech_band + above, 96000, subtype="PCM_24"))
    assert audio.sample_rate == 16000
    assert audio.duration_seconds == pytest.approx(1.0)
    assert audio.problems == ("resampled",)
    assert audio.notes == ("The recording was resampled from 96000 Hz to 16000 Hz.",)
    # The 1 kHz tone survives; the 12 kHz one (above the new Nyquist) is filtered, not aliased.
    decoded = samples_of(audio)[800:-800].astype(np.float64) / 32768
    expected = tone(1.0, 16000, -10, 1000)[800:-800]
    assert np.max(np.abs(decoded - expected)) < 0.01


def test_resample_keeps_the_speech_band_and_removes_what_does_not_fit() -> None:
    rate = 16000
    for hz, kept in ((300, True), (3000, True), (5000, False), (7000, False)):
        result = resample(tone(1.0, rate, -6, hz), rate, 8000)
        assert len(result) == 8000
        level = float(np.sqrt(np.mean(result[400:-400] ** 2)))
        assert (level > 0.45) if kept else (level < 0.001), (hz, level)
    assert len(resample(tone(1.0, 8000), 8000, 11025)) == 11025
    assert resample(np.zeros(0), 8000, 16000).size == 0
    with pytest.raises(ValueError):
        resample(np.zeros(4), 0, 16000)


# --- silence ----------------------------------------------------------------------


def test_digital_silence_is_silent() -> None:
    audio = decode_audio(encode(np.zeros(8000 * 10), 8000, subtype="PCM_16"))
    assert audio.is_silent
    assert audio.problems == ("silent",)
    assert audio.notes == ("The recording is silent.",)
    assert audio.duration_seconds == 10.0


def test_line_noise_at_minus_50_dbfs_is_silent() -> None:
    noise = np.random.default_rng(2).normal(0, 10 ** (-50 / 20), 8000 * 10)
    audio = decode_audio(encode(noise, 8000, subtype="PCM_16"))
    assert audio.is_silent
    assert -52 < audio.loudest_dbfs < -48


def test_noise_with_a_dc_offset_and_a_click_is_still_silent() -> None:
    rng = np.random.default_rng(3)
    signal = 0.2 + rng.normal(0, 10 ** (-55 / 20), 8000 * 5)  # a sound card's DC offset
    signal[4000:4800] += 0.5 * rng.standard_normal(800)  # a 0.1 s click when the line opens
    assert decode_audio(encode(signal, 8000, subtype="PCM_16")).is_silent


def test_quiet_speech_level_is_not_silent() -> None:
    audio = decode_audio(encode(tone(2.0, 8000, dbfs=-32), 8000, subtype="PCM_16"))
    assert not audio.is_silent
    assert audio.sound_seconds == pytest.approx(2.0)


def test_a_clipped_recording_is_marked() -> None:
    square = np.sign(tone(1.0, 8000, 0)).astype(np.float32)
    audio = decode_audio(encode(square, 8000, subtype="PCM_16"))
    assert "clipped" in audio.problems


# --- undecodable data ----------------------------------------------------------------


def test_zero_bytes_are_empty() -> None:
    assert "0 bytes" in expect_problem(b"", "empty").message


def test_a_wav_without_frames_is_empty() -> None:
    expect_problem(encode(np.zeros(0), 8000, subtype="PCM_16"), "empty")


def test_random_bytes_are_corrupt() -> None:
    expect_problem(random.Random(4).randbytes(20000), "corrupt")


def test_a_damaged_wav_header_is_corrupt() -> None:
    data = bytearray(encode(tone(1.0, 8000), 8000, subtype="PCM_16"))
    data[20:24] = b"\xff\xff\xff\xff"  # format tag and channel count
    expect_problem(bytes(data), "corrupt")


def test_a_text_file_is_unsupported() -> None:
    problem = expect_problem(b"Voicemail from +49 30 1234\nplease call back\n" * 20,
                             "unsupported")
    assert "text" in problem.message


def test_an_html_error_page_is_unsupported() -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body></body></html>"
    assert "HTML page" in expect_problem(page, "unsupported").message


def test_a_json_api_error_is_unsupported() -> None:
    body = b'{"code": 20404, "message": "The requested resource was not found", "status": 404}'
    assert "JSON" in expect_problem(body, "unsupported").message


def test_a_sample_rate_below_8k_is_unsupported() -> None:
    problem = expect_problem(encode(tone(1.0, 4000), 4000, subtype="PCM_16"), "unsupported")
    assert "4000 Hz" in problem.message and "8000 Hz" in problem.message


def test_other_bytes_never_raise_anything_but_audio_problem() -> None:
    good = encode(tone(0.5, 8000), 8000, subtype="PCM_16")
    rng = random.Random(5)
    outcomes = set()
    for _ in range(200):
        damaged = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(0, 64)] = rng.randrange(256)
        cut = rng.choice([len(damaged), rng.randrange(0, len(damaged))])
        try:
            decode_audio(bytes(damaged[:cut]))
            outcomes.add("decoded")
        except AudioProblem as problem:
            outcomes.add(problem.kind)
    assert "decoded" in outcomes and "corrupt" in outcomes


def test_max_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        decode_audio(b"RIFF", max_seconds=0)


# --- truncated and too long ----------------------------------------------------------


def test_a_truncated_wav_keeps_what_arrived() -> None:
    data = encode(tone(4.0, 8000), 8000, subtype="PCM_16")
    arrived = data[: 44 + 8000 * 2 * 3 + 1000]  # header + 3 s + a bit of the 4th second
    audio = decode_audio(arrived)
    assert "truncated" in audio.problems
    assert audio.notes == ("The recording was cut off after 3.1 s.",)
    assert len(samples_of(audio)) == (len(arrived) - 44) // 2
    assert not audio.is_silent


def test_a_streamed_wav_without_a_length_is_not_truncated() -> None:
    data = bytearray(encode(tone(1.0, 8000), 8000, subtype="PCM_16"))
    at = data.index(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    audio = decode_audio(bytes(data))
    assert audio.problems == ()
    assert audio.duration_seconds == pytest.approx(1.0)


def test_a_truncated_flac_keeps_what_decodes() -> None:
    data = encode(tone(4.0, 8000), 8000, format="FLAC")
    audio = decode_audio(data[: len(data) // 2])
    assert "truncated" in audio.problems
    assert 0.5 < audio.duration_seconds < 4.0


def test_a_recording_over_the_limit_keeps_its_beginning() -> None:
    signal = tone(3.0, 8000)
    audio = decode_audio(encode(signal, 8000, subtype="PCM_16"), max_seconds=2.0)
    assert audio.duration_seconds == 2.0
    assert audio.problems == ("too_long",)
    assert audio.notes == ("The recording is 3.0 s long; only the first 2.0 s were transcribed.",)
    np.testing.assert_allclose(samples_of(audio) / 32768, signal[:16000], atol=1 / 32768)


def test_a_very_long_voicemail_is_cut_at_ten_minutes() -> None:
    signal = np.tile(tone(1.0, 8000), 610)
    audio = decode_audio(encode(signal, 8000, subtype="PCM_16"))
    assert audio.duration_seconds == 600.0
    assert audio.problems == ("too_long",)
    assert "610.0 s long" in audio.notes[0]
