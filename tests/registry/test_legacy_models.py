"""Trained models stored by an earlier version of the code must keep loading and giving the same answers.

tests/data/legacy_models.json holds rows of the ``sentiment_models`` and ``model_versions`` tables as the
code at commit 9593954 wrote them (every column; bytes in base64, timestamps in ISO 8601), and what that
code answered with them: a sentiment model trained on a small made-up labelled file, a virality model
trained as tests/virality/test_virality.py trains one, and a Kneser-Ney style model of a small made-up account.
Deployments hold such rows; each test puts them into the database as they are and asks through the
app's usual paths for the model in service, which must serve the answers recorded then. A change to
the stored layout that makes them unreadable needs a migration of the rows, not a new recording.
(Since drafts keep to real words, the style model's recorded posts come back when drawn as that code drew
them; through the app, only those drawn before its first made-up word do.)
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from twitapp.extensions import db
from twitapp.sentiment import model as sentiment
from twitapp.style import model as generate
from twitapp.style import sampling, words
from twitapp.virality import model as virality

LEGACY = json.loads((Path(__file__).parents[1] / "data" / "legacy_models.json").read_text(encoding="utf-8"))


def store_legacy_rows(kind: str) -> None:
    """The kind's recorded rows, inserted into their tables as they were stored (in the app context)."""
    for stored in LEGACY[kind]["rows"]:
        values = dict(stored["row"])
        for column, encoding in stored["encoding"].items():
            if encoding == "base64":
                values[column] = base64.b64decode(values[column])
            elif encoding == "datetime":
                values[column] = datetime.fromisoformat(values[column])
            else:
                raise AssertionError(f"unknown encoding {encoding!r} of {column}")
        db.session.execute(sa.insert(db.metadata.tables[stored["table"]]).values(values))
    db.session.commit()


def test_the_recording_holds_whole_rows_of_each_kind_that_pass_the_hash_check():
    """The file is what the earlier code stored: one row of each kind, bytes that match their hash."""
    assert LEGACY["written_by"] == "9593954"
    for kind in ("sentiment", "virality", "style"):
        for stored in LEGACY[kind]["rows"]:
            artefact = base64.b64decode(stored["row"]["artefact"])
            assert artefact and hashlib.sha256(artefact).hexdigest() == stored["row"]["sha256"], kind
    assert [(r["table"], r["format"]) for r in LEGACY["sentiment"]["rows"]] == [("sentiment_models", 2)]
    assert [(r["table"], r["format"], r["row"]["kind"]) for r in LEGACY["virality"]["rows"]] == [
        ("model_versions", 2, "virality")
    ]
    assert [(r["table"], r["format"], r["row"]["kind"]) for r in LEGACY["style"]["rows"]] == [
        ("model_versions", 1, "style")
    ]
    assert LEGACY["style"]["rows"][0]["row"]["params"]["engine"] == "kneser-ney"


def test_a_legacy_sentiment_model_is_in_service_and_scores_as_it_did(app):
    recorded = LEGACY["sentiment"]
    with app.app_context():
        store_legacy_rows("sentiment")
        backend, row, scored = sentiment.analyse(recorded["texts"], backend="trained")
        assert backend == "trained" and row.id == recorded["in_service"]
    assert [s.label for s in scored] == [e["label"] for e in recorded["expected"]]
    assert sorted(s.label for s in scored) == ["negative", "neutral", "positive"]
    for result, expected in zip(scored, recorded["expected"], strict=True):
        assert result.score == pytest.approx(expected["score"], abs=1e-9)
        assert [w for w, _ in result.words] == [w for w, _ in expected["words"]]
        assert [v for _, v in result.words] == pytest.approx([v for _, v in expected["words"]], abs=1e-9)


def test_a_legacy_virality_champion_gives_the_same_chances(app):
    """The model weighs the hour and weekday a post goes out (now, in UTC), so the recording holds the
    answer for every hour of the week; the one for the hour of the call must come back."""
    recorded = LEGACY["virality"]
    with app.app_context():
        store_legacy_rows("virality")
        for expected in recorded["expected"]:
            before = datetime.now(UTC)
            probability, row = virality.predict(expected["text"])
            after = datetime.now(UTC)
            assert row.id == recorded["in_service"]
            by_slot = expected["by_weekday_and_hour"]
            answers = {by_slot[at.weekday() * 24 + at.hour] for at in (before, after)}  # the hour may turn
            assert any(probability == pytest.approx(answer, abs=1e-9) for answer in answers), (probability, answers)
    liked, ignored = (e["by_weekday_and_hour"] for e in recorded["expected"])
    assert min(liked) > max(ignored)  # what it learned: a giveaway gets likes, committee minutes do not


def test_a_legacy_style_model_draws_as_it_did_and_now_keeps_to_real_words(app, add_account):
    """The stored model gives the same probabilities: drawn as the earlier code drew (any word it made up
    let through), it writes the recorded posts again. Through the app it now writes only words of the
    account's posts or of the opening; the recorded posts held made-up ones ("kitronvad", "wnonight"), so
    from the first post that held one the posts differ, while those before it come back as they were."""
    recorded = LEGACY["style"]
    account = recorded["account"]
    add_account(account["username"], account["posts"], account_id=account["id"])
    real = words.Lexicon(account["posts"])
    assert sum(real.invented(case["posts"])[0] for case in recorded["write_like"]) >= 5  # what users saw
    with app.app_context():
        store_legacy_rows("style")
        row, model = generate.in_service(account["username"])
        assert row.id == recorded["in_service"] and model is not None
        index = sampling.CopyIndex([sampling.normalise(p) for p in account["posts"]])
        for case in recorded["write_like"]:
            count, temperature, opening = generate.check_request(case["count"], case["temperature"], case["opening"])
            unruled, _ = sampling.draw(model, index, count, temperature, opening, seed=case["seed"], words=None)
            assert unruled == case["posts"]
            posts, row = generate.write_like(account["username"], count, temperature, opening, seed=case["seed"])
            assert row.id == recorded["in_service"]
            assert len(posts) == count and all(post.startswith(opening) for post in posts)
            known = real.including(opening)
            assert known.invented(posts)[0] == 0
            made_up = [i for i, post in enumerate(case["posts"]) if known.invented([post])[0]]
            first_made_up = made_up[0] if made_up else len(posts)
            assert posts[:first_made_up] == case["posts"][:first_made_up]
        scored = recorded["bits_per_char"]
        assert model.bits_per_char(scored["texts"]) == pytest.approx(scored["value"], abs=1e-9)
