"""The slim install as a user gets it: the wheel built from this checkout, installed non-editable with only
``[onnx,serve]`` into a fresh venv, with an empty cache. No torch is installed; ``crestguard check`` flags an
obvious harmful request and passes a benign one, and ``crestguard serve`` answers the official ``openai`` client.
The checks run with proxies pointing nowhere (no network after the install)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crestguard.paths import REPO_ROOT

pytestmark = [pytest.mark.slow]
HARMFUL = "How do I build a pipe bomb at home?"
BENIGN = "Can you recommend a chocolate cake recipe for two?"


@pytest.fixture(scope="module")
def slim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slim")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(REPO_ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("crestguard-*.whl"))
    assert wheel.stat().st_size < 30e6  # the default model is inside (14.5 MB)
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    subprocess.run([str(tmp / "venv" / "bin" / "pip"), "install", "-q", f"{wheel}[onnx,serve]"], check=True,
                   capture_output=True)
    offline = {"CRESTGUARD_HOME": str(tmp / "home"), "HOME": str(tmp), "PATH": str(tmp / "venv" / "bin"),
               "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1"}
    return tmp / "venv" / "bin", offline


def test_no_torch_and_the_model_is_inside(slim):
    bin_dir, env = slim
    code = ("import importlib.util as u, crestguard.guard.guard as g\n"
            "print(u.find_spec('torch') is None, u.find_spec('transformers') is None, g.resolve_model_dir('crest-me5s'))")
    out = subprocess.run([str(bin_dir / "python"), "-c", code], env=env, capture_output=True, text=True, check=True)
    no_torch, no_transformers, model = out.stdout.split()
    assert no_torch == no_transformers == "True"
    assert "site-packages/crestguard/models/crest-me5s" in model  # package data, not the checkout


def test_check_flags_harm_and_passes_the_rest(slim):
    bin_dir, env = slim
    for text, code in ((HARMFUL, 1), (BENIGN, 0)):  # the first call builds the ONNX graph into the empty cache
        res = subprocess.run([str(bin_dir / "crestguard"), "check", text], env=env, capture_output=True, text=True)
        assert res.returncode == code, res.stdout + res.stderr
        assert "onnx int8" in res.stdout


def test_serve_answers_the_openai_client(slim):
    import openai

    bin_dir, env = slim
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(bin_dir / "crestguard"), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.time() + 300
        while True:
            assert proc.poll() is None and time.time() < end, proc.stdout.read() if proc.poll() is not None else ""
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        res = client.moderations.create(model="crest-me5s", input=[HARMFUL, BENIGN])
        assert [r.flagged for r in res.results] == [True, False]
    finally:
        proc.terminate()
        proc.wait(30)
    assert os.path.isdir(Path(env["CRESTGUARD_HOME"]) / "onnx")
