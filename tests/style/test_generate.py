"""Write like them: the character model, drawing posts, the account page, the API and the CLI."""

import re

import numpy as np
import pytest
import sqlalchemy as sa

from tests.support.data import count_rows, generate_time, voice_posts
from twitapp import jobs
from twitapp.extensions import db
from twitapp.ingest.store import import_tweets
from twitapp.models import ModelVersion, Tweet, User, find_user
from twitapp.sources.records import AccountRecord, PostRecord
from twitapp.style import kneser_ney, sampling
from twitapp.style import model as generate


def trained(app, username: str) -> ModelVersion:
    with app.app_context():
        job = jobs.run_here("style-train", username)
        assert job.state == "done", job.error
        return db.session.get(ModelVersion, job.result["model"])


# -- the model --------------------------------------------------------------------------------------------


def test_every_next_character_distribution_sums_to_one():
    model = kneser_ney.CharModel.train(voice_posts("baker", 60), order=6)
    rng = np.random.default_rng(0)
    for text in voice_posts("commuter", 5):  # contexts the model never saw, and characters it never saw
        ids = [model.index.get(c, sampling.UNK) for c in text]
        for cut in rng.integers(0, len(ids), 4):
            p = model.next_distribution(ids[:cut])
            assert (p >= 0).all() and p[sampling.BOS] == p[sampling.UNK] == 0 and p.sum() == pytest.approx(1.0)


def test_drawing_and_scoring_give_each_character_the_same_probability():
    """Drawing (next_distribution, one context for every symbol) and scoring (probabilities, every symbol
    of a post at once) compute the blend apart; they must agree, less the start and unknown symbols'
    share, which drawing removes."""
    model = kneser_ney.CharModel.train(voice_posts("baker", 60), order=6)
    for post in [*voice_posts("baker", 3, seed=9), *voice_posts("commuter", 2)]:  # seen and unseen contexts
        scored = model.probabilities([post])
        ids = [model.index.get(c, sampling.UNK) for c in post] + [sampling.EOS]
        for i, symbol in enumerate(ids):
            if symbol == sampling.UNK:
                continue
            drawn = model.next_distribution(ids[:i])[symbol]
            assert drawn == pytest.approx(scored[i], rel=0.05), (post, i)  # the removed share is small
            assert drawn >= scored[i] * (1 - 1e-9)  # removing a share can only raise the others


def test_bits_per_character_are_honest_and_survive_storage():
    posts = voice_posts("baker", 80)
    model = kneser_ney.CharModel.train(posts[:70], order=8)
    by_hand = []
    for post in posts[70:73]:  # the same figure, one symbol at a time from the full distribution
        ids = [model.index.get(c, sampling.UNK) for c in post] + [sampling.EOS]
        for i, symbol in enumerate(ids):
            hashes = np.full(model.vocabulary, kneser_ney._SEED, dtype=np.uint64)
            p = np.full(model.vocabulary, 1.0 / model.vocabulary)
            context = [sampling.BOS] * (model.order - 1) + ids[:i]
            for k in range(1, model.order + 1):
                if k > 1:
                    hashes = kneser_ney._extend(hashes, np.full(model.vocabulary, context[-(k - 1)], dtype=np.int32))
                keys = kneser_ney._key(hashes, np.arange(model.vocabulary))
                p = kneser_ney._interpolate(model.tables[k - 1], hashes, keys, p, model.scale)
            assert p.sum() == pytest.approx(1.0)
            by_hand.append(-np.log2(p[symbol]))
    assert model.bits_per_char(posts[70:73]) == pytest.approx(np.mean(by_hand))
    restored = kneser_ney.CharModel.from_bytes(model.to_bytes())
    assert restored.bits_per_char(posts[70:]) == pytest.approx(model.bits_per_char(posts[70:]))
    # It has learned this voice: its own unseen posts cost far fewer bits than another voice's.
    assert model.bits_per_char(posts[70:]) < 0.6 * model.bits_per_char(voice_posts("coder", 10))


