"""The live topic dashboard: stored posts offline, X's recent search online, polling for newer posts."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.data import online
from tests.support.fakebluesky import FakeBluesky, fake_bluesky  # noqa: F401  (a fixture, used by name)
from tests.support.fakemastodon import FakeMastodon, fake_mastodon  # noqa: F401  (a fixture, used by name)
from twitapp.ingest.store import import_tweets
from twitapp.sentiment import topic
from twitapp.sources.records import AccountRecord, PostRecord

# Texts VADER reads one way each, all holding the word "harbour".
GLAD, SAD, PLAIN = (
    "I love the harbour, wonderful morning",
    "The harbour is awful, I hate it",
    "The harbour opens at nine",
)


def harbour_posts(start_id: int, texts: list[str]) -> list[dict]:
    """Posts of the last hour, as X's recent search (the last seven days) returns them."""
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return [{"id": start_id + i, "text": text, "created_at": at, "lang": "en"} for i, text in enumerate(texts)]


def test_offline_the_topic_is_searched_in_the_stored_posts(client, voices, add_account):
    page = client.get("/topic?q=route")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Sentiment of the stored posts matching" in text
    assert '<option value="x" disabled title="X&#39;s search needs X_BEARER_TOKEN.">' in text
    assert "Route 12 was 14 minutes late again" in text and "sourdough" not in text
    body = client.get("/api/topic?q=route").get_json()
    assert body["source"] == "stored" and body["model"] == {"backend": "vader", "version": None}
    assert len(body["posts"]) == 2 and sum(body["mix"].values()) == 2
    assert {p["username"] for p in body["posts"]} == {"commuter"}
    newest = body["newest_id"]
    assert client.get(f"/api/topic?q=route&since_id={newest}").get_json()["posts"] == []
    add_account("buses", ["Route 9 is brilliant today, on time!"], account_id=555)
    fresh = client.get(f"/api/topic?q=route&since_id={newest}").get_json()
    assert [p["text"] for p in fresh["posts"]] == ["Route 9 is brilliant today, on time!"]
    assert fresh["posts"][0]["label"] == "positive"
    # An account stored later with posts written earlier: its posts come once, and none shown comes again.
    add_account("trams", ["Old news: route 4 ran late in 2019"], account_id=556, start_id=1)
    later = client.get(f"/api/topic?q=route&since_id={fresh['newest_id']}").get_json()
    assert [p["text"] for p in later["posts"]] == ["Old news: route 4 ran late in 2019"]
    assert client.get(f"/api/topic?q=route&since_id={later['newest_id']}").get_json()["posts"] == []


@pytest.mark.app_config(TOPIC_CACHE_SECONDS=0)  # each poll asks X again
def test_online_the_topic_comes_from_x_recent_search(client, app, fake_x):
    online(app, fake_x)
    fake_x.add_user(90, "harbourfan", "Harbour Fan", harbour_posts(1000, ["Love the #harbour at dawn", "Nothing here"]))
    fake_x.add_user(91, "grumpy", "Grumpy", harbour_posts(2000, ["The #harbour smells awful today"]))
    body = client.get("/api/topic?q=%23harbour").get_json()
    assert body["source"] == "x"
    assert [(p["username"], p["label"]) for p in body["posts"]] == [("grumpy", "negative"), ("harbourfan", "positive")]
    query = next(q for path, q in fake_x.requests if path.endswith("/search/recent"))
    assert query["query"] == "#harbour -is:retweet lang:en"
    fake_x.add_posts("harbourfan", harbour_posts(3000, ["A calm #harbour evening"]))
    fake_x.requests.clear()
    newer = client.get(f"/api/topic?q=%23harbour&since_id={body['newest_id']}").get_json()
    assert [p["text"] for p in newer["posts"]] == ["A calm #harbour evening"]
    assert fake_x.requests[0][1]["since_id"] == "2000"
    page = client.get("/topic?q=%23harbour").get_data(as_text=True)
    assert "Recent posts from X" in page and "The #harbour smells awful today" in page
    assert 'class="mix-bar bar-negative"' in page


