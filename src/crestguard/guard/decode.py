"""Encoded payloads: text hidden in base64, hex, ROT13 or URL-encoding, decoded so that the guard scores it too.

:func:`payloads` finds the encoded parts of a (normalized) text and returns what they decode to; the guard scores
each decoded text besides the text itself (windows of kind ``"decoded"``), and the riskiest span decides, as for
windows. Detection, bounded in size and depth:

- ``base64``: a run of at least 16 base64 characters (standard or URL-safe alphabet, optional ``=`` padding) that
  decodes to UTF-8 text of which at least 90% are printable characters and at least 40% letters (or to another
  base64 or hex run);
- ``hex``: a run of at least 16 hex digits (optionally in ``0x``/``\\x``/space-separated pairs) that decodes so;
- ``url``: a run holding at least 3 ``%XX`` escapes that form at least a third of it, percent-decoded;
- ``rot13``: a text of Latin letters in which ROT13 turns up at least 3 more common English words than it had
  (``uBj qb V znxr n obzo`` -> ``hOw do I make a bomb``); the whole text is decoded.

The guard calls :func:`add_payloads` on every prepared text (when it normalizes). A decoded text may itself be
encoded: decoding goes :data:`MAX_DEPTH` levels deep. At most :data:`MAX_PAYLOADS`
payloads of at most :data:`MAX_CHARS` characters each are decoded per text; longer runs are decoded up to that size.
A text that is (almost) wholly an encoding (:data:`WHOLE`) is scored by what it decodes to alone: the encoded form
means nothing to the model, and scoring it too flagged encoded benign text (ROT13 small talk).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import urllib.parse
from dataclasses import dataclass

MAX_DEPTH = 2
MAX_PAYLOADS = 8
MAX_CHARS = 20_000
#: A text whose payloads cover this share of its non-space characters is scored by its decoded text alone.
WHOLE = 0.9
_MIN_RUN = 16
_B64_RUN = r"[A-Za-z0-9+/_-]{16,}={0,2}"
_HEX_RUN = r"(?:(?:0x|\\x)?[0-9A-Fa-f]{2}[\s,:]?){8,}"
_B64 = re.compile(rf"(?<![A-Za-z0-9+/_-]){_B64_RUN}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(_HEX_RUN)
_URL = re.compile(r"(?:%[0-9A-Fa-f]{2}|[^\s%]){3,}")
_ESC = re.compile(r"%[0-9A-Fa-f]{2}")
_WORDS = re.compile(r"[A-Za-z]+")
_ENCODED = re.compile(f"{_B64_RUN}|{_HEX_RUN}")  # a decoded text that is itself encoded
#: Frequent English words, for telling ROT13 text from plain text.
_COMMON = frozenset("the be to of and a in that have i it for not on with he as you do at this but his by from they "
                    "we say her she or an will my one all would there their what so up out if about who get which go "
                    "me when make can like how is are was why where should tell give kill".split())


@dataclass(frozen=True)
class Payload:
    """One decoded part: where it was in the text, how it was encoded, what it says."""

    start: int
    end: int
    encoding: str
    text: str


def _readable(text: str) -> bool:
    if not text.strip():
        return False
    printable = sum(c.isprintable() or c in "\n\t\r" for c in text)
    letters = sum(c.isalpha() for c in text)
    return printable >= 0.9 * len(text) and letters >= 0.4 * len(text.replace(" ", "")) and "\ufffd" not in text


def _utf8(data: bytes) -> str | None:
    """The bytes as text when they are readable text, or themselves an encoding (base64 or hex digits)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if _readable(text) or _ENCODED.fullmatch(text) else None


def _b64(run: str) -> str | None:
    s = run.rstrip("=")
    if len(s) % 4 == 1 or s.isalpha() and (s.islower() or s.isupper()):  # a plain word is not base64
        return None
    padded = s + "=" * (-len(s) % 4)
    try:
        data = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _utf8(data)


def _hex(run: str) -> str | None:
    digits = re.sub(r"0x|\\x|[\s,:]", "", run)
    if len(digits) < _MIN_RUN or len(digits) % 2 or not re.search(r"[0-9]", digits):
        return None
    try:
        return _utf8(bytes.fromhex(digits))
    except ValueError:
        return None


def _url(run: str) -> str | None:
    escapes = len(_ESC.findall(run))
    if escapes < 3 or 3 * escapes * 3 < len(run):  # escapes (3 characters each) make up at least a third
        return None
    text = urllib.parse.unquote(run, errors="strict") if escapes else run
    return text if _readable(text) else None


