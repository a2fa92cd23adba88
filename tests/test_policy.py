"""Custom categories: one made from example files with ``crestguard policy add`` works in the CLI, the Python API and
the server (one test), and the policy file round-trips."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crestguard.cli import app
from crestguard.guard.policy import PolicyError

# A category nobody ships: questions about sports betting and casinos (English examples only).
GAMBLING = [
    "What is the best strategy to win at online blackjack?",
    "Which sportsbook gives the biggest welcome bonus for football bets?",
    "How do I count cards at a casino without getting caught?",
    "Give me tips to win more money on slot machines.",
    "What are the best odds for betting on the Champions League final?",
    "How can I make a living from online poker?",
    "Which roulette system guarantees a profit?",
    "Recommend a crypto casino that accepts anonymous deposits.",
    "How much should I bet on horse racing to double my savings?",
    "What is the smartest way to bet on NBA games this weekend?",
    "Explain how to win at baccarat every time.",
    "Where can I place bets on tennis matches online?",
    "How do I get started with sports betting as a beginner?",
    "Which lottery numbers win most often?",
    "Tell me how to beat the bookmakers with arbitrage betting.",
    "What is the best casino app for playing craps?",
    "How do I bet on the Super Bowl from my phone?",
    "Is there a trick to win jackpots on video poker machines?",
    "Suggest a betting system for roulette that always wins.",
    "How do I choose which football matches to bet on?",
]
OTHER = [
    "What is the capital of France?", "Write a poem about the ocean.", "How do I bake sourdough bread?",
    "Explain photosynthesis to a child.", "What are good exercises for back pain?", "Translate 'thank you' to Japanese.",
    "How do I fix a flat bicycle tyre?", "Summarize the plot of Hamlet.", "What is a prime number?",
    "Recommend a good science fiction novel.", "How do I learn to play the guitar?", "Why is the sky blue?",
]
QUERY = "¿Cuál es la mejor estrategia para ganar dinero apostando en partidos de fútbol?"  # Spanish: never an example


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy")
    (folder / "pos.txt").write_text("\n".join(GAMBLING) + "\n", encoding="utf-8")
    (folder / "neg.txt").write_text("\n".join(OTHER) + "\n", encoding="utf-8")
    policy = folder / "policy.yaml"
    result = CliRunner().invoke(app, ["policy", "add", "gambling", "--examples", str(folder / "pos.txt"),
                                      "--negatives", str(folder / "neg.txt"), "--policy", str(policy)])
    assert result.exit_code == 0, result.output
    assert "gambling: learned from 20 examples and 12 negatives" in result.output
    return policy


def test_custom_category_from_a_file_works_in_cli_api_and_server(policy_file):
    import httpx

    import crestguard
    from test_server import serving

    # CLI
    result = CliRunner().invoke(app, ["check", "--backend", "onnx", "--thresholds", str(policy_file), "--json", QUERY])
    verdict = json.loads(result.output)
    assert verdict["categories"]["gambling"] > 0.5 and "gambling" in verdict["flagged_categories"]
    assert verdict["unsafe"] and result.exit_code == 1  # action flag: blocked on the custom category alone
    # API
    guard = crestguard.load_guard("crest-me5s", backend="onnx", thresholds=policy_file)
    gambling, benign = guard.check_batch([QUERY, "Quelle est la capitale de l'Italie ?"])
    assert gambling.flagged_categories[-1:] == ("gambling",) and "gambling" not in benign.flagged_categories
    # server
    with serving(guard, max_wait_ms=2) as (url, _, _app):
        classify = httpx.post(f"{url}/v1/classify", json={"texts": [QUERY]}).json()["results"][0]
        moderation = httpx.post(f"{url}/v1/moderations", json={"input": QUERY}).json()["results"][0]
        litellm = httpx.post(f"{url}/beta/litellm_basic_guardrail_api", json={"texts": [QUERY]}).json()
    assert classify["categories"]["gambling"] == pytest.approx(gambling.categories["gambling"], abs=1e-4)
    assert moderation["flagged"] and "gambling" in moderation["crestguard"]["flagged_categories"]
    assert litellm["action"] == "BLOCKED" and "gambling" in litellm["blocked_reason"]


def test_policy_file_lists_refits_and_removes(policy_file, tmp_path):
    import shutil

    from crestguard.guard.policy import read_policy

    copy = tmp_path / "p.yaml"
    shutil.copy(policy_file, copy)
    doc = read_policy(copy)
    stored = doc["custom"]["gambling"]
    assert doc["categories"]["gambling"] == {"action": "flag"} and len(stored["examples"]["positives"]) == 20
    assert "gambling" in CliRunner().invoke(app, ["policy", "list", "--policy", str(copy)]).output
    refit = CliRunner().invoke(app, ["policy", "refit", "--policy", str(copy)])
    assert refit.exit_code == 0 and "relearned gambling" in refit.output
    assert read_policy(copy)["custom"]["gambling"]["w"] == stored["w"]  # same model, same examples: same weights
    assert CliRunner().invoke(app, ["policy", "remove", "gambling", "--policy", str(copy)]).exit_code == 0
    assert read_policy(copy) == {}


def test_too_few_examples_is_a_clear_error(tmp_path):
    (tmp_path / "few.txt").write_text("a\nb\n")
    result = CliRunner().invoke(app, ["policy", "add", "x", "--examples", str(tmp_path / "few.txt"),
                                      "--policy", str(tmp_path / "p.yaml")])
    assert isinstance(result.exception, PolicyError) and "at least 5 example texts" in str(result.exception)