def test_topic_errors_are_explained(client, app, fake_x):
    assert client.get("/topic").status_code == 200  # just the form
    response = client.get("/topic?q=" + "x" * 201)
    assert response.status_code == 400 and "at most 200 characters" in response.get_data(as_text=True)
    response = client.get("/api/topic")
    assert response.status_code == 400 and "Type a hashtag" in response.get_json()["message"]
    response = client.get("/api/topic?q=route&since_id=abc")
    assert response.status_code == 400 and "since_id" in response.get_json()["message"]
    online(app, fake_x)
    fake_x.fail_next(401)
    response = client.get("/api/topic?q=route")
    assert response.status_code == 502 and "bearer token" in response.get_json()["message"]
    fake_x.fail_next(401)
    page = client.get("/topic?q=route")
    assert page.status_code == 502 and "bearer token" in page.get_data(as_text=True)


@pytest.mark.app_config(TOPIC_CACHE_SECONDS=60, RATELIMIT_ENABLED=True, RATELIMIT_TOPIC="2 per minute")
def test_a_topic_from_x_is_searched_once_for_everyone_and_limited_per_address(client, app, fake_x):
    """Every search spends the operator's X quota: visitors polling one topic share a search, and one
    address cannot search without end."""
    online(app, fake_x)
    fake_x.add_user(90, "harbourfan", "Harbour Fan", harbour_posts(1000, ["Love the #harbour at dawn"]))
    first = client.get("/api/topic?q=%23harbour").get_json()
    again = client.get("/topic?q=%23harbour", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    polled = client.get(f"/api/topic?q=%23harbour&since_id={first['newest_id']}").get_json()
    searches = [q for path, q in fake_x.requests if path.endswith("/search/recent")]
    assert len(searches) == 1  # three answers, one search, and only the first counted against the limit
    assert again.status_code == 200 and "Love the #harbour at dawn" in again.get_data(as_text=True)
    assert polled["posts"] == [] and first["posts"][0]["text"] == "Love the #harbour at dawn"
    assert client.get("/api/topic?q=cats OR dogs").status_code == 200  # a second search (X's OR is not or)
    response = client.get("/api/topic?q=cats or dogs")
    assert response.status_code == 429 and "at most 2 per 1 minute" in response.get_json()["message"]
    assert client.get("/topic?q=other", environ_base={"REMOTE_ADDR": "10.0.0.3"}).status_code == 200


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_TOPIC="1 per minute")
def test_offline_a_topic_spends_no_quota_and_has_no_topic_limit(client, voices):
    for _ in range(3):
        assert client.get("/api/topic?q=route").status_code == 200


@pytest.mark.app_config(TOPIC_CACHE_SECONDS=0)
def test_a_search_x_refuses_does_not_stick_to_the_topic(client, app, fake_x):
    """A refused search (a since_id X no longer takes, say) is forgotten: the next one asks afresh."""
    online(app, fake_x)
    fake_x.add_user(90, "harbourfan", "Harbour Fan", harbour_posts(1000, ["Love the #harbour at dawn"]))
    assert client.get("/api/topic?q=%23harbour").status_code == 200
    fake_x.fail_next(400)
    assert client.get("/api/topic?q=%23harbour").status_code == 502
    fake_x.requests.clear()
    assert client.get("/api/topic?q=%23harbour").status_code == 200
    assert "since_id" not in fake_x.requests[0][1]


