"""A person's path through HypoTweet in a real browser: Debian's chromium, driven by Playwright.

The app and the browser are this folder's conftest's fixtures. Tests that change what is stored sign in
first through the form (the ``signed_in`` fixture).

``HYPOTWEET_SCREENSHOT=1`` also saves the compare result page to ``docs/screenshot.png`` (for the README).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.support.browser import (
    OPERATOR,
    OPERATOR_PASSWORD,
    forget_models,
    percentages,
    post_times,
    sideways_overflow,
    sign_in,
)
from tests.support.data import training_rows
from tests.support.fakebluesky import FakeBluesky, fake_bluesky  # noqa: F401  (a fixture, used by name)
from tests.support.fakemastodon import FakeMastodon, fake_mastodon  # noqa: F401  (a fixture, used by name)
from twitapp import jobs
from twitapp.attribution.model import MAX_TEXT_CHARS
from twitapp.extensions import db
from twitapp.ingest.jobs import NO_TOKEN as NO_TOKEN_MESSAGE
from twitapp.ingest.store import delete_account
from twitapp.models import Job, Tweet, User, find_user
from twitapp.sources.demo import demo_accounts
from twitapp.web.routes import POSTS_PER_PAGE

pytestmark = pytest.mark.browser
BOTH_SCREENS = pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "screenshot.png"

# Test 3: a text in the voice of VOICE_OF, compared against two other demo accounts. It echoes that
# account's usual words without copying any stored post (the test checks that it is not a copy).
VOICE_OF = "greenleaf_gardens"
OTHERS = ("harborbaker", "transit_tom")
VOICE_TEXT = (
    "Volunteer session this Saturday 10am–1pm: planting out the beans and building a new compost bay. "
    "Wellies essential! #growlocal"
)


def demo_post_counts() -> dict[str, int]:
    """What seed-demo should store: each demo account's distinct posts."""
    return {account.username: len({p.id for p in parsed.posts}) for account, parsed in demo_accounts()}


# -- tests ------------------------------------------------------------------------------------------------


def test_home_lists_demo_accounts_and_counts_characters_live(page):
    expected = demo_post_counts()
    assert len(expected) == 6

    response = page.goto("/")
    assert response is not None and response.status == 200
    assert page.title() == "Accounts · HypoTweet"

    # Every demo account is listed with the number of posts seed-demo stored for it.
    rows = page.locator("#accounts tbody tr")
    shown = {}
    for row in rows.all():
        handle = row.locator("td").nth(0).inner_text().strip()
        count = int(row.locator("td.num").inner_text().strip().replace(",", ""))
        shown[handle] = count
    assert shown == {f"@{u}": n for u, n in expected.items()}
    assert all(n >= 150 for n in shown.values()), shown

    # No token: the banner says so.
    banner = page.locator("#offline-banner")
    assert banner.is_visible()
    assert "No X API token is set: Bluesky and Mastodon accounts can be added" in banner.inner_text()

    # The counter follows the typing, keystroke by keystroke.
    area = page.locator("textarea#text")
    counter = page.locator("#text-count")
    assert counter.inner_text() == f"0 / {MAX_TEXT_CHARS}"
    area.press_sequentially("hello world")
    assert counter.inner_text() == f"11 / {MAX_TEXT_CHARS}"
    assert "over" not in (counter.get_attribute("class") or "").split()
    area.press_sequentially(" 🌱")  # an emoji is one character to a person (and to the server's limit)
    assert counter.inner_text() == f"13 / {MAX_TEXT_CHARS}"
    area.press("Backspace")
    assert counter.inner_text() == f"12 / {MAX_TEXT_CHARS}"

    # Up to the limit is fine; past it the counter is flagged.
    area.fill("x" * (MAX_TEXT_CHARS - 1))
    assert counter.inner_text() == f"{MAX_TEXT_CHARS - 1} / {MAX_TEXT_CHARS}"
    area.press_sequentially("yz")
    assert counter.inner_text() == f"{MAX_TEXT_CHARS + 1} / {MAX_TEXT_CHARS}"
    assert "over" in (counter.get_attribute("class") or "").split()
    area.press("Backspace")
    assert counter.inner_text() == f"{MAX_TEXT_CHARS} / {MAX_TEXT_CHARS}"
    assert "over" not in (counter.get_attribute("class") or "").split()


