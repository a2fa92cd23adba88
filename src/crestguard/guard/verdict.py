"""What the guard answers: one :class:`Verdict` per text. Shared by the API, CLI, server and evaluation harness."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Window:
    """One scored span of the (normalized) text, in token and character coordinates: a ``"window"`` of the
    model's length (the whole text when it fits) or a ``"sentence"`` scored on its own (in ``sentences="only"`` mode,
    every span of a long text; a sentence longer than a window is scored in windows of kind ``"sentence"``), or
    ``"decoded"``: the text an encoded payload decodes to (:mod:`crestguard.guard.decode`), with the payload's
    character span."""

    index: int
    start_char: int
    end_char: int
    tokens: int
    score: float
    kind: str = "window"


@dataclass(frozen=True)
class Verdict:
    """The guard's judgement of one text.

    Attributes:
        unsafe: ``score >= threshold``, unless a category rule decides (a ``flag`` category over its threshold, or
            only ``ignore`` categories over theirs; see :mod:`crestguard.guard.categories`).
        score: calibrated probability that the text is unsafe (the riskiest window's).
        threshold: the threshold applied (global, or the language/cluster override).
        language: detected language, canonical code of :mod:`crestguard.languages` (``None`` if undetermined).
        language_confidence: confidence of the language detector.
        cluster: the language's CREST cluster (``None`` if the language has none).
        code_mixed: more than one language detected with substantial weight.
        windows: every span scored: the windows (one for texts that fit the model), then, for long texts, the
            sentences scored on their own.
        decisive_window: index into ``windows`` of the span that decided the verdict.
        normalized: what normalization changed (e.g. ``{"zero_width_removed": 3, "confusables_folded": 2}``).
        text: the caller's original text, unchanged.
        categories: harm category -> score in [0, 1] (max over the scored spans), the taxonomy's categories and any
            custom ones (:mod:`crestguard.guard.categories`); empty when the guard has no category model.
        flagged_categories: the categories at or over their threshold, except those the policy ignores; they
            explain ``unsafe``, and a category whose action is ``flag`` makes a text unsafe on its own.
    """

    unsafe: bool
    score: float
    threshold: float
    language: str | None = None
    language_confidence: float | None = None
    cluster: int | None = None
    code_mixed: bool = False
    windows: tuple[Window, ...] = ()
    decisive_window: int = 0
    normalized: dict[str, int] = field(default_factory=dict)
    text: str = ""
    categories: dict[str, float] = field(default_factory=dict)
    flagged_categories: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "unsafe" if self.unsafe else "safe"

    def to_dict(self, include_text: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d["label"] = self.label
        if not include_text:
            d.pop("text")
        return d
