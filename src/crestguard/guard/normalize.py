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
7. ``letters_joined``: letters written apart are joined back into words: a run of at least 3 single letters (or
   digits) separated by spaces or by one punctuation mark (``b o m b``, ``b.o.m.b``, ``b-o-m-b``, ``H o w  d o  I``).
   The run's most frequent separator is removed; any other separator in it (the wider space, or a space between
   dotted words) becomes one space. A run separated by plain spaces is joined only when at least two of its letters
   are not one-letter words of some language (``a i o u y e w z k s v``, Russian ``а в и к о с у я``...) and it
   holds no digit nor Hangul: real Russian "Я в о с ...", Chinese "2009 年 8 月" and Korean "다 찰 수" stay; a letter with a combining mark
   (Devanagari ``क्ष``) is no single letter; a leading one-letter word stays a word (``a b o m b`` -> ``a bomb``). A text
   written letter-spaced (words apart by two spaces or more, four fifths of its tokens single characters) is joined
   whole, punctuation included.
8. ``leetspeak_folded``: ``0 1 3 4 5 7 @ $`` -> ``o i e a s t a s`` inside a Latin-script word of at least two
   letters where one of them stands between two letters (``h0w``, ``m4k3``, ``k1ll``, ``3xpl0s1v3``). In a text
   written in leetspeak (at least two such words, a fifth of its words) every word with a leet character is folded,
   and numbers of one or two such digits too (``Wh47 d0 y0u 7h1nk``, ``15 17`` -> ``is it``). Only in text with a
   ``0 1 4 @ $`` next to a letter and no ``2 6 8 9`` inside words: the Arabic chat alphabet (``al-3alam``,
   ``ta2ti``, ``7abibi``) writes letters with ``2 3 5 7 9`` and is left as it is. Otherwise upper-case codes
   (``H5N1``, ``MP3``), numbers with units (``3rd``, ``4x4``), chunks holding another digit (``x86``), chunks over
   24 characters (encoded payloads: :mod:`crestguard.guard.decode`), e-mail addresses and URLs are left alone.

Before all of them, ``surrogates_replaced``: lone surrogates (``"\ud800"`` from a JSON escape; no encoding can
write them, and the tokenizer refuses them) become U+FFFD, so that every ``str`` gets a verdict
(:func:`encodable` does only this, for a guard without normalization).

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
#: 1: steps 1-6; 2: lone surrogates replaced, letters joined, leetspeak folded.
VERSION = 2

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


_SURROGATE = re.compile("[\ud800-\udfff]")
#: Step 7: a single letter or digit, separators between letters, runs of at least 3.
_SEP = r"(?: {1,3}|[.\-*_/|\u00b7\u2022~+])"
_SPACED = re.compile(rf"(?<![^\W_])(?<![^\W_][.\-*_/|\u00b7\u2022~+])[^\W_](?:{_SEP}[^\W_](?![^\W_])){{2,}}")
_GAP = re.compile(_SEP)
_UNIT = re.compile(r"[^\W_]")
#: One-letter words of common orthographies (Latin, Cyrillic, Greek): spaced runs of only these are left alone.
_ONE_LETTER_WORDS = frozenset("aAiIoOuUyYeEwWzZkKsSvVаАвВиИкКоОсСуУяЯжЖіІйЙзЗηΗοΟήάό")
#: Step 8: leetspeak digits and symbols, and a word's parts they may stand in.
LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_LEET_TOKEN = re.compile(rf"[{_LATIN}0-9@$]+")
_LEET_INSIDE = re.compile(rf"(?<=[{_LATIN}])[013457@$]+(?=[{_LATIN}])")
_LEET_SIGN = re.compile(rf"(?<=[{_LATIN}])[014@$]|[014@$](?=[{_LATIN}])")
_ARABIZI = re.compile(rf"(?<=[{_LATIN}])[2689]|[2689](?=[{_LATIN}]{{2}})")
_OTHER_DIGIT = re.compile(r"[2689]|\b\d+(?:st|nd|rd|th)\b")
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}")


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
    out = _strip_invisible(_replace_surrogates(text, counts), counts)
    nfkc = unicodedata.normalize("NFKC", out)
    if nfkc != out:
        counts["compatibility_folded"] = sum(
            1 for c in out if unicodedata.normalize("NFKC", c) != unicodedata.normalize("NFC", c))
        out = nfkc
    out = _join_letters(out, counts)
    out = _fold_confusables(out, counts)
    out = _fold_leetspeak(out, counts)
    return Normalized(out, {k: v for k, v in counts.items() if v})


