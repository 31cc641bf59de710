"""Character error rate: how far a transcript is from what was said, per character."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def comparable_characters(text: str) -> str:
    """`text` without spaces, punctuation and symbols (letters and digits only), case-folded."""
    normal = unicodedata.normalize("NFC", text).casefold()
    return "".join(ch for ch in normal if unicodedata.category(ch)[0] in ("L", "N"))


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two strings."""
    if len(reference) < len(hypothesis):
        reference, hypothesis = hypothesis, reference
    previous = list(range(len(hypothesis) + 1))
    for i, ref_char in enumerate(reference, start=1):
        current = [i]
        for j, hyp_char in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,
                    current[j - 1] + 1,
                    previous[j - 1] + (ref_char != hyp_char),
                )
            )
        previous = current
    return previous[-1]


def character_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference characters) after removing spaces and punctuation from both."""
    ref = comparable_characters(reference)
    return edit_distance(ref, comparable_characters(hypothesis)), len(ref)


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edits needed per reference character, ignoring spaces and punctuation (may exceed 1)."""
    edits, length = character_errors(reference, hypothesis)
    if not length:
        return 0.0 if not edits else 1.0
    return edits / length


def corpus_character_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """All edits over all reference characters of (reference, hypothesis) pairs."""
    counts = [character_errors(reference, hypothesis) for reference, hypothesis in pairs]
    total = sum(length for _, length in counts)
    edits = sum(edits for edits, _ in counts)
    if not total:
        return 0.0 if not edits else 1.0
    return edits / total
