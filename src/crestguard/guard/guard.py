"""The guard: the one inference path that the API, the CLI, the server and the evaluation harness share.

``check_batch(texts)`` does, for every text:

1. size check against ``max_chars`` (before any work) and ``max_tokens`` (after tokenizing): a clear
   :class:`InputTooLargeError` instead of an out-of-memory;
2. normalization (:mod:`crestguard.guard.normalize`); the caller's text is kept unchanged in the verdict; encoded
   payloads (base64, hex, ROT13, URL-encoding) are decoded and scored too (:mod:`crestguard.guard.decode`);
3. language identification on the normalized text (:mod:`crestguard.guard.langid`);
4. tokenization with the ``tokenizers`` library (the same ``tokenizer.json`` for torch and ONNX);
5. windows: a text of at most ``window`` tokens is scored whole; a longer one in windows of ``window`` tokens that
   overlap by ``overlap`` tokens (stride ``window - overlap``), the last one aligned to the end. Nothing is
   truncated: any span of up to ``overlap`` tokens lies whole inside some window. Cost: about
   ``1000 / (window - overlap)`` windows per 1,000 tokens (:attr:`Guard.windows_per_1k_tokens`);
   optionally (``sentences``, :mod:`.segments`) every sentence is also scored on its own, or a long text is scored
   sentence by sentence instead of window by window (``"only"``; a sentence longer than a window is windowed);
6. all windows of the batch sorted by length and run in batches (``batch_size`` windows, at most
   ``max_batch_tokens`` padded tokens per batch);
7. score = ``sigmoid(margin / T)`` of the riskiest window or sentence (``margin`` = unsafe logit - safe logit, ``T`` the
   policy's temperature); ``unsafe = score >= threshold`` with the language/cluster/global threshold.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crestguard.errors import CrestGuardError
from crestguard.guard import decode
from crestguard.guard import normalize as norm
from crestguard.guard import segments
from crestguard.guard.backends import check_precision, default_backend
from crestguard.guard.thresholds import ThresholdPolicy, load_policy, sigmoid
from crestguard.guard.verdict import Verdict, Window
from crestguard.modeling import quiet_transformers  # noqa: F401  (was defined here)
from crestguard.paths import PACKAGE_DIR

DEFAULT_MODEL = "crest-me5s"
#: Models found by name: package data of crestguard (``src/crestguard/models/``), so any install has the default.
MODELS_DIR = PACKAGE_DIR / "models"
#: A threshold policy shipped inside a model folder is applied automatically.
THRESHOLDS_NAME = "thresholds.yaml"
_MODEL_MARKERS = ("crest_config.json", "config.json")
SENTENCE_MODES = segments.SENTENCE_MODES


class GuardError(CrestGuardError):
    """The guard cannot be loaded, or an input cannot be checked."""


class InputTooLargeError(GuardError):
    """An input exceeds the guard's ``max_chars`` or ``max_tokens``."""


@dataclass(frozen=True)
class GuardSettings:
    """How texts are prepared and batched.

    Attributes:
        window: content tokens per window (``None``: the length the model was trained on, ``max_length_trained``
            in ``crest_config.json``, else its maximum length; minus the special tokens).
        overlap: tokens shared by consecutive windows (``None``: half the window).
        max_chars: longest accepted input in characters (checked before any work).
        max_tokens: longest accepted input in tokens (after normalization).
        batch_size: windows per forward pass.
        max_batch_tokens: padded tokens per forward pass. Bounds memory for long windows, and keeps texts of
            unlike lengths out of one padded batch: 1,024 instead of 8,192 took prompts of 40-200 tokens from 39
            to 67 texts/s (ONNX int8) and cost nothing on prompts of equal length (benchmarks/batch_tokens.py).
        normalize: apply :func:`crestguard.guard.normalize.normalize` before scoring.
        langid: identify the language (needed for per-language thresholds).
        sentences: how sentences are scored. ``"only"``: a text longer than one window is scored sentence by
            sentence instead of window by window (a sentence longer than a window in windows); ``"long"``: such a
            text's sentences are scored besides its windows; ``"all"``: every text of more than one sentence gets
            its sentences scored besides its windows; ``"off"``: windows only. ``None`` (the default): the model's
            own choice, ``sentences`` in its ``crest_config.json``, else ``"off"``. The shipped model reads long
            inputs with ``"only"`` (docs/guard.md, long inputs; benchmarks/long_input.py).
    """

    window: int | None = None
    overlap: int | None = None
    max_chars: int = 200_000
    max_tokens: int = 65_536
    batch_size: int = 32
    max_batch_tokens: int = 1024
    normalize: bool = True
    langid: bool = True
    sentences: str | None = None


