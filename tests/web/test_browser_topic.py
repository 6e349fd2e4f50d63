"""The topic page in a real browser: the stored posts offline (said so, page by page, charted), and a live
topic from X's search taking new posts in while it is open; on a desktop screen and a phone's."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.support.browser import post_times, sideways_overflow
from twitapp.extensions import db
from twitapp.models import Tweet
from twitapp.sentiment.topic import PER_PAGE

pytestmark = pytest.mark.browser

BOTH_SCREENS = pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
SMALLEST_LABEL_PX = 11
X_SETTINGS = ("X_BEARER_TOKEN", "X_API_URL", "X_RETRY_BACKOFF", "TOPIC_CACHE_SECONDS")  # restored after a test

# Each SVG label's size on screen: its font size in the chart's units, times the chart's scale.
LABEL_SIZES = """svg => [...svg.querySelectorAll('text')].map(text => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return {text: text.textContent, px: parseFloat(getComputedStyle(text).fontSize) * scale};
})"""
# The labels that stick out of their chart (cut off on screen).
LABELS_OUTSIDE = """svg => {
  const box = svg.getBoundingClientRect();
  return [...svg.querySelectorAll('text')].filter(text => {
    const own = text.getBoundingClientRect();
    return own.left < box.left - 1 || own.right > box.right + 1 || own.top < box.top - 1 || own.bottom > box.bottom + 1;
  }).map(text => text.textContent);
}"""


def stored_matches(app, word: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Tweet).where(Tweet.text.ilike(f"%{word}%")))


def assert_legible(chart) -> None:
    """The chart is on screen, every label at least SMALLEST_LABEL_PX tall and inside the chart."""
    expect(chart).to_be_visible()
    sizes = chart.evaluate(LABEL_SIZES)
    assert sizes and all(size["px"] >= SMALLEST_LABEL_PX for size in sizes), sizes
    assert chart.evaluate(LABELS_OUTSIDE) == []


@BOTH_SCREENS
def test_offline_the_topic_shows_the_stored_posts_page_by_page(page, browser_app):
    """Without an X token the topic searches the stored posts: the page says so, polls for nothing, pages
    through them newest first, and charts their mix, legibly, on a desktop and a phone."""
    pages = math.ceil(stored_matches(browser_app, "bus") / PER_PAGE)
    assert pages >= 3  # the demo accounts talk about buses
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/api/topic" in request.url else None)
    page.goto("/")
    page.locator("nav.site-nav a[href='/topic']").click()  # the site's menu
    page.locator("input#q").fill("bus")
    page.get_by_role("button", name="Follow").click()
    page.wait_for_url("**/topic?q=bus&network=stored")
    expect(page.locator("h1")).to_have_text("Topic in the stored posts")
    expect(page.locator("#topic-results h2")).to_contain_text(
        re.compile(r"Sentiment of the stored posts matching\s+bus")
    )
    said = [page.locator("#topic").inner_text(), page.locator("#topic-results h2").inner_text()]
    said += page.locator("#topic-results figcaption").all_inner_texts()
    assert not [text for text in said if re.search(r"\blive\b", text, re.I)], said  # nowhere called live
    assert page.locator("[data-topic-url], #topic-status").count() == 0  # nothing to poll for
    expect(page.locator("nav.pager")).to_contain_text(f"Page 1 of {pages}")
    assert page.locator("#topic-posts li.post").count() == PER_PAGE
    for chart in (page.locator("#topic-mix svg"), page.locator("#topic-over-time svg")):
        assert_legible(chart)
    mix = [
        re.fullmatch(r"(\d+) · (\d+)%", text)
        for text in page.locator("#topic-mix .topic-mix-count").all_text_contents()
    ]
    assert len(mix) == 3 and all(mix), mix  # each label's count and share
    assert (
        sum(int(m[1]) for m in mix) == stored_matches(browser_app, "bus") and 99 <= sum(int(m[2]) for m in mix) <= 101
    )
    expect(page.locator("#topic-over-time .topic-legend")).to_contain_text("positive")
    assert page.locator("#topic-over-time g.topic-column").count() >= 2
    assert sideways_overflow(page) <= 0
    page.locator("#topic-over-time summary").click()  # the numbers behind the chart
    expect(page.locator("#topic-over-time table")).to_be_visible()
    assert sideways_overflow(page) <= 0

    newest = post_times(page)
    page.get_by_role("link", name="Older →").click()
    page.wait_for_url("**/topic?q=bus&network=stored&page=2")
    expect(page.locator("nav.pager")).to_contain_text(f"Page 2 of {pages}")
    older = post_times(page)
    assert newest == sorted(newest, reverse=True) and older == sorted(older, reverse=True)
    assert max(older) <= min(newest) and len(older) == PER_PAGE
    expect(page.locator("input#q")).to_have_value("bus")
    assert sideways_overflow(page) <= 0
    page.get_by_role("link", name="← Newer").click()
    page.wait_for_url("**/topic?q=bus&network=stored&page=1")
    assert post_times(page) == newest
    assert polls == []


@BOTH_SCREENS
def test_a_bad_page_of_a_topic_is_explained(page, browser_app):
    pages = math.ceil(stored_matches(browser_app, "bus") / PER_PAGE)
    response = page.goto("/topic?q=bus&page=two")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_have_text("\"page\" must be a whole number from 1 to 1,000,000, not 'two'.")
    response = page.goto("/topic?q=bus&page=999")
    assert response is not None and response.status == 200
    expect(page.locator("#topic-results .warning")).to_have_text(
        f"There is no page 999: there are {pages}. This is the last one."
    )
    expect(page.locator("nav.pager")).to_contain_text(f"Page {pages} of {pages}")
    assert page.get_by_role("link", name="Older →").count() == 0
    assert sideways_overflow(page) <= 0


def test_a_live_topic_shows_new_posts_as_they_come(page, browser_app, fake_x):
    """X's recent search yields a new post while the page is open: it appears on top, and the mix follows."""
    fake_x.add_user(90, "harbourfan", "Harbour Fan")
    fake_x.add_posts(
        "harbourfan", [{"id": 1000, "text": "Love the #harbour at dawn", "lang": "en", "created_at": recently()}]
    )
    before = {name: browser_app.config.get(name) for name in X_SETTINGS}
    browser_app.config.update(
        X_BEARER_TOKEN=fake_x.bearer_token, X_API_URL=fake_x.url, X_RETRY_BACKOFF=0.01, TOPIC_CACHE_SECONDS=0
    )
    try:
        page.goto("/topic?q=%23harbour")
        expect(page.locator("h1")).to_have_text("Live topic")
        expect(page.locator("#topic-results h2")).to_contain_text("Live sentiment")
        assert page.locator("#topic-posts li").count() == 1
        negative = page.locator("text.topic-mix-count[data-label=negative]")
        assert negative.text_content() == "0 · 0%"
        fake_x.add_posts(
            "harbourfan",
            [{"id": 1001, "text": "The #harbour smells awful today", "lang": "en", "created_at": recently()}],
        )
        first = page.locator("#topic-posts li").first
        first.filter(has_text="smells awful").wait_for(timeout=20_000)  # polled in, without a reload
        assert first.locator(".label").inner_text() == "negative"
        assert negative.text_content() == "1 · 50%"
        assert page.locator("text.topic-mix-count[data-label=positive]").text_content() == "1 · 50%"
        assert page.locator("#topic-total").inner_text() == "2 posts"
        since = [query.get("since_id") for path, query in fake_x.requests if path.endswith("/search/recent")]
        assert since[0] is None and "1000" in since[1:]  # only newer posts were asked for
    finally:
        browser_app.config.update(before)


