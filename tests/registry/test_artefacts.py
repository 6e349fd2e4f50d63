"""Stored sentiment and virality models are data: a row holding code is never run, and a model comes back
from its bytes answering exactly as it did before it was stored."""

import hashlib
import io
import pickle
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from tests.support.data import IGNORED, LIKED, START, liked_posts, store, training_rows
from twitapp import artefacts
from twitapp.extensions import db
from twitapp.models import ModelVersion, SentimentModel
from twitapp.sentiment import model as sentiment
from twitapp.virality import model as virality


class Payload:
    """Unpickling this creates the marker file: what a row written by an attacker would do instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def planted(marker) -> bytes:
    return pickle.dumps(Payload(marker), protocol=pickle.HIGHEST_PROTOCOL)


def plant_sentiment(app, blob: bytes, format: int = sentiment.MODEL_FORMAT) -> None:
    with app.app_context():
        db.session.add(
            SentimentModel(
                format=format,
                created_at=datetime.now(UTC),
                data={"files": [], "rows": 90, "dropped_duplicates_or_conflicts": 0},
                metrics={"held_out": {"macro_recall": 1.0}, "vader_held_out": {"macro_recall": 0.5}},
                sha256=hashlib.sha256(blob).hexdigest(),
                artefact=blob,
            )
        )
        db.session.commit()
    sentiment._service.clear()


def plant_virality(app, blob: bytes, format: int = virality.FORMAT, threshold: int = 0) -> None:
    at = datetime(2025, 1, 6, tzinfo=UTC)
    with app.app_context():
        db.session.add(
            ModelVersion(
                kind=virality.KIND,
                format=format,
                status="champion",
                created_at=at,
                trained_from=at,
                trained_to=at + timedelta(days=30),
                params={"threshold": threshold, "c": virality.C, "history": virality.HISTORY},
                metrics={"rows": 30, "roc_auc": 0.9, "accuracy": 0.8, "majority_accuracy": 0.5},
                decision={"promoted": True, "reason": "planted", "margin": virality.MARGIN},
                sha256=hashlib.sha256(blob).hexdigest(),
                artefact=blob,
            )
        )
        db.session.commit()
    virality._service.clear()


def test_a_pickled_sentiment_row_is_never_run_and_vader_answers(app, client, runner, tmp_path):
    marker = tmp_path / "sentiment-ran"
    plant_sentiment(app, planted(marker))
    response = client.post("/api/sentiment", json={"texts": ["What a wonderful day"]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model"] == {"backend": "vader", "version": None, "better_than_chance": None}
    assert body["results"][0]["label"] == "positive"
    response = client.post("/sentiment", data={"text": "What an awful day"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="label label-negative"' in page
    assert "VADER" in page and "must be trained again" in page
    result = runner.invoke(args=["sentiment", "score", "lovely"])
    assert result.exit_code == 0 and "by VADER" in result.output
    response = client.post("/api/sentiment", json={"texts": ["ok"], "backend": "trained"})
    assert response.status_code == 400 and "No trained model" in response.get_json()["message"]
    assert not marker.exists()


def test_a_pickled_virality_champion_is_never_run_and_none_is_in_service(app, client, runner, tmp_path):
    marker = tmp_path / "virality-ran"
    plant_virality(app, planted(marker))
    response = client.post("/api/virality", json={"text": "Giveaway! win a signed copy"})
    assert response.status_code == 503
    assert "No virality model is in service yet" in response.get_json()["message"]
    page = client.get("/virality")
    assert page.status_code == 200 and "No virality model is in service yet" in page.get_data(as_text=True)
    result = runner.invoke(args=["virality", "score", "Giveaway"])
    assert result.exit_code != 0 and "No virality model is in service yet" in result.output
    assert not marker.exists()


def test_models_stored_as_pickles_before_are_not_read_and_training_again_replaces_them(app, client, runner, tmp_path):
    marker = tmp_path / "ran"
    plant_sentiment(app, planted(marker), format=1)
    page = client.get("/sentiment").get_data(as_text=True)
    assert "VADER" in page and "older format" in page and "must be trained again" in page
    labelled_csv = tmp_path / "labelled.csv"
    labelled_csv.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in training_rows()))
    result = runner.invoke(args=["sentiment", "train", str(labelled_csv)])
    assert result.exit_code == 0, result.output
    body = client.post("/api/sentiment", json={"texts": ["I love the list"]}).get_json()
    assert body["model"]["backend"] == "trained" and body["model"]["version"] == 2
    assert "must be trained again" not in client.get("/sentiment").get_data(as_text=True)

    store(app, "festival", 501, liked_posts(1_000, 150, START))
    plant_virality(app, planted(marker), format=1, threshold=20)
    response = client.post("/api/virality", json={"text": "Giveaway"})
    assert response.status_code == 503 and "older format" in response.get_json()["message"]
    result = runner.invoke(args=["virality", "train"])
    assert result.exit_code == 0, result.output
    assert "for more than 20 likes" in result.output  # the old champion's question, kept
    assert "(version 1) was stored in an older format" in result.output
    with app.app_context():
        rows = db.session.scalars(sa.select(ModelVersion).order_by(ModelVersion.id)).all()
        assert [(r.status, r.format) for r in rows] == [("retired", 1), ("champion", virality.FORMAT)]
    body = client.post("/api/virality", json={"text": "Huge giveaway today"}).get_json()
    assert body["model"]["version"] == 2 and body["threshold"] == 20
    assert not marker.exists()


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"PK\x03\x04 not a zip at all", id="broken-zip"),
        pytest.param(np.array([1.0]).tobytes(), id="raw-floats"),
        pytest.param(None, id="object-array"),
        pytest.param("json", id="no-arrays"),
    ],
)
def test_bytes_that_are_not_a_stored_model_are_refused(blob):
    if blob is None:
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array([{"x": 1}], dtype=object))  # an object array is a pickle inside
        blob = buffer.getvalue()
    elif blob == "json":
        blob = artefacts.pack({}, {"kind": "something else"})
    with pytest.raises(artefacts.ArtefactError):
        sentiment.TrainedModel.from_bytes(blob)
    with pytest.raises(artefacts.ArtefactError):
        virality.ViralityModel.from_bytes(blob)


def test_a_model_whose_arrays_do_not_fit_together_is_refused():
    rows = training_rows()
    model = sentiment.TrainedModel().fit([t for t, _ in rows], [label for _, label in rows])
    arrays, meta = artefacts.unpack(model.to_bytes())
    arrays["classifier_coef"] = arrays["classifier_coef"][:, :-1]
    with pytest.raises(artefacts.ArtefactError, match="coef"):
        sentiment.TrainedModel.from_bytes(artefacts.pack(arrays, meta))
    arrays, meta = artefacts.unpack(model.to_bytes())
    meta["chars"]["settings"]["ngram_range"] = [1, 3]  # made by other code than this
    with pytest.raises(artefacts.ArtefactError, match="ngram_range"):
        sentiment.TrainedModel.from_bytes(artefacts.pack(arrays, meta))


def test_a_sentiment_model_answers_the_same_after_being_stored():
    rows = training_rows() + [(f"not {g} at all", "negative") for g in ("good", "great", "happy")]
    model = sentiment.TrainedModel().fit([t for t, _ in rows], [label for _, label in rows])
    loaded = sentiment.TrainedModel.from_bytes(model.to_bytes())
    texts = ["I love the list, truly brilliant!!", "not great at all @bob https://x.co/a", "Tuesday", "Émile's café"]
    before, after = model.score(texts), loaded.score(texts)
    assert [s.label for s in after] == [s.label for s in before]
    assert np.allclose([s.score for s in after], [s.score for s in before], rtol=0, atol=1e-12)
    for b, a in zip(before, after, strict=True):
        assert [w for w, _ in a.words] == [w for w, _ in b.words]
        assert np.allclose([v for _, v in a.words], [v for _, v in b.words], rtol=0, atol=1e-12)
    assert list(loaded.predict(texts)) == list(model.predict(texts))
    assert np.allclose(
        loaded.classifier.predict_proba(loaded._design(texts)), model.classifier.predict_proba(model._design(texts))
    )


def virality_posts(count: int, seed: int = 0) -> list[virality.Post]:
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 6, 9, tzinfo=UTC)
    out, history = [], []
    for i in range(count):
        liked = bool(rng.random() < 0.5)
        text = f"{(LIKED if liked else IGNORED)[i % 3]} #{i}"
        likes = int(rng.integers(3, 40)) if liked else 0
        at = start + timedelta(hours=5 * i)
        out.append(virality.Post(text, at, likes, 1200, tuple(history[-50:]), media=bool(i % 4 == 0)))
        history.append((likes, at))
    return out


@pytest.mark.parametrize("text_only", [False, True])
def test_a_virality_model_answers_the_same_after_being_stored(text_only):
    posts = virality_posts(120)
    model = virality.ViralityModel(threshold=2, text_only=text_only).fit(posts[:90])
    loaded = virality.ViralityModel.from_bytes(model.to_bytes())
    assert (loaded.threshold, loaded.text_only) == (2, text_only)
    fresh = [*posts[90:], virality.Post("Huge giveaway, win a signed copy", datetime.now(UTC))]
    assert np.allclose(loaded.probabilities(fresh), model.probabilities(fresh), rtol=0, atol=1e-12)
    assert (loaded.probabilities(fresh) >= 0.5).tolist() == (model.probabilities(fresh) >= 0.5).tolist()
    assert list(loaded.labels(fresh)) == list(model.labels(fresh))