def test_the_order_is_chosen_on_held_out_posts():
    posts = voice_posts("commuter", 100)
    trial = kneser_ney.CharModel.train(posts[:90], order=kneser_ney.MAX_ORDER, every_order=True)
    order, scale, grid = trial.choose(posts[90:])
    assert grid[(order, scale)] == min(grid.values()) and len(grid) == len(kneser_ney.ORDERS) * 4
    assert grid[(3, 1.0)] > grid[(order, scale)]  # three characters of context are not enough here


def test_drawn_posts_end_naturally_keep_the_opening_and_never_copy():
    posts = voice_posts("baker", 80)
    model, figures = generate.fit(posts)
    drawn, _ = sampling.draw(model, posts, count=8, temperature=0.9, opening="fresh sourdough", seed=3)
    assert len(drawn) == 8
    for text in drawn:
        assert text.startswith("fresh sourdough") and len(text) <= sampling.MAX_POST_CHARS
        assert not sampling.copies(text, posts)
    assert figures["order"] in kneser_ney.ORDERS and figures["posts"] == 80


def test_a_model_that_can_only_copy_gives_nothing_rather_than_a_copy():
    line = "the one and only thing this account ever says, word for word, every single day"
    model = kneser_ney.CharModel.train([line] * 30, order=12)
    drawn, rejected = sampling.draw(model, [line], count=3, temperature=0.2, seed=0, tries=5)
    assert drawn == [] and rejected == 15
    assert sampling.copies(line[:45] + " and more", [line]) and not sampling.copies(line[:39] + "!", [line])


def test_links_are_dropped_before_learning():
    assert sampling.normalise("Read it https://t.co/abc &amp; share  pic.twitter.com/xyz") == "Read it & share"
    assert sampling.normalise("Tune in: http://example.com/a-long-pa … #kent") == "Tune in: #kent"


def test_a_small_account_borrows_language_from_others_and_keeps_a_working_mixture():
    own = voice_posts("baker", 30, seed=1)
    lent = voice_posts("baker", 300, seed=2)  # others who write much like it: the pool should help
    model, figures = generate.fit(own, pool=lent)
    assert isinstance(model, kneser_ney.Mixture) and figures["own_weight"] < 1.0 and figures["pool_posts"] == 300
    _, alone = generate.fit(own)  # both figures: trained on the oldest 27, scored on the newest 3
    assert figures["held_out_bits_per_char"] < 0.9 * alone["held_out_bits_per_char"]
    p = model.next_distribution([model.index[c] for c in "rye "])
    assert p.sum() == pytest.approx(1.0)
    restored = kneser_ney.CharModel.from_bytes(model.to_bytes())
    assert isinstance(restored, kneser_ney.Mixture) and restored.weight == model.weight
    assert restored.bits_per_char(own) == pytest.approx(model.bits_per_char(own))
    # Unrelated posts lend nothing: the account keeps its own model.
    model, figures = generate.fit(voice_posts("coder", 40), pool=[f"{n} {n * 7} {n * 13}" for n in range(200)])
    assert "own_weight" not in figures or figures["own_weight"] >= 0.9


def test_a_draft_that_repeats_a_lent_post_is_drawn_again():
    line = "a sentence the other accounts keep posting, word for word, every single day of the week"
    own = voice_posts("baker", 25)
    model, _ = generate.fit(own, pool=[line] * 200)
    drafts, rejected = sampling.draw(model, [*own, line], count=5, temperature=0.3, seed=0, tries=10)
    assert rejected > 0 and not any(line[:40] in d for d in drafts)


# -- the pages, the API and the CLI -------------------------------------------------------------------------