@BOTH_SCREENS
def test_a_live_topic_pages_through_its_posts_and_only_its_first_page_follows_the_topic(page, browser_app, fake_x):
    posts = [
        {"id": 2000 + i, "text": f"#ferry crossing number {i}", "lang": "en", "created_at": recently(minutes=i)}
        for i in range(PER_PAGE + 5)
    ]
    fake_x.add_user(91, "ferryfan", "Ferry Fan", posts)
    before = {name: browser_app.config.get(name) for name in X_SETTINGS}
    browser_app.config.update(X_BEARER_TOKEN=fake_x.bearer_token, X_API_URL=fake_x.url, X_RETRY_BACKOFF=0.01)
    try:
        page.goto("/topic?q=%23ferry")
        expect(page.locator("nav.pager")).to_contain_text("Page 1 of 2")
        assert page.locator("[data-topic-url]").count() == 1  # the first page follows the topic
        assert_legible(page.locator("#topic-over-time svg"))
        expect(page.locator("#topic-over-time figcaption")).to_contain_text("hour by hour")
        page.get_by_role("link", name="Older →").click()
        page.wait_for_url("**/topic?q=%23ferry&network=x&page=2")
        expect(page.locator("#topic-posts li.post")).to_have_count(5)
        expect(page.locator("#topic-posts li.post").first).to_contain_text("#ferry crossing number 4")
        assert page.locator("[data-topic-url]").count() == 0  # a later page stays as it is
        assert sideways_overflow(page) <= 0
    finally:
        browser_app.config.update(before)


def recently(minutes: int = 0) -> str:
    """A post's time within X's seven days of recent search (about an hour ago), as the API writes it."""
    return (datetime.now(UTC) - timedelta(hours=1) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
