"""Sentences of a text, for scoring a long input part by part as well as window by window.

The classifier judges a short request well (the form it was trained on) but a request diluted in a window of
benign text barely moves that window's score (measured: ``benchmarks/long_input.py``). So a long input is also
scored sentence by sentence, and the riskiest of its windows and sentences decides.

:func:`sentence_spans` splits after sentence-final punctuation of any script (Latin, CJK full-width, Arabic,
Devanagari danda, Ethiopic, Myanmar, Armenian, Greek question mark ...) that is followed by a space or a closing
quote/bracket (CJK full stops need no space), and at line breaks. It never drops a character: the spans cover the
text except the whitespace between them. :func:`token_spans` maps the character spans onto token positions.
"""

from __future__ import annotations

import re
from typing import Sequence

#: The guard's ``sentences`` settings (:class:`crestguard.guard.GuardSettings`): long texts scored sentence by
#: sentence instead of window by window, sentences besides windows for long texts or for all texts, windows only.
SENTENCE_MODES = ("only", "long", "all", "off")

# sentence-final marks after which a space (or the end) ends a sentence
_FINAL = r".!?\u2026\u037e\u0589\u061f\u06d4\u0964\u0965\u104a\u104b\u1362\u1367\u1368\u166e\u3002\uff01\uff1f\uff0e"
# marks that end a sentence even without a following space (full-width CJK)
_FINAL_NOSPACE = "\u3002\uff01\uff1f"
_CLOSERS = "\"'\u2019\u201d\u00bb)\\]}\u300d\u300f\uff09"
_BOUNDARY = re.compile(
    rf"(?<=[{_FINAL}])[{_CLOSERS}]*\s+|(?<=[{_FINAL_NOSPACE}])[{_CLOSERS}]*|\s*[\r\n]+\s*"
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text`` (whitespace between them excluded)."""
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        end = m.start() + len(m.group(0).rstrip()) if m.group(0).strip() else m.start()
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def token_spans(char_spans: Sequence[tuple[int, int]], offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token spans ``(a, b)`` (``ids[a:b]``) of character spans, given each token's ``(start, end)`` offsets: a
    token belongs to the sentence in which it starts. Spans without tokens are left out."""
    out, k = [], 0
    n = len(offsets)
    for start, end in char_spans:
        while k < n and offsets[k][0] < start and offsets[k][1] <= start:
            k += 1
        a = k
        while k < n and offsets[k][0] < end:
            k += 1
        if k > a:
            out.append((a, k))
    return out