def test_account_page_newest_first_with_pagination(page):
    counts = demo_post_counts()
    username = sorted(counts)[0]
    pages = -(-counts[username] // POSTS_PER_PAGE)

    page.goto("/")
    page.get_by_role("link", name=f"@{username}", exact=True).click()
    page.wait_for_url(f"**/user/{username}")
    assert page.locator("h1").inner_text().startswith(f"@{username}")
    assert f"{counts[username]:,} stored posts" in page.locator("section.card > p.meta").inner_text()

    first = post_times(page)
    assert len(first) == POSTS_PER_PAGE
    assert first[0] > first[1], f"newest first: {first[0]} should be later than {first[1]}"
    assert first == sorted(first, reverse=True), "the whole page should be newest first"
    assert page.locator("nav.pager").inner_text().split() == ["Page", "1", "of", str(pages), "Older", "→"]

    page.get_by_role("link", name="Older →").click()
    page.wait_for_url(f"**/user/{username}?page=2")
    assert f"Page 2 of {pages}" in page.locator("nav.pager").inner_text()
    assert page.get_by_role("link", name="← Newer").is_visible()
    second = post_times(page)
    assert len(second) == POSTS_PER_PAGE
    assert second[0] <= first[-1], "page 2 should continue with older posts"
    assert second == sorted(second, reverse=True)


@BOTH_SCREENS
def test_compare_ranks_the_imitated_voice_first(page):
    stored = {p.text.strip().lower() for _, parsed in demo_accounts() for p in parsed.posts}
    assert VOICE_TEXT.strip().lower() not in stored, "the typed text must not be a copy of a stored post"

    page.goto("/")
    for username in (*OTHERS, VOICE_OF):
        page.get_by_role("checkbox", name=f"@{username}", exact=True).check()
    page.locator("textarea#text").fill(VOICE_TEXT)
    assert page.locator("#text-count").inner_text() == f"{len(VOICE_TEXT)} / {MAX_TEXT_CHARS}"
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare")

    assert page.title() == "Result · HypoTweet"
    assert page.locator("blockquote.typed").inner_text().strip() == VOICE_TEXT
    candidates = page.locator("#ranking li")
    assert candidates.count() == 3
    handles = [h.strip() for h in page.locator("#ranking li .who a").all_inner_texts()]
    assert sorted(handles) == sorted(f"@{u}" for u in (*OTHERS, VOICE_OF))

    values = percentages(page)
    assert values == sorted(values, reverse=True), f"the ranking should be sorted by probability: {values}"
    assert abs(sum(values) - 100) <= 0.2, f"the probabilities should sum to 100%: {values}"
    assert "33.3%" in page.locator("#chance").inner_text()
    assert handles[0] == f"@{VOICE_OF}", f"expected @{VOICE_OF} first: {list(zip(handles, values, strict=True))}"
    assert values[0] > 33.3

    # How far to trust it: held-out accuracy on these accounts' newest posts, beside chance.
    trust = page.locator("#trust").inner_text()
    assert re.search(r"right account for \d+% of their \d+ newest posts", trust), trust
    assert "chance is 33%" in trust
    # Why: words shaded toward the top account, and the n-grams that pushed each way.
    toward_top = page.locator("#reasons-text mark.who-0")
    assert toward_top.count() >= 1
    assert f"toward @{VOICE_OF}" in (toward_top.first.get_attribute("title") or "")
    assert page.locator("#why h3").first.inner_text() == f"Pointing to @{VOICE_OF}"
    assert page.locator("#why .grams li").count() >= 1

    if os.environ.get("HYPOTWEET_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The next step keeps the work: another text in place, for the same accounts...
    page.locator("textarea#again-text").fill("Seed swap and compost workshop next Sunday, bring a trowel")
    page.locator("#again").get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare")
    again = sorted(h.strip() for h in page.locator("#ranking li .who a").all_inner_texts())
    assert again == sorted(f"@{u}" for u in (*OTHERS, VOICE_OF))
    # ...or back to the form, with the accounts ticked and the text in place to change.
    page.get_by_role("button", name="← Compare another text").click()
    page.wait_for_url("**/compare/edit#compare")
    assert page.locator("textarea#text").input_value().startswith("Seed swap and compost workshop")
    for username in (*OTHERS, VOICE_OF):
        assert page.get_by_role("checkbox", name=f"@{username}", exact=True).is_checked()
    assert page.locator("#compare input[type=checkbox]:checked").count() == 3


def test_error_paths_show_readable_messages(page, signed_in):
    username = sorted(demo_post_counts())[0]
    typed = "Only one account is ticked here."

    # Compare with one account: the message, the text kept, the tick kept.
    page.goto("/")
    page.get_by_role("checkbox", name=f"@{username}", exact=True).check()
    page.locator("textarea#text").fill(typed)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare")
    alert = page.locator("#compare .error")
    assert alert.inner_text() == "Pick at least two different accounts to compare."
    assert page.locator("textarea#text").input_value() == typed
    assert page.locator("#text-count").inner_text() == f"{len(typed)} / {MAX_TEXT_CHARS}"
    assert page.get_by_role("checkbox", name=f"@{username}", exact=True).is_checked()
    assert page.locator("#compare input[type=checkbox]:checked").count() == 1

    # Adding an account without a token: told why it cannot be fetched.
    page.locator("input#username").fill("somebody_new")
    page.get_by_role("button", name="Add or update").click()
    page.wait_for_url("**/users")
    assert page.locator("#accounts .error").inner_text() == NO_TOKEN_MESSAGE
    expect(page.locator("#accounts .error")).to_be_in_viewport()  # the answer is where the eyes are
    assert page.locator("input#username").input_value() == "somebody_new"

    # A missing account: a 404 page a person can read, with a way back.
    response = page.goto("/user/nobody_here")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "404 · Not Found"
    assert "No stored account is called @nobody_here." in page.locator("main").inner_text()
    page.get_by_role("link", name="Back to the accounts").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    assert page.locator("#accounts tbody tr").count() == 6


def test_every_page_fits_a_phone_screen(phone):
    """On a 390-pixel-wide screen nothing makes the page scroll sideways: the header and forms wrap."""
    page = phone
    for path in ("/", f"/user/{VOICE_OF}", "/sentiment", "/topic?q=bread", "/virality", "/models"):
        page.goto(path)
        assert sideways_overflow(page) <= 0, path
        expect(page.get_by_role("link", name="Models", exact=True)).to_be_in_viewport()
    page.goto("/")
    for username in (VOICE_OF, *OTHERS):
        page.get_by_role("checkbox", name=f"@{username}", exact=True).check()
    page.locator("textarea#text").fill(VOICE_TEXT)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare")
    assert sideways_overflow(page) <= 0
    sign_in(page)  # an operator's pages carry more: who is signed in, and the forms that change things
    for path in ("/", f"/user/{VOICE_OF}", "/sentiment", "/models", "/signin"):
        page.goto(path)
        assert sideways_overflow(page) <= 0, path


def test_menu_links_never_break_inside_at_any_width(page):
    """From a phone to a wide screen the menu wraps link by link: no link is split over two lines."""
    # The lines each link's text is laid out on (the distinct tops of its text's boxes).
    lines = """[...document.querySelectorAll('nav.site-nav a')].map(a => {
        const range = document.createRange(); range.selectNodeContents(a);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; })"""
    for signed in (False, True):
        if signed:
            sign_in(page)  # who is signed in takes room in the header too
        for width in (390, 640, 700, 900, 1100, 1400):
            page.set_viewport_size({"width": width, "height": 800})
            page.goto("/")
            per_link = page.evaluate(lines)
            assert per_link == [1] * 5, f"menu links over several lines at {width} px (signed in: {signed}): {per_link}"
            assert sideways_overflow(page) <= 0, width


@BOTH_SCREENS
def test_an_operator_signs_in_imports_a_file_deletes_it_and_signs_out(page, browser_app):
    """A visitor sees no import form; signed in, a file chosen in the browser is imported as a job and listed,
    the account can be deleted again, and after signing out the forms are gone."""
    posts = "".join(
        json.dumps(
            {
                "id": str(880_000 + i),
                "author_id": "4343",
                "created_at": f"2025-05-{1 + i:02d}T08:00:00Z",
                "text": f"lighthouse log {i}: the lamp turned all night, fog horn twice",
                "public_metrics": {"like_count": i, "retweet_count": 0},  # no reply counts: unknown, not 0
            }
        )
        + "\n"
        for i in range(12)
    )
    try:
        page.goto("/")
        expect(page.locator("input#import-username")).to_have_count(0)
        page.get_by_role("link", name="Operator sign-in").click()
        page.locator("input#name").fill(OPERATOR)
        page.locator("input#password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#sign-in .error")).to_have_text(
            "That name and password do not match an operator of this site."
        )
        page.locator("input#password").fill(OPERATOR_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))  # back where the link was
        expect(page.locator(".account-menu")).to_contain_text(f"Signed in as {OPERATOR}")
        page.locator("input#import-username").fill("lighthouse_log")
        page.locator("input#import-files").set_input_files(
            files=[{"name": "posts.jsonl", "mimeType": "application/x-ndjson", "buffer": posts.encode()}]
        )
        page.get_by_role("button", name="Import").click()
        page.wait_for_url("**/user/lighthouse_log")
        page.locator("ol.posts li").first.wait_for(timeout=30_000)  # the job ended and the page reloaded
        assert page.locator("ol.posts li").count() == 12
        newest = page.locator("ol.posts li").first.inner_text()
        assert "lighthouse log 11: the lamp turned all night" in newest
        assert "11 likes" in newest and "— replies" in newest  # a count the file does not give is unknown

        page.goto("/")  # a second file that is not posts is refused on the spot, with its name
        page.locator("input#import-username").fill("lighthouse_log")
        page.locator("input#import-files").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just some words"}]
        )
        page.get_by_role("button", name="Import").click()
        page.wait_for_url("**/import")
        expect(page.locator("#accounts .error")).to_have_text(
            "notes.txt: unknown format; expected tweets.js from an X archive, JSONL or CSV"
        )
        expect(page.locator("#accounts .error")).to_be_in_viewport()

        # And away again: the account page's delete link asks first, then removes it and its posts.
        page.goto("/user/lighthouse_log")
        page.get_by_role("link", name="Delete this account…").click()
        assert "the account's 12 stored posts" in page.locator("#delete").inner_text()
        page.get_by_role("button", name="Delete @lighthouse_log and its posts").click()
        page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
        expect(page.locator(".flash")).to_have_text("Deleted @lighthouse_log and its 12 posts.")
        assert page.locator("#accounts tbody tr").count() == len(demo_post_counts())

        page.get_by_role("button", name="Sign out").click()
        expect(page.locator(".flash")).to_have_text("Signed out, on every browser this operator had signed in with.")
        expect(page.locator("input#import-username")).to_have_count(0)
        expect(page.get_by_role("link", name="Operator sign-in")).to_be_visible()
    finally:
        jobs.thread_worker.join()
        with browser_app.app_context():
            lighthouse = sa.select(User.id).where(User.platform_id == "4343").scalar_subquery()
            db.session.execute(sa.delete(Tweet).where(Tweet.user_id == lighthouse))
            db.session.execute(sa.delete(User).where(User.platform_id == "4343"))
            db.session.execute(sa.delete(Job).where(Job.username == "lighthouse_log"))
            db.session.commit()


