"""The language-model backend against a real OpenAI-compatible server: `transformers serve`, started here on
tiny models the test builds (offline). A good answer is used; an order number or link the facts lack, a reply too
long for the platform, the wrong language, a slow or unreachable server all fall back to the template draft, and
the action says which wrote it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taiwa import pipeline
from taiwa.listeners.replay import ReplayListener
from taiwa.store import Store

from .conftest import T0, record, write_jsonl
from tests.support.waiting import pause

GOOD = "Hi there, thanks for telling us. We are looking into it now and will be back shortly."
BAD = "Please send your order number 4471920 to http://help.example right away."
LONG = " ".join(["We are so sorry about this and we really want to make it right for you today."] * 6)


def _serve_available() -> bool:
    try:
        from transformers.utils.import_utils import is_serve_available

        return is_serve_available() and shutil.which("transformers", path=str(Path(sys.executable).parent))
    except ImportError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not _serve_available():
        pytest.skip("transformers serve needs fastapi, openai and accelerate: pip install -e '.[dev]'")
    from .support.tiny_chat_model import build

    root = tmp_path_factory.mktemp("llm")
    paths = {name: str(build(root / name, text)) for name, text in (("good", GOOD), ("bad", BAD), ("long", LONG))}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(root / "serve.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "transformers"), "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    import requests

    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("transformers serve did not start: " + (root / "serve.log").read_text()[-2000:])
        pause(0.5)
    yield f"http://127.0.0.1:{port}/v1", paths
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def draft(tmp_path, cfg, model, *, endpoint, name, text="@kettlebird my grinder stopped working", lang="",
          timeout=60.0):
    cfg.sections["drafts"].update(backend="llm", endpoint=endpoint, model=name, timeout_seconds=timeout)
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", [record(1, text, lang=lang)]))])
    pipeline.classify(store, model)
    pipeline.triage(store, cfg, now=T0)
    [a] = store.inbox(kind="reply", limit=5)
    store.close()
    return a


def test_a_good_answer_is_the_draft_and_says_the_model_wrote_it(tmp_path, cfg, default_model, server):
    endpoint, models = server
    a = draft(tmp_path, cfg, default_model, endpoint=endpoint, name=models["good"])
    assert a["backend"] == "llm" and a["text"] == GOOD


@pytest.mark.parametrize("which, why", [("bad", "a link the facts do not contain"),
                                        ("long", "too long")])
def test_a_bad_or_long_answer_falls_back_to_the_template(tmp_path, cfg, default_model, server, which, why):
    endpoint, models = server
    a = draft(tmp_path, cfg, default_model, endpoint=endpoint, name=models[which])
    assert a["backend"].startswith("templates (llm: ") and why in a["backend"]
    assert a["text"].startswith("Hi @amy, we're sorry about this.")


def test_an_english_answer_to_a_japanese_post_falls_back(tmp_path, cfg, default_model, server):
    endpoint, models = server
    a = draft(tmp_path, cfg, default_model, endpoint=endpoint, name=models["good"],
              text="@kettlebird_jp グラインダーが動かなくなりました", lang="ja")
    assert a["backend"] == "templates (llm: not in Japanese)" and "申し訳" in a["text"]


def test_a_slow_or_unreachable_server_falls_back(tmp_path, cfg, default_model, server):
    endpoint, models = server
    slow = draft(tmp_path, cfg, default_model, endpoint=endpoint, name=models["good"], timeout=0.001)
    assert "no answer within" in slow["backend"] and slow["text"].startswith("Hi @amy")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    (tmp_path / "t.db").unlink(missing_ok=True)
    cfg.sections["taiwa"]["database"] = str(tmp_path / "other.db")
    down = draft(tmp_path, cfg, default_model, endpoint=f"http://127.0.0.1:{closed}/v1", name=models["good"])
    assert "unreachable" in down["backend"]


def test_the_prompt_carries_the_facts_and_the_checks_catch_invented_ones():
    from taiwa.responders.drafts import Draft
    from taiwa.responders.llm import Writer, check

    w = Writer("http://127.0.0.1:1/v1", "m", voice="warm", brand="Kettlebird Coffee")
    d = Draft("Hi @dan, sorry! Could you DM us a photo?", "complaint.en", "en", ask="topic product fault",
              recalled={"sentence": "We looked into your grinder last week."})
    msgs = w.prompt(d, post={"handle": "dan", "text": "grinder broke again"}, thread=[], topic=None, answer=None)
    text = "\n".join(m["content"] for m in msgs)
    assert "grinder broke again" in text and "We looked into your grinder" in text and "Kettlebird" in text
    assert check("Your refund of $40 is on its way", platform="x", lang="en", sources="grinder broke") \
        .startswith("a price")
    assert check("Refund of $40 is on its way", platform="x", lang="en", sources="I paid $40") == ""
    assert check("see www.kettlebird.example/help", platform="x", lang="en", sources="").startswith("a link")
    assert check("DM us your order number", platform="x", lang="en", sources="the app crashes").startswith(
        "an order number")
    assert check("DM us your order number", platform="x", lang="en", sources="DM us your order number?") == ""
