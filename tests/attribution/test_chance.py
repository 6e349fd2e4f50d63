"""Honest about chance: accounts the model cannot tell apart are said to be so, on the page, the API and the CLI."""

import random

import pytest

from tests.support.data import shuffled_posts
from twitapp.attribution import model as predict


@pytest.fixture
def patternless(add_account):
    """Three accounts whose posts are random shuffles of words from one pool: there is nothing to learn."""
    rng = random.Random(7)
    names = ["blur_one", "blur_two", "blur_three"]
    for n, name in enumerate(names, start=1):
        add_account(name, shuffled_posts(60, rng), account_id=7000 + n)
    return names


@pytest.fixture
def distinct(add_account):
    """Three accounts that each write about their own things in their own words."""
    voices = {
        "loaves": ("fresh loaves and flour", ["rye", "crust", "oven", "butter", "dough"]),
        "buses": ("Route delayed minutes", ["timetable", "depot", "stop", "express", "bridge"]),
        "merges": ("merged the refactor, tests", ["green", "flaky", "ci", "lint", "deploy"]),
    }
    for n, (name, (stem, words)) in enumerate(voices.items(), start=1):
        texts = [f"{stem} {words[i % 5]} {words[(i * 3 + 1) % 5]} number {i}" for i in range(60)]
        add_account(name, texts, account_id=8000 + n)
    return list(voices)


@pytest.fixture(autouse=True)
def empty_cache():
    predict.cache.clear()
    yield
    predict.cache.clear()


def test_patternless_accounts_are_no_better_than_chance(app, patternless):
    with app.app_context():
        _, trust = predict.evaluate_accounts(patternless)
    assert trust.tested == 36  # 12 newest posts of each account held out
    assert trust.accuracy_low < trust.accuracy and trust.accuracy_low <= 1 / 3
    assert trust.better_than_chance is False


def test_distinct_accounts_are_better_than_chance(app, distinct):
    with app.app_context():
        _, trust = predict.evaluate_accounts(distinct)
    assert trust.tested == 36 and trust.accuracy_low > 0.8 and trust.better_than_chance is True


def test_api_says_whether_the_answer_beats_chance_with_the_figures_behind_it(client, patternless, distinct):
    blurred = client.post("/api/predict", json={"usernames": patternless, "text": "coffee by the river"}).get_json()
    assert blurred["better_than_chance"] is False and blurred["trust"]["better_than_chance"] is False
    trust = blurred["trust"]
    assert trust["tested_posts"] == 36 and trust["chance"] == pytest.approx(1 / 3, abs=1e-4)
    assert trust["held_out_accuracy_low"] <= trust["chance"] < 1 and trust["held_out_accuracy"] < 0.6
    assert "no better than chance" in blurred["warnings"][0]
    sharp = client.post("/api/predict", json={"usernames": distinct, "text": "rye dough in the oven"}).get_json()
    assert sharp["better_than_chance"] is True and sharp["trust"]["held_out_accuracy_low"] > 1 / 3
    assert not any("no better than chance" in w for w in sharp["warnings"])


def test_a_thread_of_accounts_the_model_cannot_tell_apart_is_judged_as_threads(client, patternless):
    texts = ["coffee by the river", "quiet morning in the city", "rain on the bridge again"]
    body = client.post("/api/predict", json={"usernames": patternless, "texts": texts}).get_json()
    assert body["better_than_chance"] is False and body["trust"]["thread_posts"] == 3
    threads = body["trust"]["tested_threads"]
    warning = body["warnings"][0]
    assert "held-out posts, grouped as threads of 3, the model did no better than chance" in warning
    assert f" of {threads} threads of 3, " in warning


def test_too_few_posts_to_judge_is_neither(client, add_account):
    add_account("tiny_a", ["rye bread", "sourdough loaf"])
    add_account("tiny_b", ["bus late", "train on time"])
    body = client.post("/api/predict", json={"usernames": ["tiny_a", "tiny_b"], "text": "bread"}).get_json()
    assert body["better_than_chance"] is None and body["trust"]["held_out_accuracy_low"] is None
    assert not any("no better than chance" in w for w in body["warnings"])


def test_the_result_page_greys_a_ranking_no_better_than_chance(client, patternless, distinct):
    page = client.post("/compare", data={"usernames": patternless, "text": "coffee by the river"}).get_data(
        as_text=True
    )
    assert 'id="no-better-than-chance"' in page
    start = page.index('id="no-better-than-chance"')
    banner = page[start : page.index("</p>", start)]
    assert "did no better than chance" in banner and "chance 33%" in banner and "as a guess" in banner
    assert '<ol class="ranking no-better" id="ranking">' in page
    assert page.count("no better than chance") == 1  # the banner, not the warning again beside it
    page = client.post("/compare", data={"usernames": distinct, "text": "rye dough in the oven"}).get_data(as_text=True)
    assert 'id="no-better-than-chance"' not in page and "no-better" not in page
    assert '<ol class="ranking" id="ranking">' in page and "better than chance" in page


def test_cli_predict_warns_when_no_better_than_chance(runner, patternless, distinct):
    result = runner.invoke(args=["predict", *patternless, "--text", "coffee by the river"])
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if "no better than chance" in line)
    assert warning.startswith("Warning: On these accounts' held-out posts the model did no better than chance")
    result = runner.invoke(args=["predict", *distinct, "--text", "rye dough in the oven"])
    assert result.exit_code == 0, result.output
    assert "no better than chance" not in result.output
