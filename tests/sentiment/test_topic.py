"""The live topic dashboard: stored posts offline, X's recent search online, polling for newer posts."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.data import online
from tests.support.fakebluesky import FakeBluesky, fake_bluesky  # noqa: F401  (a fixture, used by name)
from tests.support.fakemastodon import FakeMastodon, fake_mastodon  # noqa: F401  (a fixture, used by name)


def harbour_posts(start_id: int, texts: list[str]) -> list[dict]:
    """Posts of the last hour, as X's recent search (the last seven days) returns them."""
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return [{"id": start_id + i, "text": text, "created_at": at, "lang": "en"} for i, text in enumerate(texts)]


def test_offline_the_topic_is_searched_in_the_stored_posts(client, voices, add_account):
    page = client.get("/topic?q=route")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "New ones appear here as accounts are added or updated." in text
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
