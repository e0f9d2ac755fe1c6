"""Finding issues that may already describe what a resident is about to report."""

from __future__ import annotations

import math
import re

_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u4e00-\u9fff]+")
_STOP = frozenset(
    "the a an of in on at is are and or to for with our my it its when there this that into from by be".split()
)
_SUFFIXES = ("ing", "ed", "es", "s")


def _stem(word: str) -> str:
    """Crude English stemming: "leaking", "leaks" and "leak" are one term."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


NEARBY_METRES = 300.0


def terms(text: str) -> set[str]:
    """Words of Latin text, and character pairs of Chinese text (which has no spaces)."""
    lowered = text.lower()
    found = {_stem(w) for w in _WORD.findall(lowered) if w not in _STOP and len(w) > 1}
    for run in _CJK.findall(lowered):
        found.update(run[i : i + 2] for i in range(max(len(run) - 1, 1)))
    return found


def text_similarity(query: str, candidate: str) -> float:
    """Half Jaccard, half the share of the query's terms the candidate contains.

    A short new report against a long existing description scores by what they share, not by
    how much more the older one says.
    """
    tq, tc = terms(query), terms(candidate)
    if not tq or not tc:
        return 0.0
    shared = len(tq & tc)
    return 0.5 * shared / len(tq | tc) + 0.5 * shared / len(tq)


def distance_metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    radius = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(h))


def similarity_score(
    *,
    text: str,
    candidate_text: str,
    same_category: bool,
    distance: float | None,
) -> float:
    """0..1: similar words count most; the same category close by is a strong hint on its own."""
    score = text_similarity(text, candidate_text)
    if same_category:
        score += 0.2
        if distance is not None and distance <= NEARBY_METRES:
            score += 0.4 * (1 - distance / NEARBY_METRES)
    return min(score, 1.0)
