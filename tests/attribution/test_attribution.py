"""The attribution model itself: stored features, calibrated ranking, trust figure, reasons, cache."""

import re
from dataclasses import replace

import numpy as np
import pytest
import sqlalchemy as sa

from tests.support.data import VOICES
from twitapp.attribution import model as predict
from twitapp.attribution import recipe
from twitapp.attribution.reasons import explain
from twitapp.attribution.trust import TEMPERATURE_RANGE, Trust, fit_temperature, holdout_mask, wilson_lower_bound
from twitapp.extensions import db
from twitapp.ingest import features
from twitapp.models import Tweet, find_account


@pytest.fixture(autouse=True)
def empty_cache():
    predict.cache.clear()
    yield
    predict.cache.clear()


def many_posts(stem: str, words: list[str], n: int) -> list[str]:
    """n distinct posts in one voice: the stem's habits plus rotating topic words."""
    return [f"{stem} {words[i % len(words)]} {words[(i * 7 + 3) % len(words)]} number {i}" for i in range(n)]


def test_ingest_stores_hashed_features_that_match_the_text(app, voices):
    with app.app_context():
        tweet = db.session.scalars(sa.select(Tweet).order_by(Tweet.id)).first()
        assert features.is_current(tweet.features)
        stored = features.decode([tweet.features])
        fresh = features.count_matrix([tweet.text])
        assert (stored != fresh).nnz == 0 and stored.nnz > 20


def test_shortened_links_are_one_symbol_but_full_links_stay():
    assert features.normalise("see https://t.co/AbC123 now") == f"see {features.LINK} now"
    assert "example.org/plan" in features.normalise("read https://example.org/plan")


def test_posts_stored_without_features_get_them_on_first_use(app, client, voices):
    with app.app_context():
        db.session.execute(sa.update(Tweet).values(features=None))
        db.session.commit()
    response = client.post("/api/predict", json={"usernames": voices, "text": "fresh warm bread with flour and butter"})
    assert response.status_code == 200
    assert response.get_json()["ranking"][0]["username"] == "baker"
    with app.app_context():
        blobs = db.session.scalars(sa.select(Tweet.features)).all()
        assert all(features.is_current(b) for b in blobs)


def test_api_reports_trust_warnings_and_reasons(client, voices):
    body = client.post("/api/predict", json={"usernames": voices, "text": "warm bread and flour"}).get_json()
    trust = body["trust"]
    assert trust["chance"] == pytest.approx(1 / 3, abs=1e-3)
    # Six posts per voice: one each is held out, and each account is flagged as thinly sampled.
    assert trust["tested_posts"] == 3 and 0 <= trust["held_out_accuracy_low"] < trust["held_out_accuracy"] <= 1
    # Three held-out posts cannot show much: unless all three are right, it is no better than chance.
    honest = trust["held_out_accuracy"] == 1.0
    assert body["better_than_chance"] is trust["better_than_chance"] is honest
    thin = [w for w in body["warnings"] if "has only 6 stored posts" in w]
    assert len(thin) == 3 and len(body["warnings"]) == 3 + (not honest)
    assert honest or "no better than chance" in body["warnings"][0]
    reasons = body["reasons"]
    ranked = [r["username"] for r in body["ranking"]]
    assert ranked[0] == "baker"
    assert [(a["username"], a["colour"]) for a in reasons["accounts"]] == list(zip(ranked, range(3), strict=True))
    assert [w["text"] for w in reasons["words"]] == ["warm", "bread", "and", "flour"]
    assert {w["toward"] for w in reasons["words"]} <= set(ranked)
    toward_baker = reasons["accounts"][0]["toward"]
    assert any("flour" in g["ngram"] or "bread" in g["ngram"] for g in toward_baker)
    assert reasons["accounts"][0]["pull"] > 0


def test_trust_figure_is_held_out_accuracy_on_newest_posts(app, add_account, client):
    add_account("bakes", many_posts("fresh loaves and flour", ["rye", "crust", "oven", "butter", "dough"], 60))
    add_account("buses", many_posts("Route delayed minutes", ["timetable", "depot", "stop", "express", "bridge"], 60))
    with app.app_context():
        _, trust = predict.evaluate_accounts(["bakes", "buses"])
    # 20% of 60 posts each, newest first, are held out: 12 per account.
    assert trust.tested == 24
    assert trust.accuracy == 1.0 and trust.confusion.tolist() == [[12, 0], [0, 12]]
    body = client.post("/api/predict", json={"usernames": ["bakes", "buses"], "text": "rye dough"}).get_json()
    # 24 of 24 right: the 95% Wilson interval's lower end is 86%, well above chance.
    assert body["trust"] == {
        "held_out_accuracy": 1.0,
        "held_out_accuracy_low": 0.862,
        "tested_posts": 24,
        "chance": 0.5,
        "better_than_chance": True,
    }
    assert body["better_than_chance"] is True and body["warnings"] == []