@pytest.mark.app_config(TOPIC_CACHE_SECONDS=0)
def test_a_topic_from_a_mastodon_hashtag_needs_no_token_and_polls_for_newer(client, app, fake_mastodon):  # noqa: F811
    app.config.update(MASTODON_INSTANCE_URL=fake_mastodon.url_template, MASTODON_TOPIC_INSTANCE="big.example")
    fake_mastodon.add_account("big.example", "1", "ferrywatch")
    recent_at = datetime.now(UTC) - timedelta(hours=1)
    fake_mastodon.add_statuses(
        "big.example",
        "1",
        [
            {
                "id": "1000",
                "content": "<p>I love the <a href='x'>#harbour</a> at dawn</p>",
                "created_at": recent_at,
                "tags": ["harbour"],
            },
            {"id": "1001", "content": "<p>The #harbour smells awful</p>", "created_at": recent_at, "tags": ["harbour"]},
        ],
    )
    body = client.get("/api/topic?q=%23harbour&network=mastodon").get_json()
    assert body["source"] == "mastodon"
    assert [(p["username"], p["label"]) for p in body["posts"]] == [
        ("ferrywatch@big.example", "negative"),
        ("ferrywatch@big.example", "positive"),
    ]
    assert body["newest_id"] == "big.example/1001"
    fake_mastodon.add_statuses(
        "big.example",
        "1",
        [{"id": "1002", "content": "<p>A calm #harbour</p>", "created_at": recent_at, "tags": ["harbour"]}],
    )
    newer = client.get(f"/api/topic?q=%23harbour&network=mastodon&since_id={body['newest_id']}").get_json()
    assert [p["text"] for p in newer["posts"]] == ["A calm #harbour"]
    page = client.get("/topic?q=%23harbour&network=mastodon").get_data(as_text=True)
    assert "timeline on big.example" in page and "The #harbour smells awful" in page
    assert "network=mastodon" in page  # the page polls the same network
    response = client.get("/api/topic?q=two+words&network=mastodon")
    assert response.status_code == 400 and "hashtag" in response.get_json()["message"]


@pytest.mark.app_config(TOPIC_CACHE_SECONDS=0)  # each poll searches again
def test_a_topic_from_bluesky_needs_an_account_to_search_with(client, app, fake_bluesky):  # noqa: F811
    response = client.get("/api/topic?q=harbour&network=bluesky")
    assert response.status_code == 400 and "BLUESKY_APP_PASSWORD" in response.get_json()["message"]
    page = client.get("/topic?q=harbour&network=bluesky")
    assert page.status_code == 400 and "BLUESKY_HANDLE" in page.get_data(as_text=True)
    did = "did:plc:searchersearchersearcher"
    fake_bluesky.add_account(did, "searcher.bsky.social", app_password="app-pass-word")
    fake_bluesky.add_posts(
        did,
        [
            {
                "rkey": "3kaaa",
                "text": "Lovely harbour light tonight",
                "created_at": datetime.now(UTC) - timedelta(hours=2),
            }
        ],
    )
    app.config.update(
        BLUESKY_APPVIEW_URL=fake_bluesky.url,
        BLUESKY_SERVICE_URL=fake_bluesky.url,
        BLUESKY_HANDLE="searcher.bsky.social",
        BLUESKY_APP_PASSWORD="app-pass-word",
    )
    body = client.get("/api/topic?q=harbour&network=bluesky").get_json()
    assert body["source"] == "bluesky"
    assert [(p["username"], p["label"]) for p in body["posts"]] == [("searcher.bsky.social", "positive")]
    for _ in range(3):  # polls, each a search: the app signs in once, not at every poll
        poll = client.get(f"/api/topic?q=harbour&network=bluesky&since_id={body['newest_id']}")
        assert poll.status_code == 200 and poll.get_json()["posts"] == []  # nothing newer than what is shown
    assert len(fake_bluesky.requests_to("com.atproto.server.createSession")) == 1
    assert len(fake_bluesky.requests_to("app.bsky.feed.searchPosts")) == 4
    assert client.get("/api/topic?q=harbour&network=nowhere").status_code == 400


def store_dated(app, username: str, dated: list[tuple[datetime, str]], account_id: int) -> None:
    """An account whose posts were written at the given times, stored through the real ingest path."""
    posts = [
        PostRecord(id=account_id * 1000 + i, text=text, created_at=at, lang="en") for i, (at, text) in enumerate(dated)
    ]
    with app.app_context():
        import_tweets(AccountRecord(account_id, username, username.title()), posts, source="archive")