def _rot13(text: str) -> str | None:
    words = [w.lower() for w in _WORDS.findall(text)]
    before = sum(w in _COMMON for w in words)
    if len(words) < 3 or before > 0.2 * len(words):  # too short, or plain English already
        return None
    decoded = codecs.encode(text, "rot13")
    after = sum(w.lower() in _COMMON for w in _WORDS.findall(decoded))
    return decoded if after >= before + 3 and after >= 0.3 * len(words) else None


def _find(text: str) -> list[Payload]:
    found: list[Payload] = []
    taken: list[tuple[int, int]] = []
    for encoding, pattern, decode in (("url", _URL, _url), ("hex", _HEX, _hex), ("base64", _B64, _b64)):
        if encoding == "url" and "%" not in text:
            continue
        for m in pattern.finditer(text):
            start, end = m.start(), m.end()
            if end - start < _MIN_RUN // 2 or any(a < end and start < b for a, b in taken):
                continue
            out = decode(m.group(0)[:MAX_CHARS].strip())
            if out is not None:
                found.append(Payload(start, end, encoding, out))
                taken.append((start, end))
    if not found:
        out = _rot13(text[:MAX_CHARS])
        if out is not None:
            found.append(Payload(0, len(text), "rot13", out))
    return sorted(found, key=lambda p: p.start)


def payloads(text: str) -> list[Payload]:
    """The encoded parts of ``text``, decoded (nested encodings too, :data:`MAX_DEPTH` levels); ``[]`` for most
    texts. Offsets of nested payloads are those of the outermost one in ``text``."""
    if len(text) < _MIN_RUN // 2:
        return []
    out: list[Payload] = []
    level = [Payload(0, len(text), "", text)]
    for _ in range(MAX_DEPTH):
        nxt = []
        for outer in level:
            for p in _find(outer.text):
                if len(out) >= MAX_PAYLOADS:
                    return out
                span = (p.start, p.end) if not outer.encoding else (outer.start, outer.end)
                enc = f"{outer.encoding}+{p.encoding}" if outer.encoding else p.encoding
                nxt.append(Payload(*span, enc, p.text))
                out.append(nxt[-1])
        level = nxt
        if not level:
            break
    return out


def _covers(found: list[Payload], text: str) -> bool:
    """Whether the payloads span at least :data:`WHOLE` of the text's non-space characters."""
    covered = [False] * len(text)
    for p in found:
        covered[p.start:p.end] = [True] * (p.end - p.start)
    chars = [c for c, _ in zip(text, covered) if not c.isspace()]
    inside = sum(1 for c, k in zip(text, covered) if k and not c.isspace())
    return bool(chars) and inside >= WHOLE * len(chars)


def add_payloads(prepared, tokenizer, spans) -> None:
    """Append the decoded payloads of a guard's prepared text (``crestguard.guard.guard._Prepared``) as spans to
    score: the decoded text (normalized) is tokenized after the text's own tokens, its tokens' offsets are the
    payload's span in the normalized text, ``spans(n_tokens)`` windows it; ``normalized`` counts
    ``<encoding>_decoded``. When the payloads cover the text (:data:`WHOLE`), its own windows are dropped."""
    from collections import Counter

    from crestguard.guard.normalize import Normalized, normalize

    found = payloads(prepared.normalized.text)
    if not found:
        return
    counts = Counter(prepared.normalized.changes)
    ids, offsets = list(prepared.ids), list(prepared.offsets)
    whole = _covers(found, prepared.normalized.text)  # the text is its payloads: its encoded form is noise
    for p in found:
        enc = tokenizer.encode(normalize(p.text).text, add_special_tokens=False)
        if not enc.ids:
            continue
        base = len(ids)
        ids += enc.ids
        offsets += [(p.start, p.end)] * len(enc.ids)
        new = [(base + a, base + b) for a, b in spans(len(enc.ids))]
        prepared.spans = list(prepared.spans) + new
        prepared.n_decoded += len(new)
        counts[f"{p.encoding.replace('+', '_')}_decoded"] += 1
    if whole and prepared.n_decoded:
        prepared.spans = prepared.spans[len(prepared.spans) - prepared.n_decoded:]
        prepared.n_windows = 0
    prepared.ids, prepared.offsets = ids, offsets
    prepared.normalized = Normalized(prepared.normalized.text, dict(counts))
