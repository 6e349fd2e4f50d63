"""Threads: several posts attributed at once, through the API, the form and the CLI.

The thread is ranked as a whole, each post shows its own top account, the probabilities are pooled
more cautiously than independent posts would be, and the trust figure speaks for the thread's length.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.support.html import form_fields
from twitapp.attribution import model as predict
from twitapp.attribution import thread
from twitapp.attribution.reasons import explain
from twitapp.attribution.trust import HeldOut, Trust
from twitapp.models import Tweet, User

BREAD = ["fresh sourdough out of the oven, come early", "rye loaves cooling on the counter, still warm"]
BUS = "Route 12 was late again this morning #transit"


def ask(client, usernames, **body):
    response = client.post("/api/predict", json={"usernames": usernames, **body})
    return response.status_code, response.get_json()


def test_a_thread_of_one_is_exactly_the_single_posts_answer(client, voices):
    _, single = ask(client, voices, text=BREAD[0])
    _, thread_of_one = ask(client, voices, texts=[BREAD[0]])
    assert thread_of_one == single
    assert single["texts"] == [BREAD[0]] and single["text"] == BREAD[0]
    assert "thread_posts" not in single["trust"]  # today's single-text figure, as it was


def test_a_thread_is_ranked_as_a_whole_and_shows_the_post_that_points_elsewhere(client, voices):
    status, body = ask(client, voices, texts=[*BREAD, BUS])
    assert status == 200
    assert body["ranking"][0]["username"] == "baker"
    assert sum(r["probability"] for r in body["ranking"]) == pytest.approx(1.0, abs=1e-3)
    assert [p["text"] for p in body["posts"]] == [*BREAD, BUS]
    tops = [p["top"]["username"] for p in body["posts"]]
    assert tops == ["baker", "baker", "commuter"]
    # Each post's own answer is what that post gets alone.
    for post in body["posts"]:
        _, alone = ask(client, voices, text=post["text"])
        assert post["top"] == {
            "username": alone["ranking"][0]["username"],
            "probability": alone["ranking"][0]["probability"],
        }
    assert body["text"] == "\n\n".join([*BREAD, BUS])
    assert {w["post"] for w in body["reasons"]["words"]} == {1, 2, 3}


def test_pooled_threads_are_surer_than_one_post_and_less_sure_than_independent_posts(client, voices):
    """Summed log-probabilities (a plain product) would be far too sure; the pooled answer is not."""
    _, pooled = ask(client, voices, texts=BREAD)
    alone = [ask(client, voices, text=text)[1] for text in BREAD]
    probability = [{r["username"]: r["probability"] for r in a["ranking"]} for a in alone]
    product = {u: probability[0][u] * probability[1][u] for u in voices}
    independent = product["baker"] / sum(product.values())
    assert pooled["ranking"][0]["username"] == "baker"
    top = pooled["ranking"][0]["probability"]
    assert max(p["baker"] for p in probability) < top < independent


def test_the_trust_figure_speaks_for_the_threads_length(client, writers):
    _, single = ask(client, writers, text="fresh sourdough out at six come early friends")
    _, three = ask(client, writers, texts=["fresh sourdough out at six", "rye loaves still warm", "come early all"])
    trust = three["trust"]
    assert trust["thread_posts"] == 3
    # 16 held-out posts of each of the 3 accounts make 5 disjoint threads of 3 each.
    assert trust["tested_posts"] == single["trust"]["tested_posts"] == 48 and trust["tested_threads"] == 15
    assert trust["held_out_accuracy_low"] < trust["held_out_accuracy"]
    # Threads of 10 posts need 20 held-out posts per account: the longest measurable length speaks instead.
    _, ten = ask(client, writers, texts=[f"fresh sourdough number {i}" for i in range(10)])
    assert ten["trust"]["thread_posts"] == 8 and ten["trust"]["tested_threads"] == 6


def test_a_warm_thread_needs_no_refit_whatever_its_length(client, voices):
    predict.cache.clear()
    ask(client, voices, text=BREAD[0])
    for n in (2, 5, 25):
        status, _ = ask(client, voices, texts=[BREAD[i % 2] for i in range(n)])
        assert status == 200
    assert predict.cache.misses == 1 and predict.cache.hits == 3


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["bread", "rolls", "  "], "Post 3 is empty"),
        (["bread", "x" * 312], "Post 2 can be at most 280 characters; this one has 312."),
        (["bread"] * 26, "A thread holds at most 25 posts; this one has 26."),
        ([], "Type the text of a post"),
        ([" "], "Type the text of a post"),
    ],
)
def test_bad_threads_get_a_message_naming_the_post(client, voices, texts, message):
    status, body = ask(client, voices, texts=texts)
    assert status == 400 and message in body["message"]


def test_the_api_refuses_malformed_threads(client, voices):
    for body in ({"texts": "one post"}, {"texts": ["ok", 5]}, {"text": "a", "texts": ["b"]}):
        status, answer = ask(client, voices, **body)
        assert status == 400 and answer["message"], body


def test_the_form_takes_a_thread_in_boxes_or_blocks_and_keeps_it_for_the_next_step(client, writers):
    voices = writers
    # One box with posts separated by a blank line, and a second box: three posts.
    response = client.post("/compare", data={"usernames": voices, "text": [f"{BREAD[0]}\n \n{BREAD[1]}", BUS]})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "A thread of 3 posts, post by post" in page
    assert page.count('class="post-top"') == 3
    assert re.search(r"threads of 3 posts were attributed right\s+<strong>\d+%</strong>", page)
    assert "the thread as a whole points to @baker" in page  # the bus post points elsewhere
    form = client.post("/compare/edit", data=form_fields(page, "edit")).get_data(as_text=True)
    box = re.search(r'<textarea id="text"[^>]*>([^<]*)</textarea>', form).group(1)
    assert box.split("\n\n") == [BREAD[0], BREAD[1], BUS]


def test_the_form_names_the_post_to_fix_and_keeps_every_box(client, voices):
    response = client.post("/compare", data={"usernames": voices, "text": [BREAD[0], "", BUS]})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Post 2 is empty" in page
    assert page.count('name="text"') == 3 and BUS in page


def test_cli_predict_takes_a_thread(runner, writers):
    voices = writers
    result = runner.invoke(args=["predict", *voices, "--text", BREAD[0], "--text", BREAD[1], "--text", BUS])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith("@baker")
    assert re.search(r"3\.\s+\S+\s+@commuter\s+\(points elsewhere\)", result.output)
    assert re.search(r"threads of 3 posts were attributed right \d+% of the time", result.output)
    result = runner.invoke(args=["predict", *voices, "--text", BREAD[0], "--text", "y" * 300])
    assert result.exit_code != 0 and "Post 2 can be at most 280 characters; this one has 300." in result.output


def test_a_prediction_stores_nothing(app, client, voices):
    from tests.support.data import count_rows

    before = (count_rows(app, Tweet), count_rows(app, User))
    ask(client, voices, texts=[*BREAD, BUS])
    client.post("/compare", data={"usernames": voices, "text": [BREAD[0], BUS]})
    assert (count_rows(app, Tweet), count_rows(app, User)) == before


def test_thread_reasons_add_up_over_the_posts_and_share_one_scale(app, voices):
    with app.app_context():
        users = predict.resolve_users(voices)
        fitted, _ = predict.fitted_for(users)
    names = {u.id: u.username for u in users}
    order = sorted(names)
    posts = [BREAD[0], BUS]
    together = explain(fitted.model, posts, order, names)
    alone = [explain(fitted.model, post, order, names) for post in posts]
    for place in range(len(order)):
        assert together.accounts[place].total == pytest.approx(sum(a.accounts[place].total for a in alone), abs=1e-9)
    # One scale: a stronger pull is never shaded lighter, whichever post it is in.
    words = [(score, shade) for post in together.posts for _, who, shade, score in post if who is not None]
    for score, shade in words:
        assert all(shade >= other for s, other in words if s < score)
    assert max(shade for _, shade in words) == 3


def held_out(mean_of_second: float, seed: int = 0) -> HeldOut:
    """50 held-out posts of each of two accounts, answered by a model calibrated post by post: each row is
    the log-likelihood of a noisy observation. The second account's posts lean toward it by
    ``mean_of_second`` (0: the model cannot recognise that account at all)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1], 50)
    x = np.where(truth == 0, rng.normal(0.8, 1.0, size=100), -rng.normal(mean_of_second, 1.0, size=100))
    return HeldOut(np.column_stack([0.8 * x, -0.8 * x]), truth)