def main_of(html: str) -> str:
    return html[html.index("<main>") : html.index("</main>")]


def listed(html: str) -> list[str]:
    """The listed posts' texts, top to bottom."""
    return re.findall(r'<li class="post" data-label="\w+">\s*<p><span class="label[^"]*">\w+</span> (.*?)</p>', html)


def columns(html: str) -> list[tuple[str, dict[str, int]]]:
    """The mix-over-time chart's columns: each one's start and how many posts of each label it stacks."""
    found = re.findall(r'<g class="topic-column" data-start="([^"]+)" data-posts="\d+">(.*?)</g>', html, re.S)
    return [
        (start, {k: int(v) for k, v in re.findall(r'data-label="(\w+)" data-count="(\d+)"', body)})
        for start, body in found
    ]


def test_offline_the_page_says_it_shows_the_stored_posts_and_does_not_poll(client, voices):
    html = client.get("/topic?q=route").get_data(as_text=True)
    main = main_of(html)
    assert "<h1>Topic in the stored posts</h1>" in main and "<title>Topic in the stored posts" in html
    assert "Sentiment of the stored posts matching" in main and "Nothing new arrives while the page is open" in main
    assert re.search(r"\blive\b", main, re.I) is None  # not called live anywhere on the page itself
    assert "data-topic-url" not in main and 'id="topic-status"' not in main  # nothing polls for new posts
    assert "Page 1 of 1" in main and 'rel="next"' not in main
    # The mix reads at a glance: each label's count and share.
    assert re.search(r'class="topic-mix-count" data-label="neutral">\d+ · \d+%</text>', main)
    empty = main_of(client.get("/topic?q=nothingmatchesthis").get_data(as_text=True))
    assert "No stored post holds every word of the query." in empty and "Page 1 of" not in empty


def test_the_stored_posts_come_page_by_page_newest_first(client, app):
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    store_dated(app, "ferry", [(start + timedelta(hours=i), f"harbour note {i}") for i in range(45)], account_id=700)
    pages = [client.get(f"/topic?q=harbour&page={n}").get_data(as_text=True) for n in (1, 2, 3)]
    assert [listed(html) for html in pages] == [
        [f"harbour note {i}" for i in range(44, 24, -1)],
        [f"harbour note {i}" for i in range(24, 4, -1)],
        [f"harbour note {i}" for i in range(4, -1, -1)],
    ]
    assert "Page 1 of 3" in pages[0] and "Page 2 of 3" in pages[1] and "Page 3 of 3" in pages[2]
    # The pager keeps the query and the network.
    assert (
        'rel="next" href="/topic?q=harbour&amp;network=stored&amp;page=2"' in pages[0] and 'rel="prev"' not in pages[0]
    )
    assert 'rel="prev" href="/topic?q=harbour&amp;network=stored&amp;page=1"' in pages[1]
    assert 'rel="next" href="/topic?q=harbour&amp;network=stored&amp;page=3"' in pages[1]
    assert 'rel="next"' not in pages[2]
    # The mix and the chart count every match, not only the page's.
    for html in pages:
        assert '<small id="topic-total">45 posts</small>' in html
        assert sum(sum(counts.values()) for _, counts in columns(html)) == 45