def test_an_account_page_trains_then_writes_posts_that_can_be_compared(app, client, writers):
    # (the other two accounts are lent to its model; what it writes must copy none of them either)
    page = client.get("/user/baker").get_data(as_text=True)
    assert "Train a style model" in page and "Write posts" not in page
    assert client.post("/user/baker/style").status_code == 302
    jobs.thread_worker.join()
    page = client.get("/user/baker").get_data(as_text=True)
    assert "Trained a style model of @baker on 80 posts" in page and "Write posts" in page
    response = client.post("/user/baker/write", data={"temperature": "1.0", "opening": "fresh"})
    assert response.status_code == 200
    written = re.findall(r'<ol class="posts" id="written">(.*?)</ol>', response.get_data(as_text=True), re.S)[0]
    posts = re.findall(r'<li class="post"><p>(.*?)</p>', written)
    assert len(posts) == 5 and all(p.startswith("fresh") for p in posts)
    link = re.findall(r'href="(/\?text=[^"]+)"', written)[0].replace("&amp;", "&")
    assert "fresh" in client.get(link).get_data(as_text=True).split('id="text"')[1][:400]  # the compare form, filled


def test_the_api_writes_posts_and_explains_what_it_refuses(app, client, writers):
    response = client.post("/api/users/coder/generate", json={})
    assert response.status_code == 409 and "No style model of @coder" in response.get_json()["message"]
    assert client.post("/api/users/nobody/generate", json={}).status_code == 404
    broken = client.post("/api/users/coder/style", data='{"engine": "lstm"', content_type="application/json")
    assert broken.status_code == 400 and "Send a JSON object" in broken.get_json()["message"]  # not a silent default
    started = client.post("/api/users/coder/style", content_type="application/json")  # no body: the default
    assert started.status_code == 202
    jobs.thread_worker.join()
    assert client.get(started.headers["Location"]).get_json()["state"] == "done"
    body = client.post("/api/users/coder/generate", json={"count": 3, "temperature": 1.2}).get_json()
    assert len(body["posts"]) == 3 and body["model"]["subject"] == "coder" and body["model"]["kind"] == "style"
    for request, message in [
        ({"count": 0}, '"count" must be a whole number from 1 to 10'),
        ({"count": "5"}, '"count" must be a whole number'),
        ({"temperature": 9}, '"temperature" must be from 0.2 to 2.0'),
        ({"temperature": "hot"}, '"temperature" must be a number'),
        ({"opening": "x" * 101}, "An opening has at most 100 characters"),
        (["a list"], "Send a JSON object"),
    ]:
        response = client.post("/api/users/coder/generate", json=request)
        assert response.status_code == 400 and message in response.get_json()["message"], request
    # An opening that already repeats a real post could only give copies: said at once, not 200 tries later.
    with app.app_context():
        coder = sa.select(User.id).where(User.username == "coder").scalar_subquery()
        real = db.session.scalars(sa.select(Tweet.text).where(Tweet.user_id == coder).limit(1)).one()
    response = client.post("/api/users/coder/generate", json={"opening": real[:60]})
    assert response.status_code == 400
    assert "repeats 40 or more characters of a real post" in response.get_json()["message"]


def test_training_again_retires_the_old_model_and_a_damaged_one_is_never_loaded(app, client, writers):
    first, second = trained(app, "baker"), trained(app, "baker")
    page = client.get("/models").get_data(as_text=True)
    assert page.count('href="/user/baker#style">@baker</a>') == 2 and "in service" in page
    listed = client.get("/api/models?kind=style").get_json()["models"]
    assert [(m["version"], m["status"], m["subject"]) for m in listed] == [
        (first.id, "retired", "baker"),
        (second.id, "champion", "baker"),
    ]
    assert client.get("/api/models?kind=nonsense").status_code == 400
    with app.app_context():
        statuses = dict(db.session.execute(sa.select(ModelVersion.id, ModelVersion.status)).all())
        assert statuses == {first.id: "retired", second.id: "champion"}
        db.session.execute(sa.update(ModelVersion).where(ModelVersion.id == second.id).values(artefact=b"broken"))
        db.session.commit()
        generate._service.clear()
    response = client.post("/api/users/baker/generate", json={})
    assert response.status_code == 409