def test_the_wilson_lower_bound_is_honest_about_few_posts():
    assert wilson_lower_bound(24, 24) == pytest.approx(0.8620, abs=1e-4)
    assert wilson_lower_bound(3, 3) == pytest.approx(0.4385, abs=1e-4)  # above 1/3, below 1/2
    assert wilson_lower_bound(0, 5) == 0.0
    assert wilson_lower_bound(50, 100) == pytest.approx(0.4038, abs=1e-4)  # the textbook figure
    three = Trust(3, 3, [1, 2, 3], np.eye(3, dtype=np.int64))
    assert three.better_than_chance is True
    assert replace(three, classes=[1, 2]).better_than_chance is False  # the same 3 of 3 among two accounts
    assert replace(three, correct=2).better_than_chance is False
    assert Trust(0, 0, [1, 2], np.zeros((2, 2))).better_than_chance is None


def test_every_accounts_reasons_add_up_to_its_logit_against_the_rest(app, voices, add_account):
    """For every account, not only the top one: the words' pulls sum to its logit less the others' mean."""
    add_account("gardener", many_posts("compost and seedlings", ["tomato", "trowel", "mulch", "rain"], 8))
    names = [*voices, "gardener"]
    # Repeats, a shortened link, a hashtag and punctuation: every feature must be counted once.
    text = "Route 12 sourdough late again, tests green #transit https://t.co/AbC123 again, again!"
    with app.app_context():
        users = predict.resolve_users(names)
        fitted, _ = predict.fitted_for(users)
    model, ids = fitted.model, {u.username: u.id for u in users}
    order = [ids[n] for n in ("coder", "gardener", "baker", "commuter")]  # any ranking order
    reasons = explain(model, text, order, {uid: n for n, uid in ids.items()})
    counts = features.count_matrix([text])
    X = model.weighting.transform(counts)
    logits = model.classifier.decision_function(X)[0]
    intercepts = model.classifier.intercept
    classes = list(model.classes)
    # Each class's logit, less its intercept, splits exactly over the features (TF-IDF weighting included)...
    shares = model.weighting.contributions(counts, model.classifier.coef)
    np.testing.assert_allclose(sum(shares.values()), logits - intercepts, rtol=0, atol=1e-9)
    # ...and so does each account's logit less the mean of the others', over the words of the text.
    assert [a.username for a in reasons.accounts] == ["coder", "gardener", "baker", "commuter"]
    assert [a.colour for a in reasons.accounts] == [0, 1, 2, 3]
    for account, uid in zip(reasons.accounts, order, strict=True):
        a = classes.index(uid)
        others = [b for b in range(len(classes)) if b != a]
        expected = (logits[a] - logits[others].mean()) - (intercepts[a] - intercepts[others].mean())
        assert account.total == pytest.approx(expected, rel=0, abs=1e-9), account.username
        assert len(account.words) == len(text.split())
    assert abs(reasons.accounts[3].total) > 0.1  # not a sum that is zero whatever the words
    # Each word is shaded by the account it pulls toward most, with that pull.
    assert "".join(t for t, *_ in reasons.pieces) == text
    words = [p for p in reasons.pieces if p[0].strip()]
    for n, (_, who, shade, score) in enumerate(words):
        pulls = [account.words[n] for account in reasons.accounts]
        if max(pulls) > 0:
            assert who == int(np.argmax(pulls)) and score == pytest.approx(max(pulls), abs=1e-12)
            assert 1 <= shade <= 3
        else:  # no n-gram of it is known (the link): it points nowhere
            assert who is None and shade == 0 and pulls == [0.0] * 4
    assert max(shade for _, _, shade, _ in words) == 3 and sum(who is not None for _, who, _, _ in words) >= 10
    by_word = {t: reasons.accounts[who].username for t, who, _, _ in words if who is not None}
    assert by_word["sourdough"] == "baker" and by_word["Route"] == "commuter" and by_word["tests"] == "coder"