@pytest.mark.app_config(TOPIC_CACHE_SECONDS=60)
def test_bad_page_numbers_are_explained_and_a_page_past_the_last_shows_the_last(client, app, fake_x, voices):
    for bad in ("abc", "0", "-1", "1.5", "2e3", "99999999999999", "٣"):
        response = client.get("/topic", query_string={"q": "route", "page": bad})
        text = response.get_data(as_text=True)
        assert response.status_code == 400, bad
        assert "&#34;page&#34; must be a whole number from 1 to 1,000,000" in text, bad
        assert 'id="topic-posts"' not in text, bad
    past = client.get("/topic?q=route&page=9")
    text = past.get_data(as_text=True)
    assert past.status_code == 200 and "There is no page 9: there\n    is 1. This is the last one." in text
    assert "Page 1 of 1" in text and "Route 12 was 14 minutes late again" in text
    online(app, fake_x)  # a bad page asks the network nothing
    assert client.get("/topic?q=%23harbour&page=none").status_code == 400
    assert not [path for path, _ in fake_x.requests if path.endswith("/search/recent")]


@pytest.mark.app_config(TOPIC_CACHE_SECONDS=60)
def test_a_live_topic_pages_through_its_posts_and_polls_on_its_first_page(client, app, fake_x):
    online(app, fake_x)
    fake_x.add_user(90, "harbourfan", "Harbour Fan", harbour_posts(1000, [f"#harbour view {i}" for i in range(25)]))
    first = client.get("/topic?q=%23harbour").get_data(as_text=True)
    second = client.get("/topic?q=%23harbour&network=x&page=2").get_data(as_text=True)
    assert "<h1>Live topic</h1>" in first and "Live sentiment of the posts matching" in first
    assert "data-topic-url=" in first and 'id="topic-status"' in first  # the first page takes new posts in
    assert "data-topic-url=" not in second  # a later page stays as it was
    assert listed(first) == [f"#harbour view {i}" for i in range(24, 4, -1)]
    assert listed(second) == [f"#harbour view {i}" for i in range(4, -1, -1)]
    assert "Page 1 of 2" in first and 'href="/topic?q=%23harbour&amp;network=x&amp;page=2"' in first
    assert len([path for path, _ in fake_x.requests if path.endswith("/search/recent")]) == 1


def test_the_chart_buckets_the_posts_hour_by_hour_over_a_short_span(client, app):
    day = datetime(2025, 6, 3, tzinfo=UTC)
    at = [
        day + timedelta(hours=10, minutes=5),
        day + timedelta(hours=10, minutes=40),
        day + timedelta(hours=13, minutes=59),
    ]
    store_dated(app, "quay", [(at[0], GLAD), (at[1], SAD), (at[2], PLAIN)], account_id=701)
    html = client.get("/topic?q=harbour").get_data(as_text=True)
    assert 'data-unit="hour"' in html and "hour by hour (UTC)" in html
    assert columns(html) == [
        ("2025-06-03T10:00:00+00:00", {"positive": 1, "negative": 1}),
        ("2025-06-03T13:00:00+00:00", {"neutral": 1}),
    ]  # 11:00 and 12:00 hold no post: no column
    assert re.findall(r'class="topic-axis-label topic-axis-x" text-anchor="\w+">([^<]+)</text>', html) == [
        "10:00",
        "3 Jun",
        "11:00",
        "12:00",
        "13:00",
    ]
    # The table beside it says the same, bucket by bucket.
    rows = re.findall(
        r'<tr><th scope="row">([^<]+)</th><td class="num">(\d+)</td>\s*((?:<td class="num">\d+%</td>)+)', html
    )
    assert [(name, int(n), re.findall(r"\d+%", cells)) for name, n, cells in rows] == [
        ("3 Jun 2025, 10:00", 2, ["50%", "0%", "50%"]),
        ("3 Jun 2025, 13:00", 1, ["0%", "100%", "0%"]),
    ]
    assert "From 3 Jun 2025, 10:00: 2 posts, 50% positive, 0% neutral, 50% negative; to 3 Jun 2025, 13:00" in html
    assert "2 of 4 hours have posts." in html
    assert 'class="topic-mix-count" data-label="positive">1 · 33%</text>' in html


