"""The optional LSTM engine for "write like them" (needs PyTorch; CI installs it and sets REQUIRE_TORCH=1)."""

import numpy as np
import pytest

from tests.support.data import require, voice_posts, words_of
from twitapp.style import lstm as neural
from twitapp.style import model as generate
from twitapp.style import sampling


@pytest.fixture
def torch():
    if not neural.available():
        require("torch", "PyTorch is not installed (pip install torch==2.13.0)")
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture
def few_epochs(monkeypatch):
    monkeypatch.setattr(neural, "MAX_EPOCHS", 4)
    monkeypatch.setattr(neural, "LEARNING_RATE", 1e-2)


def test_the_lstm_learns_stops_early_and_survives_storage(torch):
    posts = voice_posts("baker", 120)
    model, history = neural.LSTMModel.train(posts[:100], posts[100:], max_epochs=6)
    bits = history["held_out_bits"]
    assert bits[history["best_epoch"] - 1] <= min(bits) + 1e-4 and bits[-1] < bits[0]  # kept: the best, to 1e-4
    assert model.bits_per_char(posts[100:]) == pytest.approx(min(bits), abs=1e-3)  # the best epoch was kept
    restored = neural.LSTMModel.from_bytes(model.to_bytes())
    assert restored.bits_per_char(posts[100:]) == pytest.approx(model.bits_per_char(posts[100:]), abs=1e-6)
    drawn, _ = sampling.draw(restored, posts, count=3, temperature=0.8, opening="rye", seed=1)
    assert all(text.startswith("rye") and len(text) <= sampling.MAX_POST_CHARS for text in drawn)


def test_an_account_can_be_written_like_with_the_lstm(app, client, runner, writers, torch, few_epochs):
    result = runner.invoke(args=["generate", "train", "coder", "--engine", "lstm"])
    assert result.exit_code == 0, result.output
    assert "Trained a style model of @coder on 80 posts: an LSTM" in result.output
    body = client.post("/api/users/coder/generate", json={"count": 2}).get_json()
    assert body["model"]["params"]["engine"] == "lstm" and 1 <= len(body["posts"]) <= 2
    assert body["model"]["metrics"]["epochs"] <= 4  # the fixture's MAX_EPOCHS counts
    page = client.get("/user/coder").get_data(as_text=True)
    assert "(an LSTM," in page and '<option value="lstm">' in page


def test_without_pytorch_the_lstm_is_refused_with_the_reason(app, client, writers, monkeypatch):
    monkeypatch.setattr(neural, "available", lambda: False)
    response = client.post("/api/users/baker/style", json={"engine": "lstm"})
    assert response.status_code == 400 and "needs PyTorch" in response.get_json()["message"]
    assert '<option value="lstm">' not in client.get("/user/baker").get_data(as_text=True)
    with pytest.raises(generate.StyleError, match="needs PyTorch"):
        generate.fit(voice_posts("baker", 40), engine="lstm")
    assert client.post("/api/users/baker/style", json={"engine": "gpt"}).status_code == 400
    assert np.isfinite(generate.fit(voice_posts("baker", 40))[1]["held_out_bits_per_char"])


def test_the_lstm_writes_only_words_of_the_posts_it_learned_from(torch):
    posts = voice_posts("coder", 120)
    model, _ = neural.LSTMModel.train(posts[:100], posts[100:], max_epochs=2)  # barely trained: it spells badly
    known = set(words_of(posts[:100]))
    free, _ = sampling.draw(model, sampling.CopyIndex(posts), count=10, temperature=1.2, seed=0)
    assert len([w for w in words_of(free) if w not in known]) >= 10
    drafts, _ = sampling.draw(model, posts[:100], count=10, temperature=1.2, opening="Zorblax", seed=0)
    assert len(drafts) == 10 and all(d.startswith("Zorblax") and len(d) <= sampling.MAX_POST_CHARS for d in drafts)
    assert set(words_of(drafts)) <= known | {"zorblax"} and len(words_of(drafts)) > 30
