"""Text normalization before scoring: undo the cheap tricks that hide a request from a classifier.

Applied in this order (each step counted in :attr:`Normalized.changes`):

1. ``tag_chars_decoded``: Unicode tag characters (U+E0020-E007E, "ASCII smuggling") are turned back into the ASCII
   they encode, so hidden text becomes visible to the model; tag runs that belong to an emoji flag (after U+1F3F4) and
   the cancel tag are removed instead.
2. ``zero_width_removed``: zero-width and other invisible characters (word joiner, BOM, soft hyphen, invisible
   operators, Hangul fillers, variation selectors...). ZWJ/ZWNJ are kept only between two letters of a script whose
   orthography uses them (Arabic script, Indic scripts, Syriac...) and ZWJ between two emoji; ZWSP only between
   two letters of a script that separates words with it (Khmer, Thai, Lao, Myanmar...). Everywhere else they
   are removed: the model's tokenizer reads them as word breaks, which is exactly how they split a word.
3. ``bidi_controls_removed``: bidirectional embedding/override/isolate controls and the LRM/RLM/ALM marks. The text
   keeps its logical order, which is what an LLM reads.
4. ``control_chars_removed``: C0/C1 control characters other than tab, newline and carriage return.
5. ``compatibility_folded``: Unicode NFKC (fullwidth and mathematical letters, ligatures, circled letters...).
   The model's tokenizer applies NFKC as well, so this changes nothing the model would not see anyway; doing it here
   makes the next step and language ID see the same letters.
6. ``confusables_folded``: small capitals (``ᴀ ʙ ᴄ``: no orthography uses them) always become basic Latin.
   Cyrillic, Greek, Armenian and Cherokee lookalikes are folded **only inside words that mix scripts**, into the
   script that makes the word single-script when that is the text's main script or changes only a minority of
   its letters (``bоmb`` -> Latin ``bomb``; a Latin ``o`` slipped into a Russian word becomes Cyrillic); and in
   words made only of lookalikes when the text is mostly Latin and uses no other letter of that script. Real
   Russian, Greek or Armenian text is left alone (checked on all FLORES-200 languages: see the tests).

The caller's original text is never modified; windows and offsets refer to the normalized text.

Example:
    >>> from crestguard.guard.normalize import normalize
    >>> n = normalize("How to make a b\\u043emb\\u200b?")
    >>> n.text, n.changes
    ('How to make a bomb?', {'zero_width_removed': 1, 'confusables_folded': 1})
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

#: Bump when the rules change: it is part of the guard's fingerprint (scores may change).
VERSION = 1

_ZWSP, _ZWJ, _ZWNJ = "\u200b", "\u200d", "\u200c"
_INVISIBLE = set(
    "\u2060\ufeff\u00ad\u180e\u034f\u115f\u1160\u3164\uffa0\u17b4\u17b5\u2061\u2062\u2063\u2064"
    "\u206a\u206b\u206c\u206d\u206e\u206f"
) | {chr(c) for c in range(0xFE00, 0xFE10)} | {chr(c) for c in range(0xE0100, 0xE01F0)} \
  | {chr(c) for c in range(0x1D173, 0x1D17B)}
_BIDI = set("\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_KEEP_CONTROLS = set("\t\n\r")
_TAG_FIRST, _TAG_LAST = 0xE0000, 0xE007F
_TAG_CANCEL = _TAG_LAST
_BLACK_FLAG = "\U0001f3f4"
#: Scripts whose orthography uses ZWJ/ZWNJ (Persian and Arabic, Indic scripts, Syriac); ZWJ also joins emoji.
_JOINER_SCRIPTS = {"ARABIC", "SYRIAC", "DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL", "TELUGU",
                   "KANNADA", "MALAYALAM", "SINHALA", "MYANMAR", "KHMER", "TIBETAN"}
#: Scripts written without spaces that use ZWSP as a word separator.
_ZWSP_SCRIPTS = {"KHMER", "LAO", "THAI", "MYANMAR", "TIBETAN", "JAVANESE", "BALINESE"}


# Lookalike -> Latin letter, as "source target" pairs; from Unicode's confusables (the "MA" table), restricted to
# letters that render like a Latin letter in common fonts. The last pairs of the Cyrillic and Greek rows map to
# African Latin letters: Akan, Ewe, Kabiyè or Kanuri text often types ԑ, ε, ͻ, ι, ә for ɛ, ɔ, ɩ, ə.
_TO_LATIN = (
    # Cyrillic lower / upper
    "а a в b с c ԁ d е e һ h і i ј j к k ӏ l м m н h о o р p ԛ q г r ѕ s т t у y ѵ v ԝ w х x ү y ь b ԑ ɛ ә ə"
    " А A В B С C Ԁ D Е E Һ H І I Ј J К K Ӏ I М M Н H О O Р P Ԛ Q Ѕ S Т T У Y Ѵ V Ԝ W Х X Ү Y Ь b Ԑ Ɛ Ә Ə"
    # Greek lower / upper (ϲ lunate sigma, ϳ yot)
    " α a κ k ν v ο o ρ p υ u χ x ϲ c ϳ j ε ɛ ͻ ɔ ι ɩ"
    " Α A Β B Ε E Ζ Z Η H Ι I Κ K Μ M Ν N Ο O Ρ P Τ T Υ Y Χ X Ϲ C"
    # Armenian
    " ա w ց g հ h ո n ս u օ o զ q Օ O Ս U"
    # Cherokee capitals
    " Ꭺ A Ᏼ B Ꮯ C Ꭰ D Ꭼ E Ꮐ G Ꮋ H Ꭵ i Ꭻ J Ꮶ K Ꮮ L Ꮇ M Ꮲ P Ꮢ R Ꮪ S Ꭲ T Ꮩ V Ꮃ W Ꮓ Z"
)
# Small capitals, which no orthography uses: always folded, whatever the word. (Not ɩ, ɑ, ɡ: Kabiyè, Mooré and
# Fon write them.)
_LATIN_VARIANTS = "ʏ y ᴀ A ʙ B ᴄ C ᴅ D ᴇ E ɢ G ʜ H ᴊ J ᴋ K ʟ L ᴍ M ɴ N ᴏ O ᴘ P ʀ R ꜱ S ᴛ T ᴜ U ᴠ V ᴡ W ᴢ Z"
# Latin letter -> its lookalike in Cyrillic / Greek: for Latin letters slipped into a Cyrillic or Greek word.
_FROM_LATIN = {
    "CYRILLIC": "a а c с e е o о p р x х y у i і j ј s ѕ h һ"
                " A А B В C С E Е H Н I І J Ј K К M М O О P Р S Ѕ T Т X Х Y У",
    "GREEK": "o ο v ν i ι k κ u υ x χ A Α B Β E Ε Z Ζ H Η I Ι K Κ M Μ N Ν O Ο P Ρ T Τ Y Υ X Χ",
}


def _pairs(spec: str) -> dict[str, str]:
    parts = spec.split()
    return dict(zip(parts[::2], parts[1::2]))


#: Folding tables by target script: lookalike -> letter of that script.
FOLD = {"LATIN": _pairs(_TO_LATIN), **{script: _pairs(spec) for script, spec in _FROM_LATIN.items()}}
CONFUSABLES = FOLD["LATIN"]
LATIN_VARIANTS = _pairs(_LATIN_VARIANTS)
_WORD = re.compile(r"[^\W\d_]+")
#: Every character that steps 1-4 may remove or decode.
_STRIPPED = re.compile("[" + "".join(re.escape(c) for c in sorted(
    _INVISIBLE | _BIDI | {_ZWSP, _ZWJ, _ZWNJ} | {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))} - _KEEP_CONTROLS))
    + f"{chr(_TAG_FIRST)}-{chr(_TAG_LAST)}]")


@dataclass(frozen=True)
class Normalized:
    """A normalized text and what changed (only non-zero counts)."""

    text: str
    changes: dict[str, int] = field(default_factory=dict)


@lru_cache(maxsize=8192)
def _script(ch: str) -> str:
    """The first word of the character's Unicode name (``LATIN``, ``CYRILLIC``, ``DIGIT``...), ``""`` if unnamed."""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def _keeps_joiner(joiner: str, before: str | None, after: str | None) -> bool:
    """Whether ``joiner`` (ZWSP, ZWJ or ZWNJ) is part of the orthography between ``before`` and ``after``."""
    if before is None or after is None:
        return False
    if joiner == _ZWJ and unicodedata.category(before) == "So" and unicodedata.category(after) == "So":
        return True  # emoji sequence
    scripts = _ZWSP_SCRIPTS if joiner == _ZWSP else _JOINER_SCRIPTS
    return _script(before) in scripts and _script(after) in scripts


