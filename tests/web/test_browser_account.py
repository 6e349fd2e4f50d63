"""In a real browser, on a desktop and on a phone 390 pixels wide: the account page's sections and the
progress of what its buttons start, models that say when they are no better than chance, and tables and
charts that stay readable on a small screen.

The app and the browser are this folder's conftest's fixtures.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import forget_models, sideways_overflow
from tests.support.data import patternless_rows

pytestmark = pytest.mark.browser

BOTH = pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)


def stacked(page, table: str) -> list[dict]:
    """For each body row of ``table``: how it is laid out, and each cell's label as shown before it."""
    return page.locator(f"{table} tbody tr").evaluate_all(
        """rows => rows.map(row => ({
            display: getComputedStyle(row).display,
            labels: [...row.cells].map(cell => getComputedStyle(cell, '::before').content),
            width: row.getBoundingClientRect().width,
        }))"""
    )


def label_heights(page, selector: str) -> list[float]:
    """The rendered height, in pixels, of each of a chart's text labels."""
    return page.locator(selector).evaluate_all("labels => labels.map(l => l.getBoundingClientRect().height)")


def is_phone(page) -> bool:
    return page.viewport_size["width"] < 500


@BOTH
def test_write_like_is_one_tap_from_the_top_and_training_shows_where_it_was_pressed(page, signed_in, browser_app):
    """The account's name has a link to its "Write like" section; the training it starts shows its progress
    in that section, not at the top of the page, and ends as a one-line result there."""
    try:
        page.goto("/user/harborbaker")
        link = page.locator("nav.sections").get_by_role("link", name="Write like")
        expect(link).to_be_in_viewport()
        link.click()
        button = page.get_by_role("button", name="Train a style model")
        expect(button).to_be_in_viewport()
        button.click()
        page.wait_for_url("**/user/harborbaker#style")
        card = page.locator("#style .job")
        card.wait_for()
        expect(card).to_be_in_viewport()
        assert page.locator(".job").count() == 1  # shown where the button was, and not again at the top
        page.get_by_role("button", name="Write posts").wait_for(timeout=30_000)  # trained; the page reloaded
        line = page.locator("#style .job.job-line")
        expect(line).to_contain_text("Trained a style model of @harborbaker")
        # Folded: no heading, no bar; the card is its one message and a little padding.
        assert line.locator("h2, progress").count() == 0
        assert line.bounding_box()["height"] - line.locator(".job-message").bounding_box()["height"] < 40
        assert sideways_overflow(page) <= 0
    finally:
        forget_models(browser_app)


@BOTH
def test_with_no_likes_model_the_likes_page_trains_one_and_says_it_is_no_better_than_chance(
    page, signed_in, browser_app
):
    """/virality offers to train on the stored posts; the demo accounts' likes follow nothing a model can
    learn, so the page says plainly that the model is no better than chance, and /models shows the floor
    and the chance line in a table and chart that fit the screen."""
    try:
        page.goto("/virality")
        offer = page.get_by_role(
            "button", name=re.compile(r"^Train a model on the [\d,]+ stored posts with known likes$")
        )
        expect(offer).to_be_enabled()
        offer.click()
        page.wait_for_url("**/virality#training")
        expect(page.locator("#training .job")).to_be_in_viewport()
        said = page.locator("#virality")
        expect(said).to_contain_text("The last one trained (version", timeout=30_000)  # ended; the page reloaded
        assert "No better than chance" in said.inner_text()
        assert "% chance of" not in said.inner_text()  # no confident number from a model that knows nothing
        assert page.get_by_role("button", name="Score").is_disabled()
        assert sideways_overflow(page) <= 0

        page.goto("/models")
        assert "no better than chance" in page.locator("#registry tbody tr").first.inner_text()
        assert page.locator("#auc-chart line.chance-line").count() == 1
        floor = float(page.locator("#auc-chart .axis-label").nth(1).text_content())
        cells = page.locator('#registry td[data-label="ROC AUC"]').all_inner_texts()
        lowest = min(float(re.match(r"[\d.]+", cell.strip()).group()) for cell in cells)
        assert floor <= min(lowest, 0.5)  # the chart's floor is the true one, below chance for a model below it
        rows = stacked(page, "#registry")
        if is_phone(page):
            assert all(row["display"] == "block" for row in rows), rows
            assert '"ROC AUC"' in rows[0]["labels"], rows[0]["labels"]  # each cell says what it is
            assert min(label_heights(page, "#auc-chart .axis-label")) >= 10
        else:
            assert all(row["display"] == "table-row" for row in rows), rows
        assert sideways_overflow(page) <= 0
    finally:
        forget_models(browser_app)


@BOTH
def test_a_sentiment_model_no_better_than_chance_is_refused_and_the_page_says_so(page, signed_in, browser_app):
    """Texts whose labels follow nothing train a model that is not put in service; the page says so beside
    chance, VADER goes on answering, and the models table lists it as no better than chance."""
    noise = "text,label\n" + "".join(f'"{text}",{label}\n' for text, label in patternless_rows())
    try:
        page.goto("/sentiment")
        page.locator("input#files").set_input_files(
            [{"name": "noise.csv", "mimeType": "text/csv", "buffer": noise.encode()}]
        )
        page.get_by_role("button", name="Train").click()
        page.wait_for_url("**/sentiment#training")
        banner = page.locator("#no-better-than-chance")
        banner.wait_for(timeout=30_000)  # the job ended and the page reloaded itself
        assert "no better than chance" in banner.inner_text() and "chance is 0.333" in banner.inner_text()
        assert "VADER does" in banner.inner_text()
        assert "no better than chance" in page.locator(".job-line").inner_text()
        page.locator("textarea#text").fill("I love the schedule, truly brilliant")
        page.get_by_role("button", name="Score").click()
        assert page.locator("#sentiment-result .label").inner_text() == "positive"
        assert re.search(r"Scored by\s+VADER", page.locator("#sentiment").inner_text())
        rows = stacked(page, "#sentiment-models")
        assert rows and all(row["display"] == ("block" if is_phone(page) else "table-row") for row in rows)
        assert sideways_overflow(page) <= 0
    finally:
        forget_models(browser_app)


@BOTH
def test_the_accounts_table_and_an_accounts_charts_read_on_any_screen(page):
    """The home page's accounts table becomes stacked rows on a phone, each cell named, nothing cut off;
    the account page's sentiment chart keeps labels a person can read."""
    page.goto("/")
    rows = stacked(page, "#accounts")
    assert len(rows) >= 6  # the demo accounts, and any another test added
    width = page.viewport_size["width"]
    if is_phone(page):
        assert all(row["display"] == "block" and row["width"] <= width for row in rows), rows
        assert all(label not in ("none", "normal", '""') for label in rows[0]["labels"]), rows[0]["labels"]
    else:
        assert all(row["display"] == "table-row" for row in rows), rows
    for cell in page.locator("#accounts tbody tr").first.locator("td").all():
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1  # no column cut off at the edge
    assert sideways_overflow(page) <= 0
    page.goto("/user/greenleaf_gardens")
    heights = label_heights(page, "#sentiment-mix text")
    assert heights and min(heights) >= 10
    assert sideways_overflow(page) <= 0
