"""The official Vosk model archives this desk uses, pinned by SHA-256 and size.

The hashes were not computed here (the build machines have no network); each one is the value
that several unrelated public projects pinned independently for the same official URL, e.g.
npnpatidar/Sayboard app/src/main/java/com/elishaazaria/sayboard/data/ModelLink.kt (all four,
with byte sizes), PersonalJarvis/PersonalJarvis jarvis/speech/wake_model_fetch.py (en, de),
DiggAiHH/Anamnese-A download-vosk.sh (de). A mismatch on download means the file changed
upstream or in transit: nothing is unpacked, and a new hash must be checked and pinned here.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_URL = "https://alphacephei.com/vosk/models/"


@dataclass(frozen=True)
class ModelArchive:
    """One downloadable model: its zip's URL, SHA-256, size and the directory it unpacks to."""

    language: str
    dirname: str
    url: str
    sha256: str | None
    size: int | None = None


def _official(language: str, dirname: str, sha256: str | None, size: int | None) -> ModelArchive:
    return ModelArchive(language, dirname, f"{BASE_URL}{dirname}.zip", sha256, size)


MODEL_ARCHIVES: dict[str, ModelArchive] = {
    "en": _official(
        "en",
        "vosk-model-small-en-us-0.15",
        "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
        41_205_931,
    ),
    "de": _official(
        "de",
        "vosk-model-small-de-0.15",
        "b7e53c90b1f0a38456f4cd62b366ecd58803cd97cd42b06438e2c131713d5e43",
        46_499_967,
    ),
    "pl": _official(
        "pl",
        "vosk-model-small-pl-0.22",
        "c4cd16498ea544f446f9e9a55cbd602b71cfe5a2b6f2b0834d81e1b6fce15f0d",
        52_979_372,
    ),
    "ru": _official(
        "ru",
        "vosk-model-small-ru-0.22",
        "961d5ff98a17f4aa6de69864d0aa71fa5bac682301d2b5d17a3f24c5c99a46d4",
        46_236_750,
    ),
}
