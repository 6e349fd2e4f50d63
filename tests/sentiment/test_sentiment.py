"""Sentiment: the labelled-file readers, VADER and the trained model behind one interface, pages, API, CLI."""

import csv
import io

import numpy as np
import pytest
import sqlalchemy as sa

from tests.support.data import GOOD, PLAIN, count_rows, patternless_rows, training_rows
from twitapp import jobs
from twitapp.extensions import db
from twitapp.models import Job, SentimentModel, Upload
from twitapp.sentiment import labelled, vader
from twitapp.sentiment import model as sentiment
from twitapp.sources.archive import ArchiveError


@pytest.fixture
def labelled_csv(tmp_path):
    path = tmp_path / "labelled.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "label"])
        writer.writerows(training_rows())
    return path


def test_semeval_files_are_repaired_as_read(tmp_path):
    path = tmp_path / "semeval.txt"
    path.write_text(
        '1\tpositive\t"Loved it, the ""best"" show"\t\n'
        "2\tnegative\tIt\\u2019s broken &amp; late\n"
        '3\tneutral\t" @news: a post broken\n'
        'over two lines"\t\n',
        encoding="utf-8",
    )
    rows = labelled.read_labelled(path)
    assert [(r.label, r.text) for r in rows] == [
        ("positive", 'Loved it, the "best" show'),
        ("negative", "It\u2019s broken & late"),
        ("neutral", "@news: a post broken over two lines"),
    ]
    assert rows[0].id == "semeval:1"


def test_sentiment140_and_plain_csv_are_read(tmp_path):
    s140 = tmp_path / "s140.csv"
    s140.write_text(
        'target,ids,date,flag,user,text\n0,11,"Mon",NO_QUERY,u,"so sad today"\n4,12,"Mon",NO_QUERY,u,yay\n',
        encoding="utf-8",
    )
    assert [(r.label, r.text) for r in labelled.read_labelled(s140)] == [
        ("negative", "so sad today"),
        ("positive", "yay"),
    ]
    plain = tmp_path / "plain.csv"
    plain.write_text("textID,text,sentiment\na,fine day,neutral\nb,awful,negative\n", encoding="utf-8")
    assert [r.label for r in labelled.read_labelled(plain)] == ["neutral", "negative"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1\tpositive\tok\n2\tgreat\tbad label\n", "line 2"),
        ("text,label\nhello,happyish\n", "line 2: label 'happyish'"),
        ("target,ids,date,flag,user,text\n3,1,d,f,u,t\n", "line 2: target '3'"),
        ("just some words\n", "not SemEval TSV"),
    ],
)
def test_bad_labelled_files_are_refused_with_the_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ArchiveError, match=message):
        labelled.read_labelled(path)


def test_duplicates_and_conflicting_labels_are_dropped():
    rows = [
        labelled.LabelledText("semeval:1", "positive", "Good"),
        labelled.LabelledText("semeval:2", "positive", "good"),
        labelled.LabelledText("semeval:3", "negative", "meh"),
        labelled.LabelledText("semeval:4", "positive", "meh"),
        labelled.LabelledText("semeval:1", "neutral", "other text, same id"),
    ]
    kept, dropped = labelled.deduplicate(rows)
    assert [r.text for r in kept] == ["Good"] and dropped == 4


def test_without_a_trained_model_vader_scores_and_explains(client):
    body = client.post(
        "/api/sentiment", json={"texts": ["I love this, wonderful!", "This is awful.", "It is Tuesday."]}
    )
    assert body.status_code == 200
    data = body.get_json()
    assert data["model"] == {"backend": "vader", "version": None, "better_than_chance": None}
    assert [r["label"] for r in data["results"]] == ["positive", "negative", "neutral"]
    words = {w["text"]: w["weight"] for w in data["results"][0]["words"]}
    assert words["love"] > 0 and words["wonderful!"] > 0 and words["this,"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "The new bike lanes are not great, honestly a mess, but the mural is lovely",
        "VERY GOOD but kind of sad",
        "no problem at all \U0001f622\U0001f622",
        "I love this \U0001f600wonderful!!",
        "It is Tuesday.",
        "Ha ha! Sorry there's no link! A certain co worker seems to know what mocha and ass smells like!",
    ],
)
def test_vader_word_shading_follows_its_rules_and_adds_up_to_its_score(text):
    """Negation, intensifiers, capitals, "but" and emoji change a word's pull; the pulls make the score."""
    tokens = vader.VaderTokens.of(text)
    assert tokens.compound() == vader.analyzer().polarity_scores(text)["compound"]
    [with_words] = vader.score_vader([text])
    [without] = vader.score_vader([text], explain=False)
    assert with_words.score == without.score and with_words.label == without.label


