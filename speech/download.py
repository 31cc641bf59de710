"""Fetch an official Vosk model archive, verify its SHA-256 and unpack it safely into place."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath

from speech.archives import MODEL_ARCHIVES, ModelArchive
from speech.models import model_present

MAX_ARCHIVE_BYTES = 2 << 30  # the small models are 40-55 MB; refuse to fill a disk
MAX_UNPACKED_BYTES = 4 << 30
_CHUNK_BYTES = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Fetch = Callable[[str], Iterable[bytes]]


class DownloadProblem(Exception):
    """A model could not be downloaded or installed; nothing was changed on disk."""


class UnknownLanguage(DownloadProblem):
    """No official archive is known for the language."""


class UnpinnedArchive(DownloadProblem):
    """No SHA-256 is pinned for the archive and none was given."""


class ChecksumMismatch(DownloadProblem):
    """The fetched archive's SHA-256 is not the expected one."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        self.url = url
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{url}: SHA-256 is {actual}, expected {expected}; nothing was unpacked "
            "(the file changed upstream or was damaged on the way)"
        )


class UnsafeArchive(DownloadProblem):
    """The archive is not a zip of one model directory with plain files only."""


def fetch_url(url: str, *, timeout: float = 60.0) -> Iterator[bytes]:
    """The body of `url` (https, or file:// for a local mirror) in chunks of 1 MiB."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "file"):
        raise DownloadProblem(f"{url}: only https:// and file:// URLs are fetched")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # scheme checked above
        while chunk := response.read(_CHUNK_BYTES):
            yield chunk


def download_model(
    language: str,
    models_dir: str | os.PathLike[str],
    *,
    fetch: Fetch = fetch_url,
    expected_sha256: str | None = None,
    archives: Mapping[str, ModelArchive] = MODEL_ARCHIVES,
) -> Path:
    """Install the model for `language` under `models_dir` (no-op if present); its directory."""
    archive = archives.get(language)
    if archive is None:
        known = ", ".join(sorted(archives))
        raise UnknownLanguage(f"no official model archive for '{language}' (known: {known})")
    root = Path(models_dir)
    target = root / archive.dirname
    if model_present(target):
        return target
    if target.exists():
        raise DownloadProblem(f"{target} exists but is not a Vosk model; move it away first")
    expected = _expected_hash(archive, expected_sha256)
    root.mkdir(parents=True, exist_ok=True)
    # Work beside the target so the final rename is atomic (same file system).
    with tempfile.TemporaryDirectory(prefix=f".{archive.dirname}.", dir=root) as work:
        zip_path = Path(work) / "archive.zip"
        actual = _fetch_to(fetch, archive.url, zip_path)
        if actual != expected:
            raise ChecksumMismatch(archive.url, expected, actual)
        unpacked = Path(work) / "unpacked"
        unpack_zip(zip_path, unpacked, archive.dirname)
        if not model_present(unpacked / archive.dirname):
            raise UnsafeArchive(f"{archive.url}: {archive.dirname}/ holds no Vosk model")
        try:
            os.rename(unpacked / archive.dirname, target)
        except OSError:
            if not model_present(target):  # else a concurrent download finished first
                raise
    return target


def _expected_hash(archive: ModelArchive, given: str | None) -> str:
    expected = (given or archive.sha256 or "").strip().lower()
    if not expected:
        raise UnpinnedArchive(
            f"no SHA-256 is pinned for {archive.url}; check the archive's checksum from a "
            "source you trust and pass it with --sha256"
        )
    if not _SHA256.match(expected):
        raise DownloadProblem(f"'{given}' is not a SHA-256 (64 hexadecimal digits)")
    return expected


def _fetch_to(fetch: Fetch, url: str, path: Path) -> str:
    """Stream `url` into `path`; the SHA-256 of what was written."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            for chunk in fetch(url):
                size += len(chunk)
                if size > MAX_ARCHIVE_BYTES:
                    raise DownloadProblem(f"{url}: larger than {MAX_ARCHIVE_BYTES} bytes")
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:  # urllib's URLError and HTTPError are OSErrors too
        raise DownloadProblem(f"could not fetch {url}: {exc}") from exc
    return digest.hexdigest()


def unpack_zip(zip_path: Path, destination: Path, top: str) -> None:
    """Extract a zip whose members all lie under `top`/; refuse links and paths leaving it."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchive(f"{zip_path.name} is not a readable zip archive ({exc})") from exc
    with archive:
        members = archive.infolist()
        for info in members:
            _check_member(info, top)
        if sum(info.file_size for info in members) > MAX_UNPACKED_BYTES:
            raise UnsafeArchive(f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        destination.mkdir(parents=True)
        base = destination.resolve()
        for info in members:
            path = (destination / info.filename).resolve()
            if path != base and base not in path.parents:
                raise UnsafeArchive(f"member '{info.filename}' leaves the target directory")
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as source, path.open("xb") as out:
                    shutil.copyfileobj(source, out, _CHUNK_BYTES)
            except (zipfile.BadZipFile, EOFError) as exc:
                raise UnsafeArchive(f"member '{info.filename}' is damaged ({exc})") from exc


def _check_member(info: zipfile.ZipInfo, top: str) -> None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if (
        name.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", name)
        or "\\" in name
        or "\x00" in name
        or ".." in parts
    ):
        raise UnsafeArchive(f"member '{name}' has an unsafe path")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeArchive(f"member '{name}' is a symbolic link")
    if not parts or parts[0] != top or (len(parts) == 1 and not info.is_dir()):
        raise UnsafeArchive(f"member '{name}' is outside the model directory '{top}/'")
