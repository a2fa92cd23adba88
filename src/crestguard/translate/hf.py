"""Hugging Face seq2seq translation models by hub id or folder: Marian/Opus-MT, NLLB-200, M2M100, mBART-50.

Each family names languages its own way; the codes come from our language table (:mod:`crestguard.languages`)
and are checked against the model's own vocabulary, so an unsupported language is an error, never a silent
wrong target:

=========  =====================================  ===========================================================
family     how the target is chosen               code for Portuguese
=========  =====================================  ===========================================================
marian     a ``>>code<<`` token before the source  ``>>por_Latn<<``, ``>>por<<`` or ``>>pt<<`` (whichever the
           (multi-target models only)             vocabulary has); single-pair models need none
nllb       forced first token, ``src_lang``       ``por_Latn`` (the FLORES-200 code)
m2m100     forced first token, ``src_lang``       ``__pt__`` (ISO 639-1)
mbart50    forced first token, ``src_lang``       ``pt_XX`` (ISO 639-1 + region)
=========  =====================================  ===========================================================

Texts are translated line by line (these models are sentence-level). A source line longer than the model's
input limit, or a translation that reaches ``max_new_tokens`` without ending, is a :class:`Failed` item, not a
truncation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from crestguard.errors import MissingDependencyError, require
from crestguard.translate.base import Backend, Failed, Outcome, TranslationError, by_lines

FAMILIES = ("marian", "nllb", "m2m100", "mbart50")
_MARIAN_CODE = re.compile(r"^>>\w+<<$")


def detect_family(model_type: str, tokenizer_class: str) -> str:
    """The model family from the config's ``model_type`` and the tokenizer's class name (NLLB shares M2M100's
    architecture and is told apart by its tokenizer)."""
    if model_type == "marian":
        return "marian"
    if model_type == "m2m_100":
        return "nllb" if "nllb" in tokenizer_class.lower() else "m2m100"
    if model_type == "mbart":
        return "mbart50"
    raise TranslationError(
        f"Unsupported seq2seq model type {model_type!r}; supported families: {', '.join(FAMILIES)}."
    )


def language_token(family: str, code: str, vocab: dict[str, int]) -> str | None:
    """The token that names language ``code`` for ``family``, if the vocabulary has it.

    Args:
        family: one of :data:`FAMILIES`.
        code: a canonical language code of :mod:`crestguard.languages`.
        vocab: the tokenizer's vocabulary (token -> id), including added tokens.

    Returns:
        The token, or None when the vocabulary has no token for this language.
    """
    from crestguard.languages import get, try_resolve

    lang = get(code)
    flores = list(lang.flores)
    # A bare ISO code names a script variant only if it is that code's default row: "zh" is zh-Hans, so
    # zh-Hant (or bn_rom, romanized Bengali) never falls back to it.
    iso = [c for c in (lang.iso639_1, lang.iso639_3) if c and try_resolve(c) == lang.code]
    if family == "marian":
        candidates = [f">>{c}<<" for c in [*flores, *reversed(iso)]]
    elif family == "nllb":
        candidates = flores
    elif family == "m2m100":
        candidates = [f"__{c}__" for c in iso]
    else:  # mbart50: ISO 639-1 plus a region, e.g. pt_XX, zh_CN
        iso1 = lang.iso639_1 if lang.iso639_1 in iso else None
        candidates = sorted(t for t in vocab if iso1 and re.fullmatch(rf"{re.escape(iso1)}_[A-Z]{{2}}", t))
    return next((c for c in candidates if c in vocab), None)


class HFBackend(Backend):
    """A transformers seq2seq translation model.

    Args:
        model: hub id (``Helsinki-NLP/opus-mt-en-es``, ``facebook/nllb-200-distilled-600M``, ...) or a local
            folder.
        family: override the detected family (one of :data:`FAMILIES`).
        batch_size: lines per ``generate`` call.
        num_beams: beam size (default: the model's generation config).
        max_new_tokens: longest translation; reaching it marks the item :class:`Failed`.
        device: torch device.
    """

    name = "hf"

    def __init__(
        self,
        model: str | None = None,
        family: str | None = None,
        batch_size: int = 16,
        num_beams: int | None = None,
        max_new_tokens: int = 512,
        device: str = "cpu",
    ):
        if not model:
            raise TranslationError("The hf backend needs a model id or folder (--model).")
        transformers = require("transformers", "torch", "Hugging Face translation models")
        self.model, self.batch_size, self.workers = model, batch_size, 1
        self.num_beams, self.max_new_tokens, self.device = num_beams, max_new_tokens, device
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(model)
            self.net = transformers.AutoModelForSeq2SeqLM.from_pretrained(model).to(device).eval()
        except ImportError as exc:  # e.g. MarianTokenizer / M2M100Tokenizer need sentencepiece
            missing = re.search(r"requires the (\w+) library", str(exc))
            raise MissingDependencyError(
                missing.group(1).lower() if missing else str(exc), purpose=model
            ) from exc
        except (OSError, ValueError) as exc:
            raise TranslationError(f"Cannot load the translation model {model!r}: {exc}") from exc
        if family is not None and family not in FAMILIES:
            raise TranslationError(f"Unknown model family {family!r}; choose one of: {', '.join(FAMILIES)}.")
        self.family = family or detect_family(self.net.config.model_type, type(self.tokenizer).__name__)
        self._vocab = self.tokenizer.get_vocab()
        self.max_source_tokens = min(
            self.tokenizer.model_max_length, getattr(self.net.config, "max_position_embeddings", 10**9)
        )

    def _token(self, code: str, side: str) -> str | None:
        token = language_token(self.family, code, self._vocab)
        if token is None and (self.family != "marian" or any(_MARIAN_CODE.match(t) for t in self._vocab)):
            raise TranslationError(
                f"The {side} language {code!r} is not supported by {self.model} ({self.family})."
            )
        return token

    def check_pair(self, src: str, tgt: str) -> None:
        if self.family != "marian":  # Marian models are trained for one source (or a group): nothing to check
            self._token(src, "source")
        self._token(tgt, "target")

    def encode(self, lines: Sequence[str], src: str, tgt: str):
        """Tokenize source lines the family's way.

        Returns:
            (the batch of tensors, the keyword arguments for ``generate``).
        """
        kwargs: dict = {"max_new_tokens": self.max_new_tokens}
        if self.num_beams:
            kwargs["num_beams"] = self.num_beams
        target = self._token(tgt, "target")
        if self.family == "marian":
            lines = [f"{target} {line}" for line in lines] if target else list(lines)
        else:
            source = self._token(src, "source")
            self.tokenizer.src_lang = source.strip("_") if self.family == "m2m100" else source
            kwargs["forced_bos_token_id"] = self._vocab[target]
        batch = self.tokenizer(list(lines), return_tensors="pt", padding=True)
        return batch.to(self.device), kwargs

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[Outcome]:
        return by_lines(texts, lambda lines: self._translate_lines(lines, src, tgt))

    def _translate_lines(self, lines: list[str], src: str, tgt: str) -> list[Outcome]:
        import torch

        lengths = [len(ids) for ids in self.tokenizer(lines)["input_ids"]]
        # "<" leaves room for the language tag that encode() adds.
        fits = [i for i, n in enumerate(lengths) if n < self.max_source_tokens]
        out: list[Outcome] = [
            Failed(f"source line of {n} tokens does not fit the model's limit of {self.max_source_tokens}")
            for n in lengths
        ]
        for start in range(0, len(fits), self.batch_size):
            idx = fits[start : start + self.batch_size]
            batch, kwargs = self.encode([lines[i] for i in idx], src, tgt)
            with torch.inference_mode():
                generated = self.net.generate(**batch, **kwargs)
            eos = self.net.generation_config.eos_token_id
            eos = set(eos) if isinstance(eos, list) else {eos}
            for i, row in zip(idx, generated.tolist()):
                if not eos.intersection(row[1:]):
                    out[i] = Failed(f"no end of sentence within {self.max_new_tokens} generated tokens")
                else:
                    out[i] = self.tokenizer.decode(row, skip_special_tokens=True).strip()
        return out

