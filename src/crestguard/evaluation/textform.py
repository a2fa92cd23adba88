"""A simple, documented heuristic for the *form* of a text, and length buckets.

False-positive rates are broken down by form because a classifier can learn "questions are benign,
everything else is suspect" from a skewed training mix. The heuristic, in order:

1. ``long``: at least :data:`LONG_CHARS` characters, or at least :data:`LONG_SENTENCES` sentence ends.
2. ``question``: the text ends (ignoring closing quotes/brackets/spaces) with a question mark of any script
   (``? ？ ؟ ՞ ፧ ⸮`` and ``;``, which is what the Greek question mark U+037E becomes under Unicode NFC).
3. ``command``: the first word is an English imperative from :data:`IMPERATIVES` (after an optional
   "please"/"can you"), or the text ends with ``:``. Non-English commands without such a cue fall into
   ``statement``: the command/statement split is reliable for English only.
4. ``statement``: everything else.

Length buckets count Unicode characters (not tokens, so CJK texts look shorter than their token count).
"""

from __future__ import annotations

import re

FORMS = ("question", "command", "statement", "long")
LONG_CHARS = 400
LONG_SENTENCES = 4
#: (label, inclusive upper bound in characters); the last bucket is open.
LENGTH_BUCKETS = (("<=40", 40), ("41-100", 100), ("101-250", 250), ("251-1000", 1000), (">1000", None))

_QMARKS = "?？؟;\u037e՞፧⸮"
_CLOSERS = " \t\n\"'”’»)]」』*"
_SENTENCE_END = re.compile(r"[.!?。！？؟।॥።]+(?:\s|$)")
_LEAD = re.compile(r"^(?:please|pls|kindly|can you|could you|would you)[\s,]+", re.IGNORECASE)
_WORD = re.compile(r"^[\W_]*([A-Za-z']+)")

#: Frequent English imperative verbs that open instructions ("Write ...", "Give me ...").
IMPERATIVES = frozenset(
    """add analyze analyse answer apply arrange assume brainstorm build calculate categorize change check choose
    classify combine compare compile complete compose compute construct convert correct count create debug define
    delete describe design detail determine develop devise discuss draft draw edit elaborate enumerate estimate
    evaluate explain express extract fill find finish fix format generate get give group guess help identify
    illustrate imagine implement improve include insert invent let list locate look make map name note offer
    organize outline paraphrase pick plan predict prepare present produce propose provide put rank rate read
    recommend reformulate remove reorder rephrase replace respond restate rewrite say schedule search select send
    set share show simplify sort specify state suggest summarise summarize take teach tell think transform
    translate turn type use verify write""".split()
)


def text_form(text: str) -> str:
    """Classify ``text`` as ``question``, ``command``, ``statement`` or ``long`` (see the module docstring)."""
    t = text.strip()
    if len(t) >= LONG_CHARS or len(_SENTENCE_END.findall(t)) >= LONG_SENTENCES:
        return "long"
    tail = t.rstrip(_CLOSERS)
    if tail and tail[-1] in _QMARKS:
        return "question"
    m = _WORD.match(_LEAD.sub("", t))
    if (m and m.group(1).lower() in IMPERATIVES) or tail.endswith(":"):
        return "command"
    return "statement"


def length_bucket(text: str) -> str:
    """The :data:`LENGTH_BUCKETS` label of ``text`` by its stripped length in characters."""
    n = len(text.strip())
    for label, upper in LENGTH_BUCKETS:
        if upper is None or n <= upper:
            return label
    raise AssertionError("unreachable")  # pragma: no cover