def encodable(text: str) -> Normalized:
    """``text`` with lone surrogates replaced by U+FFFD (the only normalization a guard without it applies)."""
    counts: Counter = Counter()
    out = _replace_surrogates(text, counts)
    return Normalized(out, {k: v for k, v in counts.items() if v})


def _replace_surrogates(text: str, counts: Counter) -> str:
    if not _SURROGATE.search(text):
        return text
    out, n = _SURROGATE.subn("\ufffd", text)
    counts["surrogates_replaced"] += n
    return out


def _join_letters(text: str, counts: Counter) -> str:
    """Step 7: join runs of letters written apart (see the module docstring)."""
    if not _SPACED.search(text):
        return text
    parts = text.split(" ")
    singles = sum(len(p) == 1 for p in parts)
    if "  " in text and singles >= 6 and singles >= 0.8 * sum(1 for p in parts if p):  # a letter-spaced text
        counts["letters_joined"] += singles
        return " ".join(w.replace(" ", "") for w in re.split(" {2,}", text))
    def join(m: re.Match) -> str:
        start, end = m.span()  # a letter with a combining mark (Indic vowel signs, viramas) is not a single letter
        if start and unicodedata.category(text[start - 1])[0] == "M" or \
                end < len(text) and unicodedata.category(text[end])[0] == "M":
            return m.group(0)
        return _join_run(m.group(0), counts)

    return _SPACED.sub(join, text)


def _join_run(run: str, counts: Counter) -> str:
    gaps, units = _GAP.findall(run), _UNIT.findall(run)
    if len(units) != len(gaps) + 1:  # cannot happen with the patterns; leave the text as it is
        return run
    main = Counter(gaps).most_common(1)[0][0]
    letters = [u for u in units if u.isalpha()]
    scripts = {_script(u) for u in letters}
    if len(scripts) > 1 or scripts == {"HANGUL"} and not main.strip():  # "x 和 y"; Korean "다 찰 수" are words
        return run
    if not main.strip():  # plain spaces: only letters, and not only one-letter words ("2009 年 8 月" stays)
        if len(letters) < len(units) or sum(u not in _ONE_LETTER_WORDS for u in letters) < 2:
            return run
        if len(set(gaps)) == 1 and units[0] in _ONE_LETTER_WORDS and len(units) > 3:
            return units[0] + gaps[0] + _join_run(run[len(units[0]) + len(gaps[0]):], counts)
    elif len(letters) < 2:
        return run
    out = [units[0]]
    for gap, unit in zip(gaps, units[1:]):
        out.append(unit if gap == main else " " + unit)
    counts["letters_joined"] += len(units)
    return "".join(out)


def _fold_leetspeak(text: str, counts: Counter) -> str:
    """Step 8: fold leetspeak digits and symbols inside words (see the module docstring)."""
    if not _LEET_INSIDE.search(text):
        return text

    if _ARABIZI.search(text) or not _LEET_SIGN.search(text):  # Arabic chat alphabet (al-3alam, ta2ti), or no 0 1 4 @ $
        return text
    chunks = text.split()
    strong = sum(1 for c in chunks if _leet_chunk(c) and _LEET_INSIDE.search(c))
    leet_text = strong >= 2 and strong >= 0.2 * len(chunks)  # written in leetspeak: fold every word with leet

    def chunk(m: re.Match) -> str:
        c = m.group(0)
        return _LEET_TOKEN.sub(token, c) if _leet_chunk(c) else c

    def token(m: re.Match) -> str:
        t = m.group(0)
        letters = sum(ch.isalpha() for ch in t)  # Latin letters: the token pattern holds no others
        if not leet_text and t.upper() == t:  # H5N1, MP3, B52: codes, unless the whole text is leetspeak
            return t
        if not (letters >= 2 and _LEET_INSIDE.search(t)
                or leet_text and (letters or len(t) <= 2) and any(ch in LEET for ch in t)):
            return t
        upper = letters > 0 and all(ch.isupper() for ch in t if ch.isalpha())
        counts["leetspeak_folded"] += sum(ch in LEET for ch in t)
        return "".join((LEET[ch].upper() if upper else LEET[ch]) if ch in LEET else ch for ch in t)

    return re.sub(r"\S+", chunk, text)


def _leet_chunk(c: str) -> bool:
    """Whether a whitespace-separated chunk may hold leetspeak (not a payload, URL, e-mail or other number)."""
    return len(c) <= 24 and "://" not in c and not _EMAIL.search(c) and not _OTHER_DIGIT.search(c)