def test_vader_credits_each_rule_to_the_word_it_changed():
    """Where a token's valence lands: a booster's lift on the word it boosts, an emoji's on the word it is
    in, and "kind of" on the word it softens, none on the modifiers themselves."""
    words = dict(
        zip(
            vader.words_of("VERY GOOD but kind of sad \U0001f622!"),
            vader.VaderTokens.of("VERY GOOD but kind of sad \U0001f622!").per_word(),
            strict=True,
        )
    )
    lexicon = vader.analyzer().lexicon
    assert words["VERY"] == words["but"] == words["kind"] == words["of"] == 0
    assert words["GOOD"] > lexicon["good"] * 0.5  # boosted and capitalised, then halved by the later "but"
    assert words["sad"] < lexicon["sad"] < 0  # "kind of" softens, "but" weighs it 1.5 times
    assert words["\U0001f622!"] < 0  # the emoji's description is credited to the word it came in


def test_vader_shows_a_negated_word_pulling_the_other_way(client):
    result = client.post("/api/sentiment", json={"texts": ["the soup is not great"]}).get_json()["results"][0]
    words = {w["text"]: w["weight"] for w in result["words"]}
    assert words["great"] < 0 and result["label"] == "negative"


def test_cli_score_says_the_label_and_the_words_that_pulled(runner):
    result = runner.invoke(args=["sentiment", "score", "the soup is not great but the bread is lovely"])
    assert result.exit_code == 0, result.output
    label, positive, negative = result.output.splitlines()
    assert label.startswith("positive (+") and label.endswith("by VADER")
    assert positive.startswith("  toward positive: lovely (+")
    assert negative.startswith("  toward negative: great (-")  # "not great"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"texts": "one text"}, "must be a list of strings"),
        ({"texts": []}, "at least one text"),
        ({"texts": ["fine", "  "]}, "Text 2 is empty"),
        ({"texts": ["x" * 1001]}, "at most 1000 are scored"),
        ({"texts": ["ok"] * 1001}, "at most 1000 texts per call"),
        ({"texts": ["ok"], "backend": "magic"}, '"backend" must be'),
        ({"texts": ["ok"], "backend": "trained"}, "No trained model is stored yet"),
        ([1, 2], "Send a JSON object"),
    ],
)
def test_the_sentiment_api_explains_what_it_refuses(client, body, message):
    response = client.post("/api/sentiment", json=body)
    assert response.status_code == 400 and message in response.get_json()["message"]


def test_a_trained_model_is_stored_served_and_explained(app, client, runner, labelled_csv):
    result = runner.invoke(args=["sentiment", "train", str(labelled_csv)])
    assert result.exit_code == 0, result.output
    assert "Trained sentiment model 1 on 120 texts" in result.output and "now in service" in result.output
    with app.app_context():
        row = db.session.get(SentimentModel, 1)
        assert row.data["files"][0]["file"] == "labelled.csv" and len(row.sha256) == 64
        assert row.metrics["held_out"]["rows"] == 12
    body = client.post(
        "/api/sentiment", json={"texts": ["I love the list, truly brilliant", "I hate Tuesday"]}
    ).get_json()
    assert body["model"]["backend"] == "trained" and body["model"]["version"] == 1
    assert [r["label"] for r in body["results"]] == ["positive", "negative"]
    words = {w["text"]: w["weight"] for w in body["results"][0]["words"]}
    assert words["love"] > 0 and words["brilliant"] > 0
    assert (
        client.post("/api/sentiment", json={"texts": ["I hate it"], "backend": "vader"}).get_json()["model"]["backend"]
        == "vader"
    )

    result = runner.invoke(args=["sentiment", "evaluate", str(labelled_csv)])
    assert result.exit_code == 0 and "VADER: macro-averaged recall" in result.output
    assert "trained model 1: macro-averaged recall 1.000" in result.output


