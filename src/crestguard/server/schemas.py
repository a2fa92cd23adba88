"""Request and response bodies of the server's endpoints, and the translation of verdicts into them.

Three dialects, one verdict:

- OpenAI ``POST /v1/moderations``: the official schema (13 categories, ``flagged``), plus a ``crestguard`` block
  per result with our unsafe score, threshold, language and cluster.
- ``POST /v1/classify``: the native :class:`~crestguard.guard.verdict.Verdict` as JSON, for a batch of texts.
- LiteLLM's Generic Guardrail API ``POST /beta/litellm_basic_guardrail_api``: ``BLOCKED`` or ``NONE``.

Responses are built as plain dicts (serialized once, without a second validation pass); the pydantic response
models below describe them for the OpenAPI docs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from crestguard.taxonomy import load_taxonomy

#: OpenAI's 13 moderation categories, in the order of its API reference (from the taxonomy file). Their scores
#: come from the guard's category scores through the taxonomy's mapping (max over ``any``, min over ``all``); a
#: guard without a category model answers every category ``false`` with score 0.0. ``flagged`` is always the
#: guard's verdict (the binary score, after per-category rules).
TAXONOMY = load_taxonomy()
CATEGORIES = TAXONOMY.openai_keys


def _category_model(name: str, value_type: Any, doc: str) -> type[BaseModel]:
    """A model with the 13 category keys (``harassment/threatening`` -> field ``harassment_threatening``)."""
    fields = {key.replace("/", "_").replace("-", "_"): (value_type, Field(alias=key)) for key in CATEGORIES}
    return create_model(name, __doc__=doc, __config__=ConfigDict(populate_by_name=True), **fields)


Categories = _category_model("Categories", bool, "Per-category flags: a mapped category over its threshold "
                                                  "(all false for a guard without a category model).")
CategoryScores = _category_model("CategoryScores", float, "Per-category scores from the category head through the "
                                                          "taxonomy's mapping (0.0 without a category model).")
CategoryAppliedInputTypes = _category_model(
    "CategoryAppliedInputTypes", list[Literal["text", "image"]],
    "Input types each category applies to: always ['text'] (images are not scored).")


class TextPart(BaseModel):
    """A text part of a multi-modal moderation input."""

    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    url: str


class ImagePart(BaseModel):
    """An image part. CREST Guard scores text only: images are counted in the result, never scored."""

    type: Literal["image_url"]
    image_url: ImageURL


def _input_shape_error(value: Any) -> str | None:
    """Why ``value`` is not a valid moderation ``input`` (``None`` when it is)."""
    if isinstance(value, str):
        return None
    if not isinstance(value, list):
        return f"must be a string or a list, not {'null' if value is None else type(value).__name__}"
    if not value:
        return "must not be an empty list"
    if all(isinstance(v, str) for v in value):
        return None
    for i, part in enumerate(value):
        if not isinstance(part, dict):
            return (f"item {i} is a {type(part).__name__}: a list must hold only strings or only "
                    "{'type': 'text' | 'image_url', ...} objects")
        kind = part.get("type")
        if kind == "text" and not isinstance(part.get("text"), str):
            return f"item {i} has type 'text' but no string 'text' field"
        if kind == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
            return f"item {i} has type 'image_url' but no 'image_url': {{'url': str}} field"
        if kind not in ("text", "image_url"):
            return f"item {i} has type {kind!r}; expected 'text' or 'image_url'"
    return None


class ModerationRequest(BaseModel):
    """OpenAI's moderation request. ``model`` is accepted for compatibility; the server answers with its own model.

    ``input`` is one string (one result), a list of strings (one result each, same order), or a list of
    multi-modal parts (one result for the whole list, as OpenAI does: its text parts are joined with newlines;
    image parts are counted, not scored, and a list of only images is refused).
    """

    model_config = ConfigDict(extra="allow")

    input: str | list[str] | list[Annotated[TextPart | ImagePart, Field(discriminator="type")]]
    model: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _check_shape(cls, value: Any) -> Any:
        problem = _input_shape_error(value)
        if problem:
            raise ValueError(f"'input' {problem}")
        return value

    @field_validator("input")
    @classmethod
    def _need_text(cls, value: Any) -> Any:
        if isinstance(value, list) and not any(isinstance(v, (str, TextPart)) for v in value):
            raise ValueError("'input' has only image parts: CREST Guard scores text only, add a text part")
        return value

    def items(self) -> list[tuple[str, int]]:
        """The inputs to score: ``(text, images_not_scored)`` per result, in order."""
        if isinstance(self.input, str):
            return [(self.input, 0)]
        if all(isinstance(v, str) for v in self.input):
            return [(v, 0) for v in self.input]
        texts = [p.text for p in self.input if isinstance(p, TextPart)]
        return [("\n".join(texts), len(self.input) - len(texts))]


class CrestGuardResult(BaseModel):
    """CREST Guard's own view of one moderation input (the ``crestguard`` block)."""

    unsafe: bool
    unsafe_score: float | None = Field(description="Calibrated probability of unsafe (null when failed closed).")
    threshold: float | None
    language: str | None = None
    language_confidence: float | None = None
    cluster: int | None = None
    code_mixed: bool = False
    windows: int = Field(0, description="Windows scored (more than 1 for long inputs).")
    images_not_scored: int = Field(0, description="Image parts in the input; CREST Guard scores text only.")
    fail_closed: bool = False
    reason: str | None = Field(None, description="Why the input was flagged without a score (fail-closed mode).")
    categories: dict[str, float] = Field(default_factory=dict, description="CREST Guard's own category scores "
                                         "(MLCommons hazards, jailbreak, prompt_injection, custom categories).")
    flagged_categories: list[str] = Field(default_factory=list, description="Categories over their threshold "
                                          "(the policy's ignored ones left out).")