def test_each_account_gets_its_strongest_ngrams_without_pieces_beside_their_words(app, voices):
    text = "Route 12 sourdough late again, tests green"
    with app.app_context():
        users = predict.resolve_users(voices)
        fitted, _ = predict.fitted_for(users)
    ids = {u.username: u.id for u in users}
    order = [ids["commuter"], ids["baker"], ids["coder"]]
    reasons = explain(fitted.model, text, order, {uid: n for n, uid in ids.items()})
    for account in reasons.accounts:
        grams = [g for g, _ in account.toward]
        values = [v for _, v in account.toward]
        assert 1 <= len(grams) <= 6 and values == sorted(values, reverse=True) and min(values) > 0
        for gram in grams:  # no piece shown beside an n-gram that contains it ("ugh" beside "ough")
            assert " " in gram or not any(gram in other for other in grams if other != gram), grams
    assert any("sourdough" in g or "ough" in g for g, _ in reasons.accounts[1].toward)
    words = text.lower().split()
    shown = {g for account in reasons.accounts for g, _ in account.toward}
    assert reasons.within and set(reasons.within) <= shown  # a piece of a word names its word
    for piece, word in reasons.within.items():
        assert piece in word.lower() and piece not in words and word in text.split()


def test_probabilities_are_tempered_logits(app, voices):
    with app.app_context():
        fitted, _ = predict.fitted_for(predict.resolve_users(voices))
    counts = features.count_matrix(["sourdough at dawn"])
    logits = fitted.model.classifier.decision_function(fitted.model.weighting.transform(counts))[0]
    expected = np.exp(logits / fitted.model.temperature) / np.exp(logits / fitted.model.temperature).sum()
    sharp = fitted.model.probabilities(counts)[0]
    np.testing.assert_allclose(sharp, expected, rtol=1e-6)
    soft = replace(fitted.model, temperature=fitted.model.temperature * 3).probabilities(counts)[0]
    assert soft.sum() == pytest.approx(1)
    assert sharp.argmax() == soft.argmax() and soft.max() < sharp.max()


def test_the_temperature_follows_the_held_out_answers():
    """Sure and often wrong on held-out posts: soften. Hesitant and always right: sharpen. Toward the prior."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 200)
    guesses = rng.integers(0, 4, 200)
    overconfident = np.zeros((200, 4))
    overconfident[np.arange(200), guesses] = 6.0  # about 25% right, each time 99% sure
    hesitant = np.zeros((200, 4))
    hesitant[np.arange(200), truth] = 0.5  # always right, each time 40% sure
    assert fit_temperature(overconfident, truth) > 2 * recipe.TEMPERATURE
    assert fit_temperature(hesitant, truth) < recipe.TEMPERATURE / 2
    assert TEMPERATURE_RANGE[0] <= fit_temperature(hesitant, truth)


def test_the_cache_reuses_a_model_until_an_account_gets_new_posts(app, client, voices, add_account):
    ask = {"usernames": voices, "text": "sourdough at dawn"}
    client.post("/api/predict", json=ask)
    client.post("/api/predict", json={**ask, "text": "another text"})
    client.post("/api/predict", json={"usernames": list(reversed(voices)), "text": "order does not matter"})
    assert (predict.cache.misses, predict.cache.hits) == (1, 2)
    add_account("baker", ["a brand new loaf of rye bread"], account_id=111, start_id=999_999)
    client.post("/api/predict", json=ask)
    assert (predict.cache.misses, predict.cache.hits) == (2, 2)


def test_the_cache_is_bounded(app, voices):
    small = predict.ModelCache(entries=2)
    for key in ("a", "b", "c"):
        small.put((key,), object())
    assert len(small) == 2 and small.get(("a",)) is None and small.get(("c",)) is not None


def test_a_changed_model_version_misses_the_cache(app, client, voices, monkeypatch):
    ask = {"usernames": voices, "text": "sourdough at dawn"}
    client.post("/api/predict", json=ask)
    monkeypatch.setattr(predict, "MODEL_VERSION", predict.MODEL_VERSION + 1)
    client.post("/api/predict", json=ask)
    assert predict.cache.misses == 2


def section(page: str, marker: str, end: str) -> str:
    """The page's text from ``marker`` to the next ``end``."""
    start = page.index(marker)
    return page[start : page.index(end, start)]


