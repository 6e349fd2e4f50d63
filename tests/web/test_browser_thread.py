"""A thread of posts through the compare form in a real browser, at desktop width and on a 390-pixel phone.

"+ add a post" adds a box per post; the result ranks the accounts for the thread as a whole and shows,
under each post, the account it points to alone, in that account's colour; a box left empty is named.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import percentages, sideways_overflow
from twitapp.attribution.model import MAX_TEXT_CHARS

pytestmark = pytest.mark.browser

ACCOUNTS = ("greenleaf_gardens", "harborbaker", "transit_tom")
THREAD = [
    "Volunteer morning at the plot: planting out the beans and turning the compost. #growlocal",
    "Seed swap next Sunday at the shed, bring your spare seedlings and a trowel",
    "The 14 bus was 9 minutes late again this morning. #transit",
]
BOTH_SCREENS = pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)


def rgb(locator, prop: str) -> tuple[int, ...]:
    colour = locator.evaluate("(el, prop) => getComputedStyle(el)[prop]", prop)
    return tuple(int(v) for v in re.match(r"rgba?\((\d+),\s*(\d+),\s*(\d+)", colour).groups())


def tick(page) -> None:
    page.goto("/")
    for username in ACCOUNTS:
        page.get_by_role("checkbox", name=f"@{username}", exact=True).check()


@BOTH_SCREENS
def test_add_a_post_builds_a_thread_and_the_result_reads_per_post_and_pooled(page):
    tick(page)
    page.locator("textarea#text").fill(THREAD[0])
    add = page.get_by_role("button", name="+ add a post")
    for number, post in enumerate(THREAD[1:], start=2):
        add.click()
        box = page.get_by_role("textbox", name=f"Post {number}")
        expect(box).to_be_focused()
        box.fill(post)
    # A box added by mistake can be taken out again.
    add.click()
    page.get_by_role("button", name="Remove post 4").click()
    assert page.locator("#compare textarea").count() == 3
    assert sideways_overflow(page) <= 0
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare")

    expect(page.get_by_role("heading", name="A thread of 3 posts, post by post")).to_be_visible()
    values = percentages(page)
    assert values == sorted(values, reverse=True) and abs(sum(values) - 100) <= 0.3, values
    top = page.locator("#ranking li .who a").first.inner_text().strip()
    assert top == "@greenleaf_gardens"
    posts = page.locator("#reasons-text > li")
    assert posts.count() == 3
    for number, text in enumerate(THREAD):
        post = posts.nth(number)
        assert post.locator("blockquote").inner_text().strip() == text
        chip = post.locator(".top-chip")
        expect(chip).to_be_visible()
        handle, share = re.fullmatch(r"(@\w+) ([<>]?\d+(?:\.\d)?%)", chip.inner_text().strip()).groups()
        assert float(share.strip("<>%")) >= 100 / 3  # its own top account, among three
        # The post's own account, in that account's colour: the same as its swatch in the legend.
        swatch = page.locator("#legend li", has_text=handle).locator(".swatch")
        assert rgb(chip, "borderTopColor") == rgb(swatch, "backgroundColor"), handle
        if handle != top:
            expect(post.locator(".elsewhere-note")).to_contain_text(f"the thread as a whole points to {top}")
    # The bus post points elsewhere, and says so.
    assert "@transit_tom" in posts.nth(2).locator(".top-chip").inner_text()
    trust = page.locator("#trust").inner_text()
    assert re.search(r"threads of 3 posts were attributed right \d+% of the time", trust), trust
    assert sideways_overflow(page) <= 0

    # Back to the form: the same accounts ticked and the thread in place, one post per block.
    page.get_by_role("button", name="← Compare another text").click()
    page.wait_for_url("**/compare/edit#compare")
    assert page.locator("textarea#text").input_value().split("\n\n") == THREAD
    expect(page.locator("#text-count")).to_have_text(f"3 posts, the longest {max(map(len, THREAD))} / {MAX_TEXT_CHARS}")
    assert page.locator("#compare input[type=checkbox]:checked").count() == 3


@BOTH_SCREENS
def test_posts_separated_by_a_blank_line_make_a_thread_and_an_empty_box_is_named(page):
    tick(page)
    page.locator("textarea#text").fill(f"{THREAD[0]}\n\n{THREAD[1]}")
    expect(page.locator("#text-count")).to_have_text(f"2 posts, the longest {len(THREAD[0])} / {MAX_TEXT_CHARS}")
    page.get_by_role("button", name="+ add a post").click()  # and left empty
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare")
    expect(page.locator("#compare .error")).to_have_text("Post 3 is empty: type its text or take it out of the thread.")
    assert page.locator("textarea#text").input_value() == f"{THREAD[0]}\n\n{THREAD[1]}"
    page.locator("#compare textarea").nth(1).fill(THREAD[2])
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare")
    expect(page.get_by_role("heading", name="A thread of 3 posts, post by post")).to_be_visible()
    assert sideways_overflow(page) <= 0