def test_too_few_posts_is_explained(app, runner):
    with app.app_context():
        import_tweets(AccountRecord(5, "tiny", "Tiny"), [PostRecord(1, "hello", generate_time(0))], source="archive")
    result = runner.invoke(args=["generate", "train", "tiny"])
    assert result.exit_code != 0 and "needs at least 20 posts with text; it has 1" in result.output
    assert count_rows(app, ModelVersion) == 0


def test_the_cli_trains_writes_and_evaluates(app, runner, writers):
    result = runner.invoke(args=["generate", "train", "@commuter"])
    assert result.exit_code == 0 and "Trained a style model of @commuter" in result.output
    result = runner.invoke(args=["generate", "write", "commuter", "--count", "2", "--seed", "4"])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 2
    result = runner.invoke(args=["generate", "evaluate", "commuter", "--count", "20"])
    assert result.exit_code == 0, result.output
    assert "held-out bits per character" in result.output
    split = re.search(r"trained on its oldest (\d+) posts, tested on the newest (\d+)", result.output)
    with app.app_context():
        stored = db.session.scalar(sa.select(sa.func.count()).where(Tweet.user_id == find_user("commuter").id))
    assert split and int(split.group(1)) + int(split.group(2)) == stored and abs(int(split.group(2)) - stored / 10) <= 1
    drafts = re.search(r"copy rate (\d+)% of drafts repeated 40 characters .* \((\d+) drawn again", result.output)
    assert drafts and (int(drafts.group(1)) > 0) == (int(drafts.group(2)) > 0)
    fidelity = int(re.search(r"style fidelity (\d+)%", result.output).group(1))
    assert fidelity >= 70 and "among it and @baker, @coder" in result.output
    assert runner.invoke(args=["generate", "write", "nobody"]).exit_code != 0


def test_an_account_model_records_the_posts_it_borrowed_and_copies_none_of_them(app, client):
    small = [PostRecord(1_000 + i, t, generate_time(i)) for i, t in enumerate(voice_posts("baker", 25, seed=1))]
    large = [PostRecord(5_000 + i, t, generate_time(i)) for i, t in enumerate(voice_posts("baker", 300, seed=2))]
    with app.app_context():
        import_tweets(AccountRecord(1, "cornerbakery", "Corner Bakery"), small, source="archive")
        import_tweets(AccountRecord(2, "bigbakery", "Big Bakery"), large, source="archive")
    row = trained(app, "cornerbakery")
    with app.app_context():
        big = find_user("bigbakery").id
        newest = db.session.scalar(sa.select(sa.func.max(Tweet.id)).where(Tweet.user_id == big))
    assert row.metrics["own_weight"] < 1.0 and row.params["pool"] == {str(big): newest}
    body = client.post("/api/users/cornerbakery/generate", json={"count": 5, "temperature": 0.5}).get_json()
    real = [p.text for p in small + large]
    assert body["posts"] and not any(sampling.copies(post, real) for post in body["posts"])


def per_account_pool(user_id: int, until: dict | None) -> tuple[list[str], dict[str, int]]:
    """The pool as it was read before: one query per account (the reference the one query must match)."""
    if until is None:
        others = db.session.scalars(sa.select(User.id).where(User.id != user_id).order_by(User.id)).all()
        until = dict.fromkeys(map(str, others))
    texts, reached = [], {}
    for other, newest in until.items():
        query = sa.select(Tweet.id, Tweet.text).where(Tweet.user_id == int(other))
        if newest is not None:
            query = query.where(Tweet.id <= newest)
        rows = db.session.execute(query.order_by(Tweet.id.desc()).limit(generate.POOL_PER_ACCOUNT)).all()
        rows = rows[: max(generate.POOL_MAX - len(texts), 0)]
        if rows:
            texts += [text for _, text in rows]
            reached[other] = rows[0].id
    return texts, reached


