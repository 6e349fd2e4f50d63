"""The "Who would post this?" result in a real browser, at desktop width and on a 390-pixel phone.

One colour per account, in ranking order: its probability bar, its swatch in the legend, the words of the
text it pulls most and its n-grams in "Why" are all drawn in it, and nothing scrolls sideways.
"""

from __future__ import annotations

import random
import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import PHONE, percentages, sideways_overflow
from tests.support.data import make_posts, shuffled_posts, store
from twitapp.ingest.store import delete_account
from twitapp.sources.demo import demo_accounts

pytestmark = pytest.mark.browser

TEXT = (
    "Planting out the beans before the 14 bus, late again; merged the refactor at midnight, "
    "and the sourdough rose. #growlocal"
)


def compare_every_demo_account(page) -> list[str]:
    """Submits the compare form with every demo account ticked; the ranked handles, top first."""
    names = [account.username for account, _ in demo_accounts()]
    page.goto("/")
    for username in names:
        page.get_by_role("checkbox", name=f"@{username}", exact=True).check()
    page.locator("textarea#text").fill(TEXT)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare")
    ranked = [h.strip().lstrip("@") for h in page.locator("#ranking li .who a").all_inner_texts()]
    assert sorted(ranked) == sorted(names)
    return ranked


def rgb(colour: str) -> tuple[int, int, int]:
    """The red, green and blue of a computed CSS colour ("rgb(…)" or "rgba(…)"), without its alpha."""
    match = re.match(r"rgba?\((\d+),\s*(\d+),\s*(\d+)", colour)
    assert match, f"not a computed colour: {colour!r}"
    return tuple(int(v) for v in match.groups())


def style(locator, prop: str) -> str:
    return locator.evaluate("(el, prop) => getComputedStyle(el)[prop]", prop)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_each_account_has_one_colour_in_its_bar_swatch_words_and_ngrams(page):
    ranked = compare_every_demo_account(page)
    values = percentages(page)
    assert values == sorted(values, reverse=True) and abs(sum(values) - 100) <= 0.3, values
    colours = []
    for place, username in enumerate(ranked):
        row = page.locator("#ranking li").nth(place)
        bar, fill, prob = row.locator(".bar"), row.locator(".bar .bar-fill"), row.locator(".prob")
        expect(bar).to_be_visible()
        expect(prob).to_be_visible()
        filled = fill.bounding_box()
        assert filled and filled["width"] > 0 and filled["height"] > 0, f"@{username}'s bar is not drawn"
        track = bar.bounding_box()
        assert filled["width"] <= track["width"] + 0.5
        # The filled share of the bar is the probability (a sliver for the smallest ones, so it shows).
        assert filled["width"] / track["width"] == pytest.approx(max(values[place] / 100, 0.008), abs=0.01)
        colour = rgb(style(fill, "fill"))
        swatch = page.locator("#legend li", has_text=f"@{username}").locator(".swatch")
        assert rgb(style(swatch, "backgroundColor")) == colour, f"@{username}: legend and bar differ"
        block = page.locator("#why .why-account").nth(place)
        expect(block.locator("h3")).to_have_text(f"Pointing to @{username}")
        for chip in block.locator(".grams code").all():
            assert rgb(style(chip, "borderTopColor")) == colour, f"@{username}: n-gram and bar differ"
        for word in page.locator(f'#reasons-text mark[title^="toward @{username} "]').all():
            assert rgb(style(word, "backgroundColor")) == colour, f"@{username}: a shaded word and the bar differ"
        colours.append(colour)
    assert len(set(colours)) == len(ranked), f"two accounts share a colour: {colours}"
    assert colours[0] == (230, 159, 0)  # the top account: Okabe–Ito orange
    assert page.locator("#reasons-text mark").count() >= 5
    assert page.locator("#why .grams code").count() >= len(ranked)
    assert sideways_overflow(page) <= 0


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_why_blocks_stack_on_a_phone_and_the_bars_keep_their_room(page):
    compare_every_demo_account(page)
    first, second = (page.locator("#why .why-account").nth(i).bounding_box() for i in (0, 1))
    phone = page.viewport_size == PHONE
    if phone:
        assert second["y"] >= first["y"] + first["height"] - 1, (first, second)
        assert abs(second["x"] - first["x"]) < 1
        # The bar takes a row of its own, as wide as the row, under the handle and its percentage.
        row = page.locator("#ranking li").first
        handle, bar = row.locator(".who").bounding_box(), row.locator(".bar").bounding_box()
        assert bar["y"] >= handle["y"] + handle["height"] - 1 and bar["width"] > PHONE["width"] / 2
    else:
        assert abs(second["y"] - first["y"]) < 1 and second["x"] > first["x"] + first["width"], (first, second)
    assert sideways_overflow(page) <= 0


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_accounts_the_model_cannot_tell_apart_get_a_plain_warning_and_a_greyed_ranking(page, browser_app):
    """Three accounts posting shuffles of the same everyday words: the held-out accuracy is no better than
    chance, so the page says so above the ranking, greys its bars and percentages, and keeps them readable."""
    rng = random.Random(11)
    names = [f"blur_{n}" for n in range(3)]
    for n, name in enumerate(names):
        store(browser_app, name, 97_000 + n, make_posts(shuffled_posts(60, rng), 97_000_000 + 1000 * n))
    try:
        page.goto("/")
        for name in names:
            page.get_by_role("checkbox", name=f"@{name}", exact=True).check()
        page.locator("textarea#text").fill("quiet morning coffee by the river again")
        page.get_by_role("button", name="Compare").click()
        page.wait_for_url("**/compare")
        expect(page.locator("#no-better-than-chance")).to_contain_text("no better than chance")
        ranking = page.locator("#ranking")
        assert "no-better" in (ranking.get_attribute("class") or "")
        bar, prob = ranking.locator(".bar").first, ranking.locator(".prob").first
        assert style(bar, "filter") == "grayscale(1)" and float(style(bar, "opacity")) < 1
        assert rgb(style(prob, "color")) != rgb(style(page.locator("#ranking .who a").first, "color"))
        expect(prob).to_be_visible()
        assert sideways_overflow(page) <= 0
    finally:
        with browser_app.app_context():
            for name in names:
                delete_account(name)