def test_threads_are_pooled_as_their_held_out_threads_ask():
    """Independent posts: summing their logits is right, so T_n stays near T_1. An account whose posts
    all mislead together (one that the model cannot recognise): summing would be far too sure, so T_n grows.
    A thread of one keeps the single-post temperature and figure."""
    single = Trust(100, 70, [7, 9], np.zeros((2, 2), dtype=np.int64))
    independent = thread.Threads(held_out(0.8), 1.0, single)
    assert independent.temperature(1) == 1.0 and independent.trust(1) is single
    assert independent.temperature(3) < 1.5
    assert independent.trust(5).accuracy > independent.trust(2).accuracy > single.accuracy
    assert independent.trust(5).length == 5
    assert independent.trust(25).length == 25  # 50 held-out posts per account: 2 threads of 25
    misleading = thread.Threads(held_out(0.0), 1.0, single)
    assert misleading.temperature(5) > 1.8 * independent.temperature(5)


def test_lengths_without_enough_held_out_posts_fall_back():
    single = Trust(40, 30, [7, 9], np.zeros((2, 2), dtype=np.int64))
    few = held_out(0.8)
    few = HeldOut(few.logits[np.r_[0:20, 50:70]], few.truth[np.r_[0:20, 50:70]])  # 20 per account
    threads = thread.Threads(few, 1.0, single)
    assert threads.trust(10).length == 10 and threads.trust(11).length == 10
    grown = threads.temperature(10) * (20 / 10) ** thread.THREAD_EXPONENT
    assert threads.temperature(20) == pytest.approx(grown)
    nothing = thread.Threads(HeldOut(np.zeros((0, 2)), np.zeros(0, int)), 1.2, Trust(0, 0, [7, 9], np.zeros((2, 2))))
    assert nothing.temperature(4) == pytest.approx(thread.prior_temperature(1.2, 4))
    assert nothing.trust(4).accuracy is None


def test_a_long_thread_goes_back_to_the_form_whole(client, voices):
    """25 posts of 280 characters: far more than an address may hold, so the way back is a form."""
    posts = [(f"Post {n} about rye loaves and the oven at dawn. " * 7)[:280].strip() for n in range(1, 26)]
    page = client.post("/compare", data={"usernames": ["baker", "coder"], "text": posts}).get_data(as_text=True)
    fields = form_fields(page, "edit")
    assert fields["text"] == ["\n\n".join(posts)] and sorted(fields["usernames"]) == ["baker", "coder"]
    form = client.post("/compare/edit", data=fields).get_data(as_text=True)
    box = re.search(r'<textarea id="text"[^>]*>([^<]*)</textarea>', form).group(1)
    assert box.split("\n\n") == posts