def test_word_pulls_add_up_to_the_models_logit_and_follow_negation():
    rows = training_rows() + [(f"not {g} at all, {p}", "negative") for g in GOOD for p in PLAIN[:3]]
    model = sentiment.TrainedModel().fit([t for t, _ in rows], [label for _, label in rows])
    texts = ["I love it, not brilliant though https://x.co/a @bob", "Sad sad sad, not good #7"]
    classifier = model.classifier
    positive, negative = list(classifier.classes_).index("positive"), list(classifier.classes_).index("negative")
    X = model._design(texts)
    logits = X @ classifier.coef_.T + classifier.intercept_
    n_ngrams = X.shape[1] - 4  # the last four columns are VADER's scores
    for i, scored in enumerate(model.score(texts)):
        assert [w for w, _ in scored.words] == texts[i].split()
        delta = classifier.coef_[positive] - classifier.coef_[negative]
        ngram_part = logits[i, positive] - logits[i, negative]
        ngram_part -= classifier.intercept_[positive] - classifier.intercept_[negative]
        ngram_part -= X[i, n_ngrams:].toarray().ravel() @ delta[n_ngrams:]
        assert sum(v for _, v in scored.words) == pytest.approx(ngram_part, abs=1e-9)
    # "brilliant" after "not" is read as negated, which the training texts taught to pull toward negative.
    plain = dict(model.score(["truly brilliant"])[0].words)["brilliant"]
    negated = dict(model.score(["not brilliant"])[0].words)["brilliant"]
    assert plain > negated + 0.1


def test_character_features_built_from_remembered_words_match_the_vectorizer():
    rows = training_rows()
    model = sentiment.TrainedModel().fit([t for t, _ in rows], [label for _, label in rows])
    texts = ["I LOVE the list, truly brilliant!!", "  spaced   out\ttext ", "Émile's café, naïve #7 @user", "x"]
    normalised = [vader.normalise(t) for t in texts]
    for _ in range(2):  # the second time from the remembered words
        built = model._char_tfidf(normalised).toarray()
        assert np.allclose(built, model.chars.transform(normalised).toarray())


def test_a_damaged_model_is_never_loaded(app, client, runner, labelled_csv):
    assert runner.invoke(args=["sentiment", "train", str(labelled_csv)]).exit_code == 0
    assert runner.invoke(args=["sentiment", "train", str(labelled_csv)]).exit_code == 0
    with app.app_context():
        db.session.execute(sa.update(SentimentModel).where(SentimentModel.id == 2).values(artefact=b"not a model"))
        db.session.commit()
        sentiment._service.clear()
    body = client.post("/api/sentiment", json={"texts": ["I love it"]}).get_json()
    assert body["model"]["version"] == 1  # the newest intact one