def test_result_page_gives_every_account_one_colour_in_bars_legend_words_and_reasons(client, voices, add_account):
    add_account("gardener", many_posts("compost and seedlings", ["tomato", "trowel", "mulch", "rain"], 8))
    text = "warm bread and flour, Route 12 late, tests green, compost the tomato"
    page = client.post("/compare", data={"usernames": [*voices, "gardener"], "text": text}).get_data(as_text=True)
    assert 'id="trust"' in page and "Chance level for 4 accounts: 25.0%" in page
    assert "has only 6 stored posts" in page
    ranking = section(page, 'id="ranking"', "</ol>")
    ranked = re.findall(r'<li class="candidate who-(\d)[^"]*">\s*<span class="who"><a href="[^"]+">@(\w+)</a>', ranking)
    assert [int(colour) for colour, _ in ranked] == [0, 1, 2, 3]  # ranking order is colour order
    names = [name for _, name in ranked]
    assert sorted(names) == sorted([*voices, "gardener"])
    assert len(re.findall(r'<rect class="bar-fill" width="[\d.]+"', ranking)) == 4 and "<meter" not in page
    legend = section(page, 'id="legend"', "</ul>")
    assert re.findall(r'<span class="swatch who-(\d)" aria-hidden="true"></span>@(\w+)', legend) == ranked
    why = section(page, 'id="why"', '<section class="card" id="again">')
    heading = r'<div class="why-account who-(\d)"><h3><span class="swatch who-\d"[^>]*></span>Pointing to @(\w+)'
    blocks = re.findall(heading, why)
    assert blocks == ranked  # one block per account, in ranking order
    marks = re.findall(r'<mark class="pull who-(\d) s([123])" title="toward @(\w+) \(\+[\d.]+\)">', page)
    colour_of = {name: colour for colour, name in ranked}
    assert len(marks) >= 8 and all(colour_of[name] == colour for colour, _, name in marks)
    assert {"baker", "commuter", "coder", "gardener"} <= {name for *_, name in marks}  # each pulls some words


def test_cli_evaluate_prints_accuracy_and_confusion(runner, add_account):
    add_account("bakes_and_loaves", many_posts("fresh loaves and flour", ["rye", "crust", "oven"], 40))
    add_account("buses", many_posts("Route delayed minutes", ["timetable", "depot", "stop"], 40))
    result = runner.invoke(args=["evaluate", "bakes_and_loaves", "buses"])
    assert result.exit_code == 0, result.output
    assert "Held-out accuracy: 100.0% on 16 newest posts (chance 50.0%)." in result.output
    header, *rows = (line.split() for line in result.output.splitlines()[1:])
    assert header[:3] == ["true", "\\", "predicted"] and header[-1] == "recall"
    assert sorted(header[3:-1]) == ["@bakes_and_loaves", "@buses"]  # whole names, not cut to fit
    for row in rows:  # each account's 8 held-out posts all in its own column
        assert row[1:-1] == ["8" if name == row[0] else "0" for name in header[3:-1]] and row[-1] == "100.0%"
    assert sorted(row[0] for row in rows) == ["@bakes_and_loaves", "@buses"]
    result = runner.invoke(args=["evaluate", "bakes_and_loaves"])
    assert result.exit_code != 0 and "at least two" in result.output


def test_the_fit_matches_scikit_learns_logistic_regression(app, voices, monkeypatch):
    """Run to convergence and without the temperature, the solver lands where scikit-learn's does."""
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setattr(recipe, "GTOL", 1e-9)
    monkeypatch.setattr(recipe, "MAX_ITER", 5000)
    monkeypatch.setattr(recipe, "TEMPERATURE", 1.0)
    with app.app_context():
        data = predict.load_training_data([find_account("x", n).id for n in (111, 222, 333)])
    model = recipe.Model.fit(data.counts, data.labels)
    X = model.weighting.transform(data.counts)
    reference = LogisticRegression(C=recipe.C, tol=1e-8, max_iter=5000).fit(X, data.labels)
    probe = features.count_matrix(["rye loaves", "Route 12 late", "tests green", "hello"])
    expected = reference.predict_proba(model.weighting.transform(probe))
    np.testing.assert_allclose(model.probabilities(probe), expected, atol=2e-3)


