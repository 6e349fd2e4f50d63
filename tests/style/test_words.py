"""Write like them in real words: drafts hold no word that none of the posts its model learned from holds
(but those of a typed opening), the evaluation counts made-up words, and a model is shown beside chance."""

import re

import numpy as np
import pytest
import sqlalchemy as sa

from tests.support.data import generate_time, voice_posts, words_of
from twitapp import jobs
from twitapp.extensions import db
from twitapp.ingest.store import import_tweets
from twitapp.models import ModelVersion
from twitapp.sources.records import AccountRecord, PostRecord
from twitapp.style import judge, sampling, words
from twitapp.style import model as generate


@pytest.mark.parametrize("voice", ["baker", "commuter", "coder"])
def test_every_word_of_a_bold_draft_is_a_word_of_the_training_posts(voice):
    posts = voice_posts(voice, 60)
    model, _ = generate.fit(posts)
    known = set(words_of(posts))
    free, _ = sampling.draw(model, sampling.CopyIndex(posts), count=30, temperature=1.5, seed=2)
    assert len([w for w in words_of(free) if w not in known]) >= 20  # left alone, it makes words up
    drafts, _ = sampling.draw(model, posts, count=30, temperature=1.5, seed=2)
    assert len(drafts) == 30 and all(len(d) <= sampling.MAX_POST_CHARS for d in drafts)
    assert set(words_of(drafts)) <= known and len(words_of(drafts)) > 150


def test_a_typed_opening_is_kept_with_its_unknown_words_and_an_unfinished_word_is_finished_for_real():
    posts = voice_posts("baker", 60)
    model, _ = generate.fit(posts)
    known = set(words_of(posts))
    drafts, _ = sampling.draw(model, posts, count=10, temperature=1.5, opening="Zorblax baked flibbers", seed=1)
    assert len(drafts) == 10 and all(d.startswith("Zorblax baked flibbers") for d in drafts)
    assert set(words_of(drafts)) <= known | {"zorblax", "baked", "flibbers"}
    drafts, _ = sampling.draw(model, posts, count=10, temperature=1.5, opening="fresh sourd", seed=1)
    assert {words_of([d])[1] for d in drafts} == {"sourdough"}  # finished as a word the posts hold
    assert set(words_of(drafts)) <= known | {"sourd"}


def test_handles_hashtags_apostrophes_and_figures_are_words_and_any_case_will_do():
    lexicon = words.Lexicon(["don't miss @JoeBiden at the #transit forum", "it’s 2.3 km, up 41 from last year"])

    def allowed(text: str) -> bool:
        guard, ok = lexicon.guard("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '’@#.,!"), True
        for char in text:
            ok = ok and guard.allows(char)
            guard.push(char)
        return ok and guard.allows(None)

    for text in ["Don’t miss @joebiden!", "it's 41 km", "#transit, 2.3 up", "'don't'", "'it’s' 3.2", "@ # !"]:
        assert allowed(text), text
    for text in ["@joe", "@biden", "#forums", "transit", "don't't", "dont", "42", "2.34", "its", "year's"]:
        assert not allowed(text), text


def test_a_draft_led_anywhere_within_the_rule_splits_into_known_words_only():
    """Whatever the model's probabilities, a draft that keeps to what the rule allows holds known words."""
    posts = ["it's @Kite_club's day: 3 kites, #flyday!", "don’t ask. we'll see; o'clock at 10", "a b c 1 2 _x_"]
    lexicon, known = words.Lexicon(posts), set(words_of(posts))
    alphabet = "".join(sorted(set("".join(posts)) | set("zZ9")))
    rng = np.random.default_rng(0)
    for _ in range(300):
        guard, text = lexicon.guard(alphabet), []
        for _ in range(int(rng.integers(1, 40))):
            mask, _ = guard.allowed()
            assert list(mask) == [guard.allows(c) for c in alphabet]
            text.append(alphabet[int(rng.choice(np.flatnonzero(mask)))])
            guard.push(text[-1])
        if not guard.allows(None):
            text = text[: len(text) - guard.typed]  # a draft stopped short drops its unfinished word
        assert set(words_of(["".join(text)])) <= known, "".join(text)