def test_training_on_too_little_says_what_is_missing(runner, tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\ngood,positive\nbad,negative\n", encoding="utf-8")
    result = runner.invoke(args=["sentiment", "train", str(path)])
    assert result.exit_code != 0 and "missing: neutral" in result.output


def test_the_sentiment_page_scores_and_highlights(client):
    page = client.get("/sentiment").get_data(as_text=True)
    assert "Scored by" in page and "VADER" in page
    response = client.post("/sentiment", data={"text": "What a wonderful, happy day"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'class="label label-positive"' in page and 'id="sentiment-score">+0.' in page
    assert '<mark class="toward-top' in page and "wonderful," in page
    response = client.post("/sentiment", data={"text": "   "})
    assert response.status_code == 400 and "The text is empty" in response.get_data(as_text=True)


def test_large_batches_can_skip_the_per_word_weights(client):
    body = client.post("/api/sentiment", json={"texts": ["lovely", "awful"] * 300, "words": False}).get_json()
    assert len(body["results"]) == 600 and all(r["words"] == [] for r in body["results"])
    assert [r["label"] for r in body["results"][:2]] == ["positive", "negative"]
    response = client.post("/api/sentiment", json={"texts": ["ok"], "words": "no"})
    assert response.status_code == 400 and '"words" must be true or false' in response.get_json()["message"]


def test_an_account_page_charts_its_sentiment_month_by_month(app, client, add_account):
    from datetime import UTC, datetime, timedelta

    from tests.support.data import make_posts
    from twitapp.ingest.store import import_tweets
    from twitapp.sources.records import AccountRecord

    texts = ["I love this wonderful town", "What an awful, terrible day", "The meeting is on Tuesday"] * 4
    posts = make_posts(texts, 5000, start=datetime(2026, 1, 5, tzinfo=UTC))
    posts = [p.__class__(p.id, p.text, p.created_at + timedelta(days=20 * i)) for i, p in enumerate(posts)]
    with app.app_context():
        import_tweets(AccountRecord(77, "moody", "Moody"), posts, source="archive")
    page = client.get("/user/moody").get_data(as_text=True)
    assert 'id="sentiment-mix"' in page
    for month in ("2026-01", "2026-05", "2026-08"):
        assert f">{month}</text>" in page
    assert "2026-01: 1 negative, 0 neutral, 1 positive" in page  # Jan 5 and Jan 25
    assert page.count('class="bar-negative"') == 4 and page.count('class="bar-positive"') == 4


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    return ("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows)).encode()


def upload(client, *files: tuple[str, bytes]):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/sentiment/train", data=data, content_type="multipart/form-data")


def test_a_model_trained_from_the_page_runs_as_a_job_and_goes_into_service(app, client):
    rows = training_rows()
    response = upload(client, ("first.csv", csv_bytes(rows[:60])), ("second.csv", csv_bytes(rows[60:])))
    assert response.status_code == 302 and response.headers["Location"].endswith("/sentiment#training")
    jobs.thread_worker.join()
    page = client.get("/sentiment").get_data(as_text=True)
    assert "Trained sentiment model 1 on 120 texts" in page  # the job's outcome, shown where it was started
    assert "Scored by\n    trained model 1" in page and "first.csv, second.csv" in page and "in service" in page
    body = client.post("/api/sentiment", json={"texts": ["I love the list, truly brilliant"]}).get_json()
    assert body["model"]["version"] == 1 and body["results"][0]["label"] == "positive"
    assert count_rows(app, Upload) == 0  # the files were read and dropped


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "Choose one or more labelled files"),
        ([("notes.txt", b"just some words\n")], "notes.txt: not SemEval TSV"),
    ],
)
def test_the_page_refuses_what_it_can_tell_at_once_and_starts_nothing(app, client, files, message):
    response = upload(client, *files)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count_rows(app, Job) == 0 and count_rows(app, Upload) == 0 and count_rows(app, SentimentModel) == 0


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([("ok.csv", csv_bytes(training_rows())), ("bad.csv", b"text,label\nhello,happyish\n")], "line 2: label"),
        ([("two.csv", csv_bytes([("good", "positive"), ("bad", "negative")] * 20))], "missing: neutral"),
    ],
)
def test_files_read_by_the_training_job_are_refused_on_the_page_it_follows(app, client, files, message):
    """The files are read in the job, not in the request: what is wrong in them is said where the job is."""
    assert upload(client, *files).status_code == 302
    jobs.thread_worker.join()
    assert message in client.get("/sentiment").get_data(as_text=True)
    assert count_rows(app, Upload) == 0 and count_rows(app, SentimentModel) == 0


@pytest.mark.app_config(MAX_CONTENT_LENGTH=4096)
def test_a_file_over_the_upload_limit_is_refused_with_the_limit(app, client):
    response = upload(client, ("big.csv", csv_bytes(training_rows()) * 4))
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Nothing was stored" in page and "flask sentiment train FILE" in page
    assert count_rows(app, Upload) == 0 and count_rows(app, Job) == 0


def test_training_from_the_page_works_through_an_rq_worker(app, client, runner, redis_url):
    """The files travel to the worker through the database, as they must between Heroku dynos."""
    app.config["REDIS_URL"] = redis_url
    jobs.rq_queue(redis_url).empty()
    assert upload(client, ("labelled.csv", csv_bytes(training_rows()))).status_code == 302
    assert count_rows(app, Upload) == 1 and jobs.thread_worker.queue.unfinished_tasks == 0
    waiting = client.get("/sentiment").get_data(as_text=True)
    assert "Training a sentiment model" in waiting and 'type="submit" disabled>Train</button>' in waiting
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert "trained model 1" in client.get("/sentiment").get_data(as_text=True)
    assert count_rows(app, Upload) == 0