def test_the_pool_is_read_in_one_query_and_matches_reading_it_account_by_account(app, writers, monkeypatch):
    monkeypatch.setattr(generate, "POOL_PER_ACCOUNT", 30)
    monkeypatch.setattr(generate, "POOL_MAX", 50)  # the second account's share is cut short
    with app.app_context():
        db.session.add(
            User(platform_id="2", username="silent", name="Silent", source="demo")
        )  # an account without posts
        db.session.commit()
        ids = dict(db.session.execute(sa.select(User.username, User.id)).all())

        def queries(*args):
            """``pool_of(*args)`` and the statements it sent."""
            statements = []

            def counted(connection, cursor, statement, *rest):
                statements.append(statement)

            sa.event.listen(db.engine, "before_cursor_execute", counted)
            try:
                return generate.pool_of(*args), statements
            finally:
                sa.event.remove(db.engine, "before_cursor_execute", counted)

        (texts, reached), statements = queries(ids["baker"])
        assert len(statements) == 1
        assert (texts, reached) == per_account_pool(ids["baker"], None)
        assert list(reached) == [str(ids["commuter"]), str(ids["coder"])] and len(texts) == 50
        # Read again as a stored model's params name it: in that order, up to each share's newest post.
        until = {str(ids["coder"]): reached[str(ids["coder"])] - 40, "2": None, str(ids["commuter"]): None}
        again, statements = queries(ids["baker"], until)
        assert len(statements) == 1 and again == per_account_pool(ids["baker"], until)
        assert list(generate.pool_of(ids["baker"], until)[1]) == [str(ids["coder"]), str(ids["commuter"])]
        assert generate.pool_of(ids["baker"], {}) == ([], {})


def test_a_style_model_is_loaded_once_and_again_when_a_new_one_is_trained(app, client, writers, monkeypatch):
    trained(app, "baker")
    loads = []
    real_load = generate.load
    monkeypatch.setattr(generate, "load", lambda engine, blob: loads.append(engine) or real_load(engine, blob))
    for _ in range(2):
        assert client.post("/api/users/baker/generate", json={"count": 1}).status_code == 200
    assert loads == ["kneser-ney"]
    second = trained(app, "baker")
    body = client.post("/api/users/baker/generate", json={"count": 1}).get_json()
    assert body["model"]["version"] == second.id and loads == ["kneser-ney"] * 2


def test_after_a_reset_an_account_imported_again_under_the_same_handle_has_no_style_model(app, client, runner, writers):
    """Style models are kept by handle: a reset must take them with the accounts, or a new account that
    happens to take the handle would write in the old one's voice."""
    trained(app, "baker")
    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    assert count_rows(app, ModelVersion) == 0
    with app.app_context():
        posts = [PostRecord(1, "a different baker entirely", generate_time(1))]
        import_tweets(AccountRecord(99, "baker", "Baker"), posts, source="archive")
    response = client.post("/api/users/baker/generate", json={})
    assert response.status_code == 409 and "No style model of @baker" in response.get_json()["message"]


def test_a_stored_style_model_that_is_not_one_is_not_served_and_the_api_says_so(app, client, writers):
    """Bytes that match their hash but hold no model (a foreign npz) are refused like a damaged row."""
    import io

    from twitapp import artefacts

    row = trained(app, "baker")
    buffer = io.BytesIO()
    np.savez(buffer, something_else=np.arange(3))
    with app.app_context():
        stored = db.session.get(ModelVersion, row.id)
        stored.artefact, stored.sha256 = buffer.getvalue(), artefacts.digest(buffer.getvalue())
        db.session.commit()
        generate._service.clear()
    response = client.post("/api/users/baker/generate", json={})
    assert response.status_code == 409 and "cannot be used here" in response.get_json()["message"]