def test_a_download_of_everything_restores_from_the_home_page(page, signed_in, tmp_path):
    """The download link gives the export; sent back, it is checked, restored as a job, and matched post for post."""
    counts = demo_post_counts()
    page.goto("/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download every account and post").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("hypotweet-export-") and saved.suffix == ".jsonl"

    page.locator("input#restore-file").set_input_files(str(saved))
    page.get_by_role("button", name="Restore").click()
    page.wait_for_url("**/#restore")
    done = f"Restored {len(counts)} accounts: 0 new posts, {sum(counts.values()):,} already stored."
    page.locator(".job .job-message").filter(has_text=done).wait_for(timeout=30_000)
    assert page.locator("#accounts tbody tr").count() == len(counts)


def test_adding_an_account_shows_live_progress_to_the_end(page, signed_in, browser_app, fake_x):
    """The fetch runs as a job; the account page follows it without a reload, then shows the posts."""
    posts = [
        {"id": 7000 + i, "text": f"harbour ferry note {i}: tides, timetables and the odd seal", "like_count": i}
        for i in range(250)
    ]
    fake_x.add_user(4242, "HarbourFerry", "Harbour Ferry", posts)
    fake_x.delay = 0.5  # each page of the timeline takes a while, long enough to watch
    browser_app.config.update(X_BEARER_TOKEN=fake_x.bearer_token, X_API_URL=fake_x.url, X_RETRY_BACKOFF=0.01)
    try:
        page.goto("/")
        page.locator("input#username").fill("harbourferry")
        page.get_by_role("button", name="Add or update").click()
        page.wait_for_url("**/user/harbourferry")
        assert "Nothing is stored for this account yet." in page.locator("main").inner_text()
        message = page.locator(".job-message")
        message.filter(has_text="so far").wait_for()  # progress arrived by polling, in place
        assert page.evaluate("document.querySelector('.job progress').value") > 0
        page.get_by_text("Added @HarbourFerry with 250 posts.").wait_for(timeout=30_000)
        page.locator("ol.posts li").first.wait_for()  # then the page reloads itself with the posts
        assert page.locator("ol.posts li").count() == POSTS_PER_PAGE
        assert "Added @HarbourFerry with 250 posts." in page.locator(".job").inner_text()
        assert "harbour ferry note 249" in page.locator("ol.posts li").first.inner_text()
        # Done, the card folds into one line of result: no bar left, the message kept.
        assert page.locator(".job.job-line").count() == 1 and page.locator(".job progress").count() == 0
        assert page.locator(".job-line").evaluate("card => card.getBoundingClientRect().height") < 80
    finally:
        browser_app.config.update(X_BEARER_TOKEN=None, X_API_URL=None)
        jobs.thread_worker.join()