def test_the_trained_models_are_listed_by_the_api_and_the_cli_with_the_one_in_service(app, client, runner, tmp_path):
    assert client.get("/api/sentiment/models").get_json() == {"models": []}
    assert "No sentiment model is trained yet" in runner.invoke(args=["sentiment", "models"]).output
    path = tmp_path / "labelled.csv"
    with path.open("w", newline="") as out:
        csv.writer(out).writerows([("text", "label"), *training_rows()])
    for _ in range(2):
        assert runner.invoke(args=["sentiment", "train", str(path)]).exit_code == 0
    listed = client.get("/api/sentiment/models").get_json()["models"]
    assert [m["version"] for m in listed] == [2, 1] and [m["in_service"] for m in listed] == [True, False]
    assert listed[0]["texts"] > 0 and listed[0]["files"] == ["labelled.csv"]
    assert 0 <= listed[0]["held_out_macro_recall"] <= 1
    lines = runner.invoke(args=["sentiment", "models"]).output.splitlines()
    assert lines[0].split()[0] == "2" and lines[0].endswith("in service") and not lines[1].endswith("in service")
    with app.app_context():  # the newest is damaged: the one before it serves, and both lists say so
        db.session.execute(sa.update(SentimentModel).where(SentimentModel.id == 2).values(sha256="0" * 64))
        db.session.commit()
        sentiment._service.clear()
    listed = client.get("/api/sentiment/models").get_json()["models"]
    assert [(m["version"], m["in_service"]) for m in listed] == [(2, False), (1, True)]
    lines = runner.invoke(args=["sentiment", "models"]).output.splitlines()
    assert not lines[0].endswith("in service") and lines[1].endswith("in service")


def test_a_model_no_better_than_chance_never_answers_and_says_so(app, client, runner, tmp_path, labelled_csv):
    noise = tmp_path / "noise.csv"
    with noise.open("w", newline="") as out:
        csv.writer(out).writerows([("text", "label"), *patternless_rows()])
    result = runner.invoke(args=["sentiment", "train", str(noise)])
    assert result.exit_code == 0, result.output
    assert "no better than chance" in result.output and "VADER keeps answering" in result.output
    body = client.post("/api/sentiment", json={"texts": ["I love it"]}).get_json()
    assert body["model"] == {"backend": "vader", "version": None, "better_than_chance": None}
    (listed,) = client.get("/api/sentiment/models").get_json()["models"]
    assert listed["better_than_chance"] is False and listed["in_service"] is False
    assert listed["held_out_macro_recall_low"] <= listed["chance"] == 0.3333
    assert runner.invoke(args=["sentiment", "models"]).output.rstrip().endswith("no better than chance")
    page = client.get("/sentiment").get_data(as_text=True)
    assert "Model 1, the newest trained, is <b>no better than\n    chance</b>" in page and "VADER does." in page

    # A good model then serves, and says how far it beats chance; a worse one after it leaves it serving.
    assert "now in service" in runner.invoke(args=["sentiment", "train", str(labelled_csv)]).output
    assert "model 2 keeps answering" in runner.invoke(args=["sentiment", "train", str(noise)]).output
    body = client.post("/api/sentiment", json={"texts": ["I love it"]}).get_json()
    assert body["model"]["version"] == 2 and body["model"]["better_than_chance"] is True
    assert body["model"]["held_out_macro_recall_low"] > body["model"]["chance"]
    page = client.get("/sentiment").get_data(as_text=True)
    assert "chance: 0.333" in page and "Model 3, the newest trained" in page and "model 2 does." in page
    scored = runner.invoke(args=["sentiment", "score", "I love it"]).output
    assert "by trained model 2 (macro-averaged recall" in scored and "chance: 0.333" in scored


def test_older_models_are_judged_from_their_figures():
    flat = {"macro_recall": 0.36, "recall": dict.fromkeys(labelled.LABELS, 0.36), "rows": 30}
    clear = {"macro_recall": 0.8, "recall": dict.fromkeys(labelled.LABELS, 0.8), "rows": 300}
    assert not sentiment.better_than_chance({"held_out": flat})
    assert sentiment.better_than_chance({"held_out": clear})
    assert sentiment.macro_recall_low(clear) == pytest.approx(0.8 - 1.96 * (0.8 * 0.2 / 100 * 3) ** 0.5 / 3, abs=1e-4)
    assert sentiment.better_than_chance({"held_out": clear, "better_than_chance": False}) is False