def test_each_account_is_fitted_on_its_newest_posts_only(app, add_account, monkeypatch):
    monkeypatch.setattr(predict, "MAX_TRAIN_POSTS", 10)
    add_account("bakes", many_posts("fresh loaves", ["rye", "crust"], 30), account_id=1)
    with app.app_context():
        data = predict.load_training_data([find_account("x", 1).id])
        newest = db.session.scalars(sa.select(Tweet.id).order_by(Tweet.created_at.desc()).limit(10)).all()
        expected = features.decode(db.session.scalars(sa.select(Tweet.features).where(Tweet.id.in_(newest))).all())
    assert data.counts.shape[0] == 10 and data.newest_first_rank.tolist() == list(range(10))
    assert abs(data.counts.sum() - expected.sum()) < 1e-6


def test_every_voice_wins_its_own_text(client, voices):
    for username, texts in VOICES.items():
        body = client.post("/api/predict", json={"usernames": voices, "text": texts[0][:60]}).get_json()
        assert body["ranking"][0]["username"] == username


def test_weighting_is_sublinear_tf_idf_with_each_block_of_unit_length():
    """The fast transform agrees with scikit-learn's smoothed IDF over the kept columns, block by block."""
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.preprocessing import normalize

    texts = ["rye loaves rise", "rye crust, rye oven", "Route 12 late", "late again on route 12", "rye late"]
    counts = features.count_matrix(texts)
    weighting = recipe.Weighting.fit(counts)
    expected = []
    for columns in weighting.columns:
        block = counts[:, columns].astype(np.float64)
        block.data = np.log1p(block.data)  # log(1 + tf): a repeat counts for less, and once is not zero
        tfidf = TfidfTransformer(norm=None).fit(block)
        expected.append(normalize(tfidf.transform(block)).toarray())
    np.testing.assert_allclose(weighting.transform(counts).toarray(), np.hstack(expected), atol=1e-6)


@pytest.mark.parametrize("span_max_rows", [0, 10_000], ids=["over n-gram columns", "in the span of the posts"])
def test_both_ways_of_fitting_reach_scikit_learns_model(app, voices, add_account, monkeypatch, span_max_rows):
    """Whichever way a request fits (set by the number of posts), the model is the same one.

    A repeated post and a post with no kept n-grams make the Gram matrix singular; the fit must not mind.
    """
    from sklearn.linear_model import LogisticRegression

    add_account("echo", ["same words again", "same words again", "🙂", "same words once more"] * 3, account_id=444)
    monkeypatch.setattr(recipe, "SPAN_MAX_ROWS", span_max_rows)
    monkeypatch.setattr(recipe, "GTOL", 1e-9)
    monkeypatch.setattr(recipe, "MAX_ITER", 5000)
    with app.app_context():
        ids = [find_account("x", n).id for n in (111, 222, 333, 444)]
        data = predict.load_training_data(ids)
    assert isinstance(recipe.fits_for(data.counts), recipe.SpanFits if span_max_rows else recipe.PrimalFits)
    fitted = predict.fit_with_trust(data, ids)
    X = fitted.model.weighting.transform(data.counts)
    reference = LogisticRegression(C=recipe.C, tol=1e-10, max_iter=5000).fit(X, data.labels)
    probe = features.count_matrix(["rye loaves", "Route 12 late", "tests green", "same words", "hello"])
    expected = reference.predict_proba(fitted.model.weighting.transform(probe))
    untempered = replace(fitted.model, temperature=1.0)
    np.testing.assert_allclose(untempered.probabilities(probe), expected, atol=2e-3)
    held_out = holdout_mask(data)
    reference = LogisticRegression(C=recipe.C, tol=1e-10, max_iter=5000).fit(X[~held_out], data.labels[~held_out])
    assert fitted.trust.correct == int((reference.predict(X[held_out]) == data.labels[held_out]).sum())


def test_a_few_entries_and_many_are_weighted_alike(monkeypatch):
    """Binary search (a typed text) and the lookup table (a fit) map hashed columns the same way."""
    texts = ["rye loaves rise", "rye crust, rye oven", "Route 12 late", "late again on route 12", "rye late"]
    counts = features.count_matrix(texts)
    weighting = recipe.Weighting.fit(counts)
    monkeypatch.setattr(recipe, "SEARCH_MAX_NNZ", 0)
    by_table = weighting.transform(counts).toarray()
    monkeypatch.setattr(recipe, "SEARCH_MAX_NNZ", 10**9)
    np.testing.assert_array_equal(weighting.transform(counts).toarray(), by_table)
    unseen = features.count_matrix(["zebra quokka"])
    assert weighting.transform(unseen).nnz == 0
    empty = recipe.Weighting.fit(features.count_matrix(["a"]))  # nothing kept: every column is unseen
    assert empty.transform(counts).nnz == 0