def available_models() -> list[str]:
    """Names of the model folders in :data:`MODELS_DIR` that hold a model."""
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in MODELS_DIR.iterdir() if any((p / m).is_file() for m in _MODEL_MARKERS))


def resolve_model_dir(name_or_path: str | Path) -> Path:
    """A model folder: an existing directory, or ``<name>/`` of :data:`MODELS_DIR` (the package's models).

    Raises:
        GuardError: neither exists, or the folder holds no model yet.
    """
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        path = MODELS_DIR / str(name_or_path)
    if not path.is_dir():
        raise GuardError(f"Unknown guard model {str(name_or_path)!r}: not a folder, and {path} does not exist "
                         f"(models available: {', '.join(available_models()) or 'none'}).")
    if not any((path / m).is_file() for m in _MODEL_MARKERS):
        raise GuardError(f"{path} holds no model yet (no {' or '.join(_MODEL_MARKERS)}).")
    return path.resolve()


def _read_meta(model_dir: Path) -> dict[str, Any]:
    cfg = model_dir / "crest_config.json"
    return json.loads(cfg.read_text(encoding="utf-8")) if cfg.is_file() else {}


def load_guard(
    name_or_path: str | Path = DEFAULT_MODEL,
    backend: str | None = None,
    precision: str | None = None,
    thresholds: str | Path | None = None,
    threads: int | None = None,
    spin: bool = False,
    rows: bool = True,
    export: bool = True,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> Guard:
    """Load a guard.

    Args:
        name_or_path: a model shipped in the package (``"crest-me5s"``) or a model folder.
        backend: ``"onnx"`` (onnxruntime; no torch: models on the offline backbone are built with onnx and numpy)
            or ``"torch"``. ``None``: ONNX whenever onnxruntime is installed and the model builds without torch,
            else torch (:func:`~crestguard.guard.backends.default_backend`).
        precision: torch ``fp32`` (default) / ``bf16`` / ``int8``; onnx ``int8`` (default) / ``fp32``.
        thresholds: a YAML/JSON threshold policy applied over the model's defaults
            (see :mod:`crestguard.guard.thresholds`).
        threads: CPU threads for the backend (default: the library's choice).
        spin: onnx only: let onnxruntime threads spin-wait between operators during a run (about 2 ms less per
            single request on dedicated cores; slower on a CPU shared with other work).
        rows: onnx only: run the rows of a batch on several cores at once, one core each, in a second
            single-threaded session (faster batches, 110-140 MB more memory; see
            :class:`~crestguard.guard.backends.OnnxBackend`). ``False``: every batch in one session.
        export: for ``backend="onnx"``, build the model's ONNX graph into the cache on first use when it is not
            there yet (torch only for Hugging Face folder models); with ``False`` a missing export is an error.
        progress: called with a short description of slow steps (loading, exporting).
        **settings: fields of :class:`GuardSettings` (``window``, ``overlap``, ``max_chars``, ``max_tokens``,
            ``batch_size``, ``max_batch_tokens``, ``normalize``, ``langid``, ``sentences``).

    Raises:
        GuardError: unknown model, backend, precision or setting; a missing ONNX export with ``export=False``.
    """
    from crestguard.guard.onnx import export as onnx_export

    unknown = set(settings) - set(GuardSettings.__dataclass_fields__)
    if unknown:
        raise GuardError(f"Unknown guard setting(s) {sorted(unknown)}; "
                         f"known: {sorted(GuardSettings.__dataclass_fields__)}")
    say = progress or (lambda _msg: None)
    model_dir = resolve_model_dir(name_or_path)
    backend = backend or default_backend(model_dir, precision)
    precision = check_precision(backend, precision)
    meta = _read_meta(model_dir)
    policy = ThresholdPolicy(temperature=float(meta.get("temperature", 1.0)),
                             threshold=float(meta.get("threshold", 0.5)))
    shipped = model_dir / THRESHOLDS_NAME
    for path in ([shipped] if shipped.is_file() else []) + ([Path(thresholds)] if thresholds else []):
        policy = load_policy(path, policy)
    digest = onnx_export.model_hash(model_dir)
    if backend == "torch":
        from crestguard.guard.backends import TorchBackend
        from crestguard.modeling import load_classifier

        say(f"loading {model_dir.name} (torch {precision})")
        with quiet_transformers():
            bundle = load_classifier(model_dir)
        engine = TorchBackend(bundle.model, precision, threads)
        tokenizer_json = bundle.tokenizer.backend_tokenizer.to_str()
        pad_id = int(bundle.tokenizer.pad_token_id)
    else:
        from crestguard.guard.backends import OnnxBackend

        folder = onnx_export.find_onnx(model_dir, digest)
        if folder is None:
            if not export:
                raise GuardError(f"{model_dir.name} has no ONNX export in the cache "
                                 f"({onnx_export.onnx_dir(model_dir, digest)}); run: crestguard export onnx "
                                 f"--model {model_dir}")
            say(f"exporting {model_dir.name} to ONNX (once; cached in {onnx_export.onnx_dir(model_dir, digest)})")
            folder = onnx_export.export_onnx(model_dir, progress=say)
        onnx_meta = json.loads((folder / onnx_export.META_NAME).read_text())
        say(f"loading {model_dir.name} (onnx {precision})")
        engine = OnnxBackend(folder / onnx_export.FILES[precision], precision, threads, spin, rows)
        tokenizer_json = (folder / onnx_export.TOKENIZER_NAME).read_text(encoding="utf-8")
        pad_id = int(onnx_meta["pad_id"])
    from crestguard.guard.categories import load_categories, with_features

    categories = load_categories(model_dir, digest, policy.categories, policy.custom)
    if categories is not None:  # the engine also returns the pooled features that categories are scored on
        engine = with_features(engine)
    return Guard(engine, tokenizer_json, pad_id, policy, model_dir=model_dir, model_hash=digest, meta=meta,
                 backend=backend, precision=precision, settings=GuardSettings(**settings), categories=categories)


@dataclass
class _Prepared:
    text: str
    normalized: norm.Normalized
    ids: list[int]
    offsets: list[tuple[int, int]]
    spans: list[tuple[int, int]]  # windows first, then sentences
    n_windows: int
    n_decoded: int = 0  # the last spans: decoded payloads (crestguard.guard.decode)


class Guard:
    """A loaded guard. Create it with :func:`load_guard`.

    Attributes:
        name: the model's name, with ``@backend-precision`` unless torch fp32 (e.g. ``crest-me5s@onnx-int8``).
        fingerprint: SHA-256 of the model files, threshold policy, backend, precision and the settings that change
            scores; it changes whenever a score or a decision could.
        policy: the :class:`~crestguard.guard.thresholds.ThresholdPolicy` in force.
        meta: the model's ``crest_config.json``.
    """

    def __init__(self, engine, tokenizer_json: str, pad_id: int, policy: ThresholdPolicy, *, model_dir: Path,
                 model_hash: str, meta: dict[str, Any], backend: str, precision: str, settings: GuardSettings,
                 categories=None):
        from tokenizers import Tokenizer

        self.engine = engine
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.pad_id = pad_id
        self.model_dir = model_dir
        self.model_hash = model_hash
        self.meta = meta
        self.backend = backend
        self.precision = precision
        self.policy = policy
        self.categories = categories  # crestguard.guard.categories.CategoryModel, or None
        self._head, self._tail = self._special_tokens()
        self.settings = self._resolve(settings)
        suffix = "" if (backend, precision) == ("torch", "fp32") else f"@{backend}-{precision}"
        self.name = model_dir.name + suffix
        self.fingerprint = self._fingerprint()

    def _resolve(self, settings: GuardSettings) -> GuardSettings:
        """Fill in the default window/overlap and check them against the model."""
        specials = len(self._head) + len(self._tail)
        room = int(self.meta.get("max_length") or 512) - specials
        trained = self.meta.get("max_length_trained")
        window = settings.window or min(room, int(trained) - specials if trained else room)
        if not 0 < window <= room:
            raise GuardError(f"window must be between 1 and {room} tokens for {self.model_dir.name}, got {window}")
        overlap = window // 2 if settings.overlap is None else settings.overlap
        if not 0 <= overlap < window:
            raise GuardError(f"overlap must be at least 0 and below the window ({window}), got {overlap}")
        sentences = settings.sentences or self.meta.get("sentences") or "off"
        if sentences not in SENTENCE_MODES:
            raise GuardError(f"sentences must be one of {', '.join(SENTENCE_MODES)}, got {sentences!r}")
        return replace(settings, window=window, overlap=overlap, sentences=sentences)

    # -- identity ---------------------------------------------------------------------------------------------
    def _special_tokens(self) -> tuple[list[int], list[int]]:
        probe = "hello"
        bare = self.tokenizer.encode(probe, add_special_tokens=False).ids
        full = self.tokenizer.encode(probe, add_special_tokens=True).ids
        for i in range(len(full) - len(bare) + 1):
            if full[i : i + len(bare)] == bare:
                return full[:i], full[i + len(bare) :]
        raise GuardError(f"{self.model_dir}: cannot locate the special tokens of the tokenizer")

    def _fingerprint(self) -> str:
        s = self.settings
        payload = {
            "model": self.model_hash, "backend": self.backend, "precision": self.precision,
            "policy": {k: v for k, v in self.policy.to_dict().items() if k != "calibration"},
            "window": s.window, "overlap": s.overlap, "normalize": s.normalize and norm.VERSION,
            "sentences": s.sentences,
            "categories": self.categories.fingerprint() if self.categories else None,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def threshold(self) -> float:
        """The global decision threshold (languages and clusters may override it)."""
        return self.policy.threshold

    @property
    def train_languages(self) -> list[str] | None:
        return self.meta.get("train_languages")

    @property
    def train_sources(self) -> list[str] | None:
        return self.meta.get("train_sources")

    @property
    def windows_per_1k_tokens(self) -> float:
        """Windows scored per 1,000 tokens of a long input."""
        return round(1000 / (self.settings.window - self.settings.overlap), 2)

    def with_policy(self, policy: ThresholdPolicy) -> Guard:
        """The same guard (sharing the loaded model) under another threshold policy."""
        return self._copy(policy=policy)

    def with_settings(self, **changes: Any) -> Guard:
        """The same guard (sharing the loaded model) with other :class:`GuardSettings`; changing the window
        without an overlap resets the overlap to half the window."""
        if "window" in changes and "overlap" not in changes:
            changes["overlap"] = None
        try:
            settings = replace(self.settings, **changes)
        except TypeError as exc:
            raise GuardError(f"Unknown guard setting: {exc}") from None
        return self._copy(settings=self._resolve(settings))

    def _copy(self, **attrs: Any) -> Guard:
        other = object.__new__(Guard)
        other.__dict__.update(self.__dict__, **attrs)
        other.fingerprint = other._fingerprint()
        return other

    def describe(self) -> dict[str, Any]:
        """What this guard is: model, backend, policy, settings, cost of long inputs."""
        return {"name": self.name, "model_dir": str(self.model_dir), "model_hash": self.model_hash,
                "backend": self.backend, "precision": self.precision, "fingerprint": self.fingerprint,
                "policy": self.policy.to_dict(), "settings": asdict(self.settings),
                "windows_per_1k_tokens": self.windows_per_1k_tokens}

    def __repr__(self) -> str:
        return f"Guard({self.name!r}, threshold={self.threshold:.3f}, window={self.settings.window})"

    # -- preparation ------------------------------------------------------------------------------------------
    def _spans(self, n: int) -> list[tuple[int, int]]:
        w, stride = self.settings.window, self.settings.window - self.settings.overlap
        if n <= w:
            return [(0, n)]
        starts = list(range(0, n - w + 1, stride))
        if starts[-1] + w < n:
            starts.append(n - w)
        return [(s, s + w) for s in starts]

    def _too_large(self, i: int, what: str, size: int, limit: int) -> InputTooLargeError:
        return InputTooLargeError(f"input {i} has {size:,} {what}, over the limit of {limit:,} (max_{what}); "
                                  "split it, or load the guard with a higher limit")

    def _prepare(self, texts: Sequence[str], strict: bool) -> list[_Prepared | None]:
        s = self.settings
        out: list[_Prepared | None] = [None] * len(texts)
        todo: list[int] = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise GuardError(f"input {i} is {type(text).__name__}, not str")
            if len(text) > s.max_chars:
                if strict:
                    raise self._too_large(i, "chars", len(text), s.max_chars)
                continue
            todo.append(i)
        normalized = [norm.normalize(texts[i]) if s.normalize else norm.encodable(texts[i]) for i in todo]
        encodings = self.tokenizer.encode_batch([n.text for n in normalized], add_special_tokens=False)
        for i, n, enc in zip(todo, normalized, encodings):
            if len(enc.ids) > s.max_tokens:
                if strict:
                    raise self._too_large(i, "tokens", len(enc.ids), s.max_tokens)
                continue
            windows = self._spans(len(enc.ids))
            if s.sentences == "only" and len(windows) > 1:  # every span is a sentence (or a window of one)
                out[i] = _Prepared(texts[i], n, enc.ids, enc.offsets, self._sentence_windows(n.text, enc.offsets), 0)
            else:
                out[i] = _Prepared(texts[i], n, enc.ids, enc.offsets, windows + self._sentences(n.text, enc.offsets,
                                                                                               windows), len(windows))
            if s.normalize:  # encoded payloads (base64, hex, ROT13, URL) are scored decoded too
                decode.add_payloads(out[i], self.tokenizer, self._spans)
        return out

    def _sentence_windows(self, text: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Token spans of the sentences of a long text, a sentence longer than a window in windows; with the
        tokens between sentences (if any) they cover every token."""
        out: list[tuple[int, int]] = []
        for a, b in segments.token_spans(segments.sentence_spans(text), offsets):
            out.extend((a + x, a + y) for x, y in self._spans(b - a))
        return out

    def _sentences(self, text: str, offsets: list[tuple[int, int]],
                   windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Token spans of the sentences to score on their own besides ``windows`` (see ``sentences``)."""
        mode = self.settings.sentences
        if mode in ("off", "only") or (mode == "long" and len(windows) == 1):
            return []
        seen = set(windows)
        out = []
        for a, b in segments.token_spans(segments.sentence_spans(text), offsets):
            if b - a <= self.settings.window and (a, b) not in seen:  # a longer sentence lies in the windows
                seen.add((a, b))
                out.append((a, b))
        return out

    def _window_margins(self, prepared: Sequence[_Prepared]) -> list[np.ndarray]:
        """The logit margin of every window of every text, windows batched across texts by length."""
        return self._window_outputs(prepared)[0]

    def _window_outputs(self, prepared: Sequence[_Prepared]) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Margins per text, and the pooled features of every span per text when the engine returns them
        (``(batch, 2 + hidden)``: a guard with categories, :mod:`crestguard.guard.categories`)."""
        seqs = [self._head + p.ids[a:b] + self._tail for p in prepared for a, b in p.spans]
        margins = np.zeros(len(seqs), dtype=np.float64)
        feats: np.ndarray | None = None
        order = sorted(range(len(seqs)), key=lambda k: len(seqs[k]), reverse=True)
        s = self.settings
        i = 0
        while i < len(order):
            longest = len(seqs[order[i]])
            size = max(1, min(s.batch_size, s.max_batch_tokens // longest))
            idx = order[i : i + size]
            ids = np.full((len(idx), longest), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), longest), dtype=np.int64)
            for row, k in enumerate(idx):
                ids[row, : len(seqs[k])] = seqs[k]
                mask[row, : len(seqs[k])] = 1
            logits = self.engine.logits(ids, mask).astype(np.float64)
            margins[idx] = logits[:, 1] - logits[:, 0]
            if logits.shape[1] > 2:
                if feats is None:
                    feats = np.zeros((len(seqs), logits.shape[1] - 2), dtype=np.float32)
                feats[idx] = logits[:, 2:]
            i += size
        out, per_text, pos = [], [], 0
        for p in prepared:
            out.append(margins[pos : pos + len(p.spans)])
            per_text.append(feats[pos : pos + len(p.spans)] if feats is not None else None)
            pos += len(p.spans)
        return out, (per_text if feats is not None else None)

    # -- public -----------------------------------------------------------------------------------------------
    def check(self, text: str) -> Verdict:
        """Judge one text. See :meth:`check_batch`."""
        return self.check_batch([text])[0]

    def check_batch(self, texts: Sequence[str]) -> list[Verdict]:
        """Judge ``texts``; one :class:`~crestguard.guard.verdict.Verdict` per text, in order.

        Raises:
            InputTooLargeError: a text is over ``max_chars`` or ``max_tokens`` (the message gives its index).
            GuardError: a text is not a string.
        """
        if isinstance(texts, str):
            raise GuardError("check_batch takes a list of texts; use check(text) for one text")
        prepared = self._prepare(texts, strict=True)
        margins, feats = self._window_outputs(prepared)
        return [self._verdict(p, m, f) for p, m, f in zip(prepared, margins, feats or [None] * len(prepared))]

    def _verdict(self, p: _Prepared, margins: np.ndarray, feats: np.ndarray | None = None) -> Verdict:
        scores = sigmoid(margins / self.policy.temperature)
        best = int(np.argmax(margins))
        windows = tuple(
            Window(index=k, start_char=p.offsets[a][0] if b > a else 0, end_char=p.offsets[b - 1][1] if b > a else 0,
                   tokens=b - a + len(self._head) + len(self._tail), score=float(scores[k]),
                   kind="window" if k < p.n_windows else
                   "decoded" if k >= len(p.spans) - p.n_decoded else "sentence")
            for k, (a, b) in enumerate(p.spans)
        )
        language = confidence = cluster = None
        code_mixed = False
        if self.settings.langid:
            from crestguard.guard.langid import detect

            guess = detect(p.normalized.text)
            language, confidence, cluster, code_mixed = guess.language, guess.confidence, guess.cluster, \
                guess.code_mixed
        threshold = self.policy.for_language(language, cluster, confidence)
        score = float(scores[best])
        unsafe, categories, flagged = score >= threshold, {}, ()
        if self.categories is not None and feats is not None:  # rules may allow or block by category
            categories, flagged, unsafe = self.categories.judge(feats, unsafe)
        return Verdict(unsafe=unsafe, score=score, threshold=threshold, language=language,
                       language_confidence=confidence, cluster=cluster, code_mixed=code_mixed, windows=windows,
                       decisive_window=best, normalized=dict(p.normalized.changes), text=p.text,
                       categories=categories, flagged_categories=flagged)

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        """The riskiest window's logit margin per text (the input of temperature and threshold calibration).

        Raises:
            InputTooLargeError: a text is over the size limits.
        """
        prepared = self._prepare(texts, strict=True)
        return np.array([float(m.max()) for m in self._window_margins(prepared)])

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Unsafe scores in [0, 1], one per text; ``NaN`` for a text over the size limits (the evaluation
        harness counts those). The classifier protocol of :mod:`crestguard.evaluation.classifiers`."""
        prepared = self._prepare(texts, strict=False)
        ok = [p for p in prepared if p is not None]
        best = iter(float(m.max()) for m in self._window_margins(ok))
        return np.array([float(sigmoid(next(best) / self.policy.temperature)) if p is not None else np.nan
                         for p in prepared])
