"""Model download: checksum first, safe unpacking, atomic install; never the network."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from speech.archives import BASE_URL, MODEL_ARCHIVES, ModelArchive
from speech.download import (
    ChecksumMismatch,
    DownloadProblem,
    UnknownLanguage,
    UnpinnedArchive,
    UnsafeArchive,
    download_model,
    fetch_url,
)

TOP = "vosk-model-small-de-0.15"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only file:// URLs may be opened in these tests."""
    real_urlopen = urllib.request.urlopen

    def local_only(url: Any, *args: Any, **kwargs: Any) -> Any:
        assert str(url).startswith("file://"), f"a test tried to fetch {url}"
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)


def model_zip(members: dict[str, bytes] | None = None, *, link: str | None = None) -> bytes:
    """A zip laid out like an official model archive (plus `members`, or a symlink)."""
    files = members if members is not None else {
        f"{TOP}/am/final.mdl": b"acoustic model",
        f"{TOP}/conf/model.conf": b"--sample-frequency=16000\n",
        f"{TOP}/README": b"small German model",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if members is None:
            archive.writestr(f"{TOP}/", b"")
        for name, data in files.items():
            archive.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(f"{TOP}/am/link")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, link)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalFetch:
    """A fetch function serving fixed bytes in small chunks, counting calls."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.urls: list[str] = []

    def __call__(self, url: str) -> Iterator[bytes]:
        self.urls.append(url)
        for start in range(0, len(self.data), 7000):
            yield self.data[start : start + 7000]


def leftovers(models_dir: Path) -> list[str]:
    return sorted(os.listdir(models_dir)) if models_dir.exists() else []


def test_download_verifies_unpacks_and_is_idempotent(tmp_path: Path) -> None:
    data = model_zip()
    fetch = LocalFetch(data)
    target = download_model("de", tmp_path / "models", fetch=fetch, expected_sha256=sha256(data))
    assert target == tmp_path / "models" / TOP
    assert (target / "am" / "final.mdl").read_bytes() == b"acoustic model"
    assert (target / "conf" / "model.conf").is_file()
    assert fetch.urls == [f"{BASE_URL}{TOP}.zip"]
    assert leftovers(tmp_path / "models") == [TOP]  # no temporary directories left behind

    again = download_model("de", tmp_path / "models", fetch=fetch)
    assert again == target
    assert len(fetch.urls) == 1  # already present: nothing fetched


def test_fetch_url_streams_a_local_archive(tmp_path: Path) -> None:
    data = model_zip()
    archive_path = tmp_path / f"{TOP}.zip"
    archive_path.write_bytes(data)
    mirror = {"de": ModelArchive("de", TOP, archive_path.as_uri(), sha256(data), len(data))}
    target = download_model("de", tmp_path / "models", archives=mirror)
    assert (target / "README").read_bytes() == b"small German model"
    assert b"".join(fetch_url(archive_path.as_uri())) == data


def test_fetch_url_refuses_plain_http() -> None:
    with pytest.raises(DownloadProblem, match="only https"):
        list(fetch_url("http://alphacephei.com/vosk/models/x.zip"))


def test_a_checksum_mismatch_unpacks_nothing(tmp_path: Path) -> None:
    data = model_zip()
    with pytest.raises(ChecksumMismatch) as caught:
        download_model("de", tmp_path / "models", fetch=LocalFetch(data),
                       expected_sha256="0" * 64)
    assert caught.value.actual == sha256(data)
    assert "nothing was unpacked" in str(caught.value)
    assert leftovers(tmp_path / "models") == []


def test_the_pinned_hash_is_checked_by_default(tmp_path: Path) -> None:
    with pytest.raises(ChecksumMismatch) as caught:
        download_model("de", tmp_path, fetch=LocalFetch(model_zip()))
    assert caught.value.expected == MODEL_ARCHIVES["de"].sha256
    assert leftovers(tmp_path) == []


def test_an_unpinned_archive_needs_an_explicit_hash(tmp_path: Path) -> None:
    data = model_zip()
    unpinned = {"de": ModelArchive("de", TOP, f"{BASE_URL}{TOP}.zip", None)}
    fetch = LocalFetch(data)
    with pytest.raises(UnpinnedArchive, match="--sha256"):
        download_model("de", tmp_path, fetch=fetch, archives=unpinned)
    assert fetch.urls == []  # refused before fetching anything
    target = download_model("de", tmp_path, fetch=fetch, archives=unpinned,
                            expected_sha256=sha256(data).upper())
    assert (target / "am" / "final.mdl").is_file()


def test_a_malformed_hash_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DownloadProblem, match="64 hexadecimal"):
        download_model("de", tmp_path, fetch=LocalFetch(b""), expected_sha256="abc")


@pytest.mark.parametrize(
    ("members", "link", "complaint"),
    [
        ({f"{TOP}/../evil.txt": b"x", f"{TOP}/am/final.mdl": b"m"}, None, "unsafe path"),
        ({f"/{TOP}/am/final.mdl": b"m"}, None, "unsafe path"),
        ({f"{TOP}/am/final.mdl": b"m", "other/file": b"x"}, None, "outside the model"),
        ({f"{TOP}/conf/model.conf": b"c"}, None, "holds no Vosk model"),
        (None, "/etc/passwd", "symbolic link"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path: Path, members: dict[str, bytes] | None,
                                     link: str | None, complaint: str) -> None:
    data = model_zip(members, link=link)
    with pytest.raises(UnsafeArchive, match=complaint):
        download_model("de", tmp_path / "models", fetch=LocalFetch(data),
                       expected_sha256=sha256(data))
    assert leftovers(tmp_path / "models") == []
    assert not (tmp_path / "evil.txt").exists()


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    data = b"<html>503 Service Unavailable</html>"
    with pytest.raises(UnsafeArchive, match="not a readable zip"):
        download_model("de", tmp_path, fetch=LocalFetch(data), expected_sha256=sha256(data))
    assert leftovers(tmp_path) == []


def test_a_failed_fetch_changes_nothing(tmp_path: Path) -> None:
    def offline(url: str) -> Iterator[bytes]:
        yield b"partial"
        raise OSError("connection reset")

    with pytest.raises(DownloadProblem, match=r"could not fetch .* connection reset"):
        download_model("de", tmp_path, fetch=offline, expected_sha256="0" * 64)
    assert leftovers(tmp_path) == []


def test_an_unknown_language_or_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownLanguage, match="known: de, en, pl, ru"):
        download_model("xx", tmp_path, fetch=LocalFetch(b""))
    (tmp_path / TOP).mkdir()
    (tmp_path / TOP / "notes.txt").write_text("mine")
    with pytest.raises(DownloadProblem, match="exists but is not a Vosk model"):
        download_model("de", tmp_path, fetch=LocalFetch(b""))
    assert (tmp_path / TOP / "notes.txt").read_text() == "mine"


def test_the_official_archives_are_pinned() -> None:
    assert sorted(MODEL_ARCHIVES) == ["de", "en", "pl", "ru"]
    for language, archive in MODEL_ARCHIVES.items():
        assert archive.language == language
        assert archive.url == f"https://alphacephei.com/vosk/models/{archive.dirname}.zip"
        assert archive.sha256 is not None and len(archive.sha256) == 64
        int(archive.sha256, 16)
        assert archive.size is not None and 30_000_000 < archive.size < 60_000_000
    assert MODEL_ARCHIVES["en"].dirname == "vosk-model-small-en-us-0.15"
    assert MODEL_ARCHIVES["pl"].dirname == "vosk-model-small-pl-0.22"