def test_posts_written_for_an_account_hold_its_words_and_its_lent_posts_words_only(app, client):
    own = voice_posts("baker", 25, seed=1)
    lent = [f"{post} {'pretzels' if i % 2 else 'strudel'}" for i, post in enumerate(voice_posts("baker", 300, seed=2))]
    with app.app_context():
        import_tweets(
            AccountRecord(1, "cornerbakery", "Corner"),
            [PostRecord(1_000 + i, t, generate_time(i)) for i, t in enumerate(own)],
            source="archive",
        )
        import_tweets(
            AccountRecord(2, "bigbakery", "Big"),
            [PostRecord(5_000 + i, t, generate_time(i)) for i, t in enumerate(lent)],
            source="archive",
        )
        job = jobs.run_here("style-train", "cornerbakery")
        assert job.state == "done" and job.result["metrics"]["own_weight"] < 1.0
    known = set(words_of(own + lent))
    for opening in ["", "Zorblax says"]:
        body = client.post(
            "/api/users/cornerbakery/generate", json={"count": 10, "temperature": 1.6, "opening": opening}
        ).get_json()
        assert len(body["posts"]) == 10 and all(p.startswith(opening) for p in body["posts"])
        assert set(words_of(body["posts"])) <= known | set(words_of([opening]))


def invented_line(output: str) -> tuple[float, int]:
    found = re.search(r"invented words (\d+\.\d)% of their ([\d,]+) words are in no training post", output)
    assert found, output
    return float(found.group(1)), int(found.group(2).replace(",", ""))


def test_the_evaluation_counts_invented_words_and_sets_each_figure_beside_chance(app, runner, writers, monkeypatch):
    monkeypatch.setattr(judge, "DEFAULT_TEMPERATURE", 1.5)  # bold drafts, which make words up if let
    result = runner.invoke(args=["generate", "evaluate", "baker", "--count", "30"])
    assert result.exit_code == 0, result.output
    share, count = invented_line(result.output)
    assert share == 0.0 and count > 100
    assert re.search(
        r"held-out bits per character \d\.\d+ \(guessing each character at random: \d\.\d+\)\n", result.output
    )
    assert re.search(r"style fidelity \d+% \(attributed back among it and @\w+, @\w+; chance 33%\)", result.output)
    assert "No better than chance" not in result.output

    def without_the_rule(*args, words=None, **kwargs):
        return sampling.draw(*args, **kwargs)

    monkeypatch.setattr(judge, "draw", without_the_rule)
    monkeypatch.setattr(judge, "fidelity", lambda generated, own, others: 0.3)
    result = runner.invoke(args=["generate", "evaluate", "baker", "--count", "30"])
    share, count = invented_line(result.output)
    assert share >= 5.0 and count > 100  # the same figure, made-up words and all
    assert (
        "style fidelity 30%" in result.output and "No better than chance: the app's author attribution" in result.output
    )


def test_the_api_says_whether_a_model_beats_chance_and_null_where_its_figures_cannot_tell(app, client, writers):
    with app.app_context():
        job = jobs.run_here("style-train", "coder")
        assert "no better than chance" not in job.message
        version = job.result["model"]
    body = client.post("/api/users/coder/generate", json={"count": 1}).get_json()
    metrics = body["model"]["metrics"]
    assert body["better_than_chance"] is True and metrics["held_out_bits_per_char"] < metrics["chance_bits_per_char"]
    for changed, expected in [({"held_out_bits_per_char": 9.0}, False), ({"chance_bits_per_char": None}, None)]:
        with app.app_context():
            db.session.execute(
                sa.update(ModelVersion).where(ModelVersion.id == version).values(metrics={**metrics, **changed})
            )
            db.session.commit()
        body = client.post("/api/users/coder/generate", json={"count": 1}).get_json()
        assert body["better_than_chance"] is expected