def test_bluesky_and_mastodon_accounts_are_added_without_a_token_and_compared(
    page,
    signed_in,
    browser_app,
    fake_bluesky,  # noqa: F811
    fake_mastodon,  # noqa: F811
):
    """With no X token at all, the home page's add form takes a Bluesky handle and a pasted Mastodon profile
    address, says which network it read each as, fetches them as jobs, and a comparison of the two with a
    demo account answers, naming each by its full handle."""
    did = "did:plc:commutercommutercommuter"
    start = datetime.now(UTC) - timedelta(days=30)
    voices = {account.username: [p.text for p in parsed.posts] for account, parsed in demo_accounts()}
    # The two networks' accounts write as two demo accounts do (the demo's posts are the project's own).
    transit, garden = voices["transit_tom"], voices[VOICE_OF]
    fake_bluesky.add_account(did, "commuter.bsky.social", display_name="Commuter on Bluesky")
    fake_bluesky.add_posts(
        did,
        [{"rkey": f"3k{n:05d}", "text": t, "created_at": start + timedelta(minutes=n)} for n, t in enumerate(transit)],
    )
    fake_mastodon.add_account("mastodon.example", "42", "gardener", display_name="Gardener on Mastodon")
    fake_mastodon.add_statuses(
        "mastodon.example",
        "42",
        [
            {"id": str(1000 + n), "content": f"<p>{t}</p>", "created_at": start + timedelta(minutes=n)}
            for n, t in enumerate(garden)
        ],
    )
    browser_app.config.update(
        BLUESKY_APPVIEW_URL=fake_bluesky.url,
        MASTODON_INSTANCE_URL=fake_mastodon.url_template,
        SOURCE_RETRY_BACKOFF=0.01,
    )
    try:
        page.goto("/")
        expect(page.locator("#offline-banner")).to_contain_text("Only X needs X_BEARER_TOKEN")
        for typed, handle, network, count in (
            ("@commuter.bsky.social", "commuter.bsky.social", "Bluesky", len(transit)),
            ("https://mastodon.example/@gardener", "gardener@mastodon.example", "Mastodon", len(garden)),
        ):
            page.goto("/")
            page.locator("input#username").fill(typed)
            page.get_by_role("button", name="Add or update").click()
            page.wait_for_url(f"**/user/{handle}")
            expect(page.locator(".flash")).to_have_text(f"Reading @{handle} as a {network} account.")
            page.get_by_text(f"Added @{handle} with {count} posts.").wait_for(timeout=30_000)
            page.locator("ol.posts li").first.wait_for()
            expect(page.locator("h1 .network")).to_have_text(network)
            profile = {
                "Bluesky": f"https://bsky.app/profile/{handle}",
                "Mastodon": "https://mastodon.example/@gardener",
            }
            assert page.locator("a.profile-link").get_attribute("href") == profile[network]

        page.goto("/")
        rows = page.locator("#accounts tbody tr", has_text="commuter.bsky.social")
        expect(rows.locator(".network")).to_have_text("Bluesky")
        for username in ("harborbaker", "commuter.bsky.social", "gardener@mastodon.example"):
            page.get_by_role("checkbox", name=f"@{username}", exact=True).check()
        page.locator("textarea#text").fill(VOICE_TEXT)
        page.get_by_role("button", name="Compare").click()
        page.wait_for_url("**/compare")
        handles = [h.strip() for h in page.locator("#ranking li .who a").all_inner_texts()]
        assert sorted(handles) == ["@commuter.bsky.social", "@gardener@mastodon.example", "@harborbaker"]
        assert handles[0] == "@gardener@mastodon.example", handles
        values = percentages(page)
        assert abs(sum(values) - 100) <= 0.2 and values[0] > 33.3
    finally:
        browser_app.config.update(BLUESKY_APPVIEW_URL=None, MASTODON_INSTANCE_URL=None)
        jobs.thread_worker.join()
        with browser_app.app_context():
            for handle in ("commuter.bsky.social", "gardener@mastodon.example"):
                if find_user(handle) is not None:
                    delete_account(handle)


