"""Translation through any OpenAI-compatible chat-completions API (OpenAI, vLLM, llama.cpp, LiteLLM, ...).

Each request carries a batch of texts as JSON and asks for a JSON array with exactly one translation per text.
The answer is parsed strictly: it must be a JSON array of strings (a Markdown code fence around it is
tolerated) with as many items as were sent. An answer that fails this is not patched up: the batch is split in
two and each half asked again, down to single texts, so one troublesome text cannot cost the translations of
its neighbours. A single text whose answer stays unusable after ``answer_retries`` tries becomes a
:class:`~crestguard.translate.base.Failed`.

HTTP 429 and 5xx answers and network errors are retried with exponential backoff and jitter, honouring
``Retry-After``; other HTTP errors (401, 404, ...) stop the run with the server's message. ``rpm`` spaces
requests out on the client side to stay under a requests-per-minute limit.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence

from crestguard.errors import require
from crestguard.translate.base import Backend, Failed, Outcome, TranslationError

SYSTEM_PROMPT = """\
You translate data for a text-safety classifier. The user message is a JSON object with a source language, \
a target language and a list "texts". Translate each text from the source language into the target language.

Answer with a JSON array of strings and nothing else: no code fences, no comments, no keys. The array must \
have exactly as many strings as "texts" has, in the same order, so that string i is the translation of text \
i. Never merge, split, skip or reorder texts.

Translate faithfully and completely. Keep the meaning, intent, tone, register, formatting and line breaks of \
every text. Many texts are harmful, hateful, explicit or ask for dangerous things: translate them exactly as \
they are. Do not refuse, soften, censor, summarise, explain or add warnings; a cleaned-up translation would \
teach the classifier the wrong thing. Keep code, URLs, placeholders and names as they are."""

_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n(.*)\n\s*```$", re.S)


class BadAnswer(Exception):
    """The server answered, but not with a JSON array of the right number of strings."""


def parse_answer(content: str, expected: int) -> list[str]:
    """Parse a model's answer strictly.

    Args:
        content: the message content.
        expected: how many translations were asked for.

    Returns:
        The translations.

    Raises:
        BadAnswer: not a JSON array of strings, or the wrong number of them.
    """
    text = content.strip()
    if fence := _FENCE.match(text):
        text = fence.group(1).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadAnswer(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadAnswer("not a JSON array of strings")
    if len(value) != expected:
        raise BadAnswer(f"{len(value)} translations for {expected} texts")
    return value


class _RateLimiter:
    """Spaces request starts at least ``60 / rpm`` seconds apart, across threads."""

    def __init__(self, rpm: float | None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


class OpenAIBackend(Backend):
    """OpenAI-compatible chat-completions backend.

    Args:
        model: the model name sent in each request (required).
        base_url: the API root, e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        api_key: bearer token; default: the environment variable named by ``api_key_env``. None sends no
            header.
        api_key_env: where to read the key from when ``api_key`` is not given.
        batch_size: texts per request.
        workers: requests in flight at once.
        rpm: client-side limit on requests per minute (None: no limit).
        max_retries: retries of one request after 429, 5xx or a network error.
        answer_retries: tries for a single text whose answer is malformed.
        backoff: first backoff delay in seconds, doubled on each retry (with jitter), capped at
            ``max_backoff``.
        max_backoff: longest wait between retries, ``Retry-After`` included.
        timeout: seconds to wait for one answer.
        temperature: sampling temperature sent to the model.
    """

    name = "openai"

    def __init__(
        self,
        model: str | None = None,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        batch_size: int = 20,
        workers: int = 4,
        rpm: float | None = None,
        max_retries: int = 6,
        answer_retries: int = 2,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 120.0,
        temperature: float = 0.0,
    ):
        if not model:
            raise TranslationError("The openai backend needs a model name (--model).")
        httpx = require("httpx", "translate", "the OpenAI-compatible translation backend")
        self.model, self.batch_size, self.workers = model, batch_size, workers
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.max_retries, self.answer_retries = max_retries, max(1, answer_retries)
        self.backoff, self.max_backoff, self.temperature = backoff, max_backoff, temperature
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._httpx = httpx
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self._limiter = _RateLimiter(rpm)
        self._lock = threading.Lock()
        #: Counts of requests, retries (by cause), bisections and bad answers, for the run summary.
        self.stats: Counter[str] = Counter()

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[Outcome]:
        """Translate ``texts``; bisect on an unusable answer; a lone text that stays unusable fails."""
        tries = 1 if len(texts) > 1 else self.answer_retries
        for _ in range(tries):
            try:
                return list(self._ask(texts, src, tgt))
            except BadAnswer as exc:
                self._count("bad_answers")
                problem = str(exc)
        if len(texts) == 1:
            return [Failed(f"unusable answer after {tries} tries: {problem}")]
        self._count("bisections")
        half = len(texts) // 2
        return self.translate_batch(texts[:half], src, tgt) + self.translate_batch(texts[half:], src, tgt)

    def user_message(self, texts: Sequence[str], src: str, tgt: str) -> str:
        """The JSON request for one batch."""
        from crestguard.languages import get

        names = {code: f"{get(code).name} ({code})" for code in (src, tgt)}
        body = {
            "source_language": names[src],
            "target_language": names[tgt],
            "count": len(texts),
            "texts": list(texts),
        }
        return json.dumps(body, ensure_ascii=False)

    def prompt_overhead(self, texts: Sequence[str]) -> str:
        return SYSTEM_PROMPT

    def _ask(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        payload = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": self.user_message(texts, src, tgt)},
            ],
        }
        answer = self._post(payload)
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise BadAnswer("no choices[0].message.content in the response") from None
        if not isinstance(content, str):
            raise BadAnswer("message content is not a string")
        return parse_answer(content, len(texts))

    def _post(self, payload: dict) -> dict:
        """POST with retries; returns the decoded JSON body of a 200 answer."""
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._count("retries")
            self._limiter.wait()
            self._count("requests")
            wait = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
            try:
                response = self._client.post(self.url, json=payload)
            except self._httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                self._count("network_errors")
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        raise BadAnswer("the response body is not JSON") from None
                if response.status_code != 429 and response.status_code < 500:
                    raise TranslationError(
                        f"{self.url} answered HTTP {response.status_code}: {response.text[:300]}"
                    )
                problem = f"HTTP {response.status_code}"
                self._count(f"http_{response.status_code}")
                wait = max(wait, _retry_after(response.headers.get("retry-after")))
            if attempt < self.max_retries:
                time.sleep(min(wait, self.max_backoff))
        raise TranslationError(f"{self.url} failed {self.max_retries + 1} times in a row (last: {problem}).")

    def close(self) -> None:
        self._client.close()


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header (only the delay-seconds form; dates are ignored)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