def _strip_invisible(text: str, counts: Counter) -> str:
    """Steps 1-4: decode tag characters; remove invisible, bidi and control characters."""
    if not _STRIPPED.search(text):  # most texts: nothing to do, no loop over characters in Python
        return text
    out: list[str] = []
    n = len(text)
    flag_tags = False  # inside a tag run that follows U+1F3F4 (a subdivision flag such as England's)
    for i, ch in enumerate(text):
        cp = ord(ch)
        if _TAG_FIRST <= cp <= _TAG_LAST:
            if i == 0 or not _TAG_FIRST <= ord(text[i - 1]) <= _TAG_LAST:
                flag_tags = i > 0 and text[i - 1] == _BLACK_FLAG
            if cp == _TAG_CANCEL or flag_tags or not 0x20 <= cp - _TAG_FIRST <= 0x7E:
                counts["zero_width_removed"] += 1
            else:
                out.append(chr(cp - _TAG_FIRST))
                counts["tag_chars_decoded"] += 1
        elif ch in _INVISIBLE:
            counts["zero_width_removed"] += 1
        elif ch in (_ZWSP, _ZWJ, _ZWNJ):
            if _keeps_joiner(ch, text[i - 1] if i > 0 else None, text[i + 1] if i + 1 < n else None):
                out.append(ch)
            else:
                counts["zero_width_removed"] += 1
        elif ch in _BIDI:
            counts["bidi_controls_removed"] += 1
        elif unicodedata.category(ch) == "Cc" and ch not in _KEEP_CONTROLS:
            counts["control_chars_removed"] += 1
        else:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=65536)
def _letter_scripts(word: str) -> Counter:
    """The scripts of a word's letters, counted (cached: words recur; callers must not modify the result)."""
    return Counter(_script(c) for c in word)


def _fold_target(word: str, scripts: Counter, main: str) -> str | None:
    """The script a mixed-script word is folded into, or ``None`` to leave it.

    A script qualifies when folding makes the word single-script. It is chosen when it is the text's main script,
    or when folding changes only a minority of the word's letters (``bоmb`` in Chinese text). Otherwise the word is
    left as written.
    """
    whole = [t for t in FOLD if t in scripts and all(_script(c) == t or c in FOLD[t] for c in word)]
    if main in whole:
        return main
    for t in whole:
        if 2 * (len(word) - scripts[t]) < len(word):
            return t
    return None


def _fold_confusables(text: str, counts: Counter) -> str:
    """Step 6: fold the lookalikes of mixed-script words (see the module docstring for the rules)."""
    if text.isascii():  # no lookalike
        return text
    if any(c in LATIN_VARIANTS for c in text):
        counts["confusables_folded"] += sum(1 for c in text if c in LATIN_VARIANTS)
        text = "".join(LATIN_VARIANTS.get(c, c) for c in text)
    if len({_script(c) for c in set(text) if _WORD.match(c)}) < 2:
        return text  # the letters of one script only: no word mixes scripts, and no lookalike stands alone
    words = [(m.start(), m.end(), _letter_scripts(m.group())) for m in _WORD.finditer(text)]
    mixed = [w for w in words if len(w[2]) > 1]
    if not mixed and not any(c in CONFUSABLES for c in text):
        return text
    pure = Counter()
    for start, end, scripts in words:
        if len(scripts) == 1:
            pure.update(scripts)
    main = pure.most_common(1)[0][0] if pure else "LATIN"
    genuine = {_script(c) for c in text if c.isalpha() and c not in CONFUSABLES}  # scripts really written
    chars = list(text)

    def fold(start: int, end: int, table: dict[str, str]) -> None:
        for k in range(start, end):
            if chars[k] in table:
                chars[k] = table[chars[k]]
                counts["confusables_folded"] += 1

    for start, end, scripts in words:
        if len(scripts) > 1:
            target = _fold_target(text[start:end], scripts, main)
            if target is not None:
                fold(start, end, FOLD[target])
        elif main == "LATIN" and all(c in CONFUSABLES for c in text[start:end]) and not scripts.keys() & genuine:
            fold(start, end, CONFUSABLES)
    return "".join(chars)


def normalize(text: str) -> Normalized:
    """Normalize ``text`` for scoring (see the module docstring for the steps).

    Args:
        text: the caller's text.

    Returns:
        The normalized text and the number of characters each step changed (steps that changed nothing omitted).
    """
    counts: Counter = Counter()
    out = _strip_invisible(text, counts)
    nfkc = unicodedata.normalize("NFKC", out)
    if nfkc != out:
        counts["compatibility_folded"] = sum(
            1 for c in out if unicodedata.normalize("NFKC", c) != unicodedata.normalize("NFC", c))
        out = nfkc
    out = _fold_confusables(out, counts)
    return Normalized(out, {k: v for k, v in counts.items() if v})