def test_the_chart_buckets_the_posts_day_by_day_from_two_days_on(client, app):
    start = datetime(2025, 6, 3, 22, 30, tzinfo=UTC)
    dated = [(start, GLAD), (start + timedelta(hours=3), GLAD), (start + timedelta(days=4), SAD)]
    store_dated(app, "quay", dated, account_id=702)
    html = client.get("/topic?q=harbour").get_data(as_text=True)
    assert 'data-unit="day"' in html and "day by day (UTC)" in html
    assert columns(html) == [
        ("2025-06-03T00:00:00+00:00", {"positive": 1}),
        ("2025-06-04T00:00:00+00:00", {"positive": 1}),  # 01:30 the next day, UTC
        ("2025-06-07T00:00:00+00:00", {"negative": 1}),
    ]


def test_the_bucket_follows_the_span_of_the_posts():
    def unit_over(span: timedelta) -> str:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        posts = [{"created_at": at.isoformat(), "label": "neutral"} for at in (start, start + span)]
        return topic.over_time(posts).unit

    assert unit_over(timedelta(0)) == "hour"
    assert unit_over(timedelta(days=2) - timedelta(seconds=1)) == "hour"
    assert unit_over(timedelta(days=2)) == "day"
    assert unit_over(timedelta(days=61)) == "day"
    assert unit_over(timedelta(days=90)) == "week"
    assert unit_over(timedelta(days=400)) == "month"
    assert topic.over_time([]) is None
    months = topic.over_time(
        [{"created_at": at, "label": "positive"} for at in ("2024-11-20T10:00:00+00:00", "2026-02-01T00:00:00+00:00")]
    )
    starts = [bucket.start.strftime("%Y-%m") for bucket in months.buckets]
    assert starts[:3] == ["2024-11", "2024-12", "2025-01"] and starts[-1] == "2026-02" and len(starts) == 16
    assert [bucket.total for bucket in months.buckets] == [1] + [0] * 14 + [1]
    # Archives of many years: a column a year, not a hundred months.
    years = topic.over_time(
        [{"created_at": at, "label": "negative"} for at in ("2012-07-04T10:00:00+00:00", "2025-03-01T00:00:00+00:00")]
    )
    assert years.unit == "year" and [b.name for b in years.buckets] == [str(y) for y in range(2012, 2026)]
    assert [bucket.total for bucket in years.buckets] == [1] + [0] * 12 + [1]


def test_a_query_matching_many_stored_posts_shows_the_newest_and_says_how_many_match(client, app, monkeypatch):
    monkeypatch.setattr(topic, "RESULTS", 10)
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    store_dated(app, "ferry", [(start + timedelta(days=i), f"harbour day {i}") for i in range(12)], account_id=703)
    html = client.get("/topic?q=harbour").get_data(as_text=True)
    assert re.search(r'<small id="topic-total">the newest 10 of\s+12 posts</small>', html)
    assert listed(html) == [f"harbour day {i}" for i in range(11, 1, -1)] and "Page 1 of 1" in html
    assert columns(html)[0][0] == "2025-03-03T00:00:00+00:00"  # the chart covers what is shown


def test_paging_through_stored_posts_scores_them_once_and_a_new_post_is_seen(client, app, monkeypatch):
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    store_dated(app, "ferry", [(start + timedelta(hours=i), f"harbour note {i}") for i in range(45)], account_id=704)
    scored = []
    analyse = topic.sentiment.analyse

    def counting(texts, *args, **kwargs):
        scored.append(len(texts))
        return analyse(texts, *args, **kwargs)

    monkeypatch.setattr(topic.sentiment, "analyse", counting)
    pages = [client.get(f"/topic?q=harbour&page={n}").get_data(as_text=True) for n in (1, 2, 3, 1)]
    assert scored == [45] and listed(pages[3]) == listed(pages[0])
    store_dated(app, "tug", [(start + timedelta(days=9), "harbour note, the newest")], account_id=705)
    fresh = client.get("/topic?q=harbour").get_data(as_text=True)
    assert scored == [45, 46] and listed(fresh)[0] == "harbour note, the newest"
    assert '<small id="topic-total">46 posts</small>' in fresh