def test_training_a_sentiment_model_from_the_page(page, signed_in, browser_app):
    """Files chosen in the browser train a model as a job; the page follows it, then scores with it."""
    rows = training_rows()
    labelled_csv = "text,label\n" + "".join(f'"{text}",{label}\n' for text, label in rows)
    try:
        page.goto("/sentiment")
        assert "no trained model is stored yet" in page.locator("#sentiment").inner_text()
        page.locator("input#files").set_input_files(
            [{"name": "mine.csv", "mimeType": "text/csv", "buffer": labelled_csv.encode()}]
        )
        page.get_by_role("button", name="Train").click()
        page.wait_for_url("**/sentiment#training")
        page.locator("tr.in-service").wait_for(timeout=30_000)  # the job ended and the page reloaded itself
        assert "Trained sentiment model" in page.locator(".job").inner_text()
        assert "mine.csv" in page.locator("tr.in-service").inner_text()
        page.locator("textarea#text").fill("I love the schedule, truly brilliant")
        page.get_by_role("button", name="Score").click()
        assert page.locator("#sentiment-result .label").inner_text() == "positive"
        assert re.search(r"Scored by\s+trained model \d+", page.locator("#sentiment").inner_text())
    finally:
        forget_models(browser_app)


def test_training_a_virality_model_on_the_demo_posts_says_plainly_it_is_no_better_than_chance(
    page, signed_in, browser_app
):
    """/models trains a model as a job and charts it beside the chance line; the demo accounts' likes follow
    nothing a model can learn, so it is not put in service, and /virality says why instead of a number."""
    try:
        page.goto("/virality")
        assert "No virality model is in service yet" in page.locator("#virality").inner_text()
        page.get_by_role("link", name="models page").click()
        assert "No model has been trained yet." in page.locator("main").inner_text()
        page.get_by_role("button", name="Run the loop (no X token: stored posts only)").click()
        page.locator("#registry tr.status-challenger").wait_for(timeout=30_000)  # the job ended, the page reloaded
        assert "Trained virality model" in page.locator(".job").inner_text()
        row = page.locator("#registry tr.status-challenger")
        assert (
            "no better than chance" in row.inner_text()
            and "No better than chance on the held-out posts" in row.inner_text()
        )
        assert page.locator("#auc-chart circle.refused").count() == 1
        assert page.locator("#auc-chart line.chance-line").count() == 1
        page.get_by_role("link", name="Will it get likes?").click()
        said = page.locator("#virality").inner_text()
        assert "The last one trained (version" in said and "No better than chance" in said
        assert page.get_by_role("button", name="Score").is_disabled()
    finally:
        forget_models(browser_app)


@BOTH_SCREENS
def test_writing_like_an_account_from_its_page(page, signed_in, browser_app):
    """Train the style model from the account page, write posts with the slider, send one to compare."""
    try:
        page.goto("/user/harborbaker")
        page.get_by_role("button", name="Train a style model").click()
        page.get_by_role("button", name="Write posts").wait_for(timeout=30_000)  # trained; the page reloaded
        assert "Trained a style model of @harborbaker" in page.locator(".job").inner_text()
        slider = page.locator("input#temperature")
        slider.fill("1.1")
        assert page.locator("output#temperature-value").inner_text() == "1.1"  # the slider shows its value
        page.get_by_role("button", name="Write posts").click()
        written = page.locator("#written li.post")
        written.first.wait_for()
        assert 1 <= written.count() <= 5
        first = written.first.locator("p").first.inner_text()
        assert 0 < len(first) <= 280
        written.first.get_by_role("link", name="Compare this post with other accounts").click()
        page.wait_for_url("**/?text=*")
        assert page.locator("textarea#text").input_value() == first
        # The account it was written as is ticked (with any compared last in this browser).
        assert page.get_by_role("checkbox", name="@harborbaker", exact=True).is_checked()
    finally:
        forget_models(browser_app)