class ModerationResult(BaseModel):
    flagged: bool
    categories: Categories
    category_scores: CategoryScores
    category_applied_input_types: CategoryAppliedInputTypes
    crestguard: CrestGuardResult


class ModerationResponse(BaseModel):
    id: str = Field(description="'modr-' followed by 32 hex digits.")
    model: str
    results: list[ModerationResult]


class ClassifyRequest(BaseModel):
    """A batch of texts for the native endpoint."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, description="Texts to judge, one verdict each, same order.")
    include_text: bool = Field(False, description="Echo each original text in its verdict.")


class ClassifyResponse(BaseModel):
    model: str
    results: list[dict[str, Any]] = Field(
        description="One Verdict.to_dict() per text (unsafe, score, threshold, language, cluster, windows, ...). "
                    "In fail-closed mode a failed text has unsafe=true, score=null and an 'error'.")


class LiteLLMGuardrailRequest(BaseModel):
    """LiteLLM's Generic Guardrail API request. Only ``texts`` is scored; images are counted, never scored."""

    model_config = ConfigDict(extra="allow")

    texts: list[str] = Field(default_factory=list)
    images: list[Any] | None = None
    tools: list[Any] | None = None
    request_data: dict[str, Any] | None = None
    input_type: Literal["request", "response"] = "request"
    litellm_call_id: str | None = None
    additional_provider_specific_params: dict[str, Any] | None = None


class LiteLLMGuardrailResponse(BaseModel):
    action: Literal["BLOCKED", "NONE"]
    blocked_reason: str | None = None


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's shape (the ``openai`` client raises a typed exception carrying the message)."""

    error: ErrorBody


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


_ALL_FALSE = dict.fromkeys(CATEGORIES, False)
_ALL_ZERO = dict.fromkeys(CATEGORIES, 0.0)


def moderation_result(verdict: Any, images: int = 0) -> dict[str, Any]:
    """One OpenAI moderation result from a :class:`Verdict` (or a fail-closed :class:`Failure`)."""
    failed = isinstance(verdict, Failure)
    block = {
        "unsafe": True if failed else bool(verdict.unsafe),
        "unsafe_score": None if failed else float(verdict.score),
        "threshold": None if failed else float(verdict.threshold),
        "language": None if failed else verdict.language,
        "language_confidence": None if failed else verdict.language_confidence,
        "cluster": None if failed else verdict.cluster,
        "code_mixed": False if failed else bool(verdict.code_mixed),
        "windows": 0 if failed else len(verdict.windows),
        "images_not_scored": images,
        "fail_closed": failed,
        "reason": verdict.reason if failed else None,
        "categories": {} if failed else dict(verdict.categories),
        "flagged_categories": [] if failed else list(verdict.flagged_categories),
    }
    scored = bool(block["categories"])
    return {
        "flagged": block["unsafe"],
        "categories": TAXONOMY.openai_categories(block["flagged_categories"]) if scored else dict(_ALL_FALSE),
        "category_scores": TAXONOMY.openai_scores(block["categories"]) if scored else dict(_ALL_ZERO),
        "category_applied_input_types": {key: ["text"] for key in CATEGORIES},
        "crestguard": block,
    }


def classify_result(verdict: Any, include_text: bool) -> dict[str, Any]:
    """The native verdict dict, or the fail-closed stand-in."""
    if isinstance(verdict, Failure):
        return {"unsafe": True, "label": "unsafe", "score": None, "threshold": None, "fail_closed": True,
                "error": verdict.reason}
    return verdict.to_dict(include_text=include_text)


def litellm_result(verdicts: list[Any], images: int) -> dict[str, Any]:
    """``BLOCKED`` when any text is unsafe (or failed closed); the reason names each such text."""
    reasons = []
    for i, v in enumerate(verdicts):
        if isinstance(v, Failure):
            reasons.append(f"text {i}: {v.reason}")
        elif v.unsafe:
            lang = f", language {v.language}" if v.language else ""
            cats = ", ".join(f"{c} {v.categories[c]:.2f}" for c in v.flagged_categories)
            cats = f", categories: {cats}" if cats else ""
            rel = ">=" if v.score >= v.threshold else "<"  # below: a category whose action is flag decided
            reasons.append(f"text {i}: unsafe score {v.score:.3f} {rel} threshold {v.threshold:.3f}{cats}{lang}")
    note = f" ({images} image(s) not scored: CREST Guard scores text only)" if images else ""
    if reasons:
        return {"action": "BLOCKED", "blocked_reason": "CREST Guard flagged " + "; ".join(reasons) + note}
    return {"action": "NONE"}


class Failure:
    """Stand-in for a verdict when the guard failed and the server runs fail-closed."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason
