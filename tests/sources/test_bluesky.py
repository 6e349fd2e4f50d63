"""The Bluesky client against a fake Bluesky on loopback: the atproto SDK's real request code runs, only the
server is fake."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.fakebluesky import FakeBluesky, fake_bluesky, link_facet  # noqa: F401  (a fixture by name)
from twitapp.sources import errors
from twitapp.sources.bluesky import (
    DEFAULT_APPVIEW,
    BlueskyAccountBlocked,
    BlueskyAccountNotFound,
    BlueskyAuthError,
    BlueskyClient,
    BlueskyError,
    BlueskyRateLimited,
    BlueskyUnavailable,
    client_from_config,
)
from twitapp.sources.records import MAX_POST_CHARS, AccountRecord, PostRecord

ANA = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
BEN = "did:plc:z72i7hdynmk6r22z27h6tvur"
BASE = datetime(2026, 1, 1, tzinfo=UTC)
PROFILE = "app.bsky.actor.getProfile"
FEED = "app.bsky.feed.getAuthorFeed"
SEARCH = "app.bsky.feed.searchPosts"
SESSION = "com.atproto.server.createSession"


def make_posts(count: int, *, start: int = 0) -> list[dict]:
    """``count`` posts, oldest first, one minute apart, with distinct counts."""
    return [
        {
            "rkey": f"3lpost{n:05d}",
            "text": f"post number {n}",
            "created_at": BASE + timedelta(minutes=n),
            "likes": n,
            "reposts": n % 7,
            "replies": n % 3,
        }
        for n in range(start, start + count)
    ]


def uri(did: str, n: int) -> str:
    return f"at://{did}/app.bsky.feed.post/3lpost{n:05d}"


@pytest.fixture
def client(fake_bluesky: FakeBluesky) -> Iterator[BlueskyClient]:  # noqa: F811
    with BlueskyClient(appview_url=fake_bluesky.url, timeout=5, backoff=0.01) as bluesky:
        yield bluesky


@pytest.fixture
def ana(fake_bluesky: FakeBluesky) -> FakeBluesky:  # noqa: F811
    fake_bluesky.add_account(ANA, "ana.bsky.social", display_name="Ana Lima", followers=1234, app_password="pw-ana")
    return fake_bluesky


def signed_in(fake: FakeBluesky, password: str = "pw-ana") -> BlueskyClient:
    return BlueskyClient(
        appview_url=fake.url, service_url=fake.url, login=("ana.bsky.social", password), timeout=5, backoff=0.01
    )


# -- looking up accounts ----------------------------------------------------------------------------------


def test_lookup_finds_the_account_whatever_the_case_of_the_handle(ana: FakeBluesky, client: BlueskyClient) -> None:
    account = client.lookup_user("@Ana.BSKY.social")

    assert account == AccountRecord(
        id=ANA, username="ana.bsky.social", name="Ana Lima", followers_count=1234, platform="bluesky"
    )
    assert ana.requests_to(PROFILE) == [{"actor": "Ana.BSKY.social"}]
    assert "atproto/" in ana.request_headers[-1]["User-Agent"]
    assert "Authorization" not in ana.request_headers[-1]  # the public AppView needs no credentials


def test_lookup_by_did_and_a_missing_display_name_falls_back_to_the_handle(
    fake_bluesky: FakeBluesky,  # noqa: F811
    client: BlueskyClient,
) -> None:
    fake_bluesky.add_account(BEN, "ben.example.com", followers=None)

    account = client.lookup_user(BEN)

    assert account == AccountRecord(id=BEN, username="ben.example.com", name="ben.example.com", platform="bluesky")


def test_something_that_is_no_handle_is_not_found_without_asking(ana: FakeBluesky, client: BlueskyClient) -> None:
    with pytest.raises(BlueskyAccountNotFound, match="not a Bluesky handle or DID"):
        client.lookup_user("../xrpc/secret")

    assert ana.requests == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "Bluesky has no account @nobody.bsky.social. Check the spelling"),
        ("takendown", r"Bluesky has taken down @nobody.bsky.social \(suspended\)"),
        ("deactivated", "Bluesky shows @nobody.bsky.social as deactivated"),
    ],
)
def test_missing_accounts_say_why(
    fake_bluesky: FakeBluesky,  # noqa: F811
    client: BlueskyClient,
    status: str | None,
    expected: str,
) -> None:
    if status is not None:
        fake_bluesky.add_account(BEN, "nobody.bsky.social", status=status)

    with pytest.raises(BlueskyAccountNotFound, match=expected):
        client.lookup_user("nobody.bsky.social")
    assert len(fake_bluesky.requests) == 1  # a 400 is not worth retrying


def test_unknown_did_is_not_found(fake_bluesky: FakeBluesky, client: BlueskyClient) -> None:  # noqa: F811
    with pytest.raises(BlueskyAccountNotFound, match=f"Bluesky has no account {BEN}. It may have been deleted"):
        client.fetch_timeline(BEN)


def test_a_handle_that_no_longer_resolves_is_named(fake_bluesky: FakeBluesky, client: BlueskyClient) -> None:  # noqa: F811
    fake_bluesky.add_account(BEN, "handle.invalid", display_name="Ben")

    with pytest.raises(BlueskyAccountNotFound, match=f"{BEN} with the handle handle.invalid: its handle no longer"):
        client.lookup_user(BEN)


# -- reading timelines ------------------------------------------------------------------------------------


def test_timeline_pages_with_the_cursor_up_to_the_limit(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.add_posts(ANA, make_posts(250))
    seen: list[int] = []

    posts = client.fetch_timeline(ANA, limit=230, progress=seen.append)

    assert [p.id for p in posts] == [uri(ANA, n) for n in range(249, 249 - 230, -1)]
    queries = ana.requests_to(FEED)
    assert [q["limit"] for q in queries] == ["100", "100", "100"]
    assert {q["filter"] for q in queries} == {"posts_no_replies"}
    assert "cursor" not in queries[0]
    assert queries[1]["cursor"] != queries[2]["cursor"]
    assert seen == [100, 200, 230]


def test_timeline_stops_when_the_feed_ends(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.add_posts(ANA, make_posts(120))

    posts = client.fetch_timeline(ANA, limit=400)

    assert len(posts) == 120
    assert len(ana.requests_to(FEED)) == 2


def test_a_repeated_cursor_ends_the_paging(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.add_posts(ANA, make_posts(3))
    page = {"feed": [ana.item(ANA, "3lpost00002")], "cursor": "same"}
    ana.serve_next(200, page, times=5)

    posts = client.fetch_timeline(ANA, limit=50)

    assert [p.id for p in posts] == [uri(ANA, 2)]
    assert len(ana.requests_to(FEED)) == 2


def test_posts_carry_time_counts_and_language(ana: FakeBluesky, client: BlueskyClient) -> None:
    posts = make_posts(3)
    posts[2]["langs"] = ["pt", "en"]
    ana.add_posts(ANA, posts)

    newest, older, _ = client.fetch_timeline(ANA)

    assert newest == PostRecord(
        id=uri(ANA, 2),
        text="post number 2",
        created_at=BASE + timedelta(minutes=2),
        like_count=2,
        retweet_count=2,
        reply_count=2,
        lang="pt",
        has_media=False,
    )
    assert newest.created_at.utcoffset() == timedelta(0)
    assert older.lang == "en"


def test_missing_or_negative_counts_read_as_unknown(ana: FakeBluesky, client: BlueskyClient) -> None:
    """A count Bluesky did not send (or sent as nonsense) is unknown, as for every source, not 0."""
    ana.add_posts(ANA, make_posts(1))
    item = ana.item(ANA, "3lpost00000")
    del item["post"]["likeCount"], item["post"]["record"]["langs"]
    item["post"]["repostCount"] = -3
    ana.serve_next(200, {"feed": [item]})

    (post,) = client.fetch_timeline(ANA)

    assert (post.like_count, post.retweet_count, post.reply_count, post.lang) == (None, None, 0, None)


def test_replies_and_reposts_are_left_out(ana: FakeBluesky, client: BlueskyClient) -> None:
    posts = make_posts(4)
    posts[1]["reply"] = True
    posts[2]["reposted"] = True
    ana.add_posts(ANA, posts)

    assert [p.id for p in client.fetch_timeline(ANA)] == [uri(ANA, 3), uri(ANA, 0)]


def test_someone_elses_post_without_a_reason_is_left_out(ana: FakeBluesky, client: BlueskyClient) -> None:
    posts = make_posts(2)
    posts[0]["reposted"] = True
    ana.add_posts(ANA, posts)
    other = ana.item(ANA, "3lpost00000")
    del other["reason"]
    ana.serve_next(200, {"feed": [ana.item(ANA, "3lpost00001"), other]})

    assert [p.id for p in client.fetch_timeline(ANA)] == [uri(ANA, 1)]


def test_a_pinned_post_is_neither_doubled_nor_taken_for_the_newest(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.add_posts(ANA, make_posts(3))
    pinned = ana.item(ANA, "3lpost00000")
    pinned["reason"] = {"$type": "app.bsky.feed.defs#reasonPin"}
    items = [ana.item(ANA, f"3lpost{n:05d}") for n in (2, 1, 0)]
    ana.serve_next(200, {"feed": [pinned, *items]})

    posts = client.fetch_timeline(ANA, since_time=BASE + timedelta(seconds=30))

    assert [p.id for p in posts] == [uri(ANA, 2), uri(ANA, 1)]


def test_links_are_expanded_from_facets_counting_utf8_bytes(ana: FakeBluesky, client: BlueskyClient) -> None:
    text = "Olá 👋🏽 café: example.com/a… e mais bsky.app"
    facets = [
        link_facet(text, "example.com/a…", "https://example.com/a/long/path?q=1"),
        link_facet(text, "bsky.app", "https://bsky.app/"),
    ]
    ana.add_posts(ANA, [{"rkey": "3lpost00000", "text": text, "created_at": BASE, "facets": facets}])

    (post,) = client.fetch_timeline(ANA)

    assert post.text == "Olá 👋🏽 café: https://example.com/a/long/path?q=1 e mais https://bsky.app/"


def test_broken_facets_are_ignored(ana: FakeBluesky, client: BlueskyClient) -> None:
    text = "héllo link.example"
    good = link_facet(text, "link.example", "https://link.example/x")
    overlapping = link_facet(text, "link", "https://overlap.example/")
    beyond = link_facet(text, "hé", "https://beyond.example/")
    beyond["index"] = {"byteStart": 10, "byteEnd": 99}
    splitting = link_facet(text, "hé", "https://split.example/")
    splitting["index"] = {"byteStart": 0, "byteEnd": 2}  # ends inside "é"
    facets = [good, overlapping, beyond, splitting]
    ana.add_posts(ANA, [{"rkey": "3lpost00000", "text": text, "created_at": BASE, "facets": facets}])

    (post,) = client.fetch_timeline(ANA)

    assert post.text == "héllo https://link.example/x"


@pytest.mark.parametrize(
    ("embed", "has_media"),
    [("images", True), ("video", True), ("recordWithMedia", True), ("external", False), ("record", False)],
)
def test_has_media_means_images_or_video(ana: FakeBluesky, client: BlueskyClient, embed: str, has_media: bool) -> None:
    ana.add_posts(ANA, [{"rkey": "3lpost00000", "text": "look", "created_at": BASE, "embed": embed}])

    assert client.fetch_timeline(ANA)[0].has_media is has_media


@pytest.mark.parametrize(
    ("created", "indexed", "expected"),
    [
        ("2026-03-01T00:00:00Z", "2026-01-01T10:00:00.000Z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (
            "2026-01-01T12:30:00.123456789+02:00",
            "2026-01-01T11:00:00.000Z",
            datetime(2026, 1, 1, 10, 30, 0, 123456, UTC),
        ),
        ("2026-01-01T09:00:00", "2026-01-01T11:00:00.000Z", datetime(2026, 1, 1, 9, tzinfo=UTC)),
    ],
)
def test_created_at_is_utc_and_never_after_bluesky_saw_the_post(
    ana: FakeBluesky, client: BlueskyClient, created: str, indexed: str, expected: datetime
) -> None:
    ana.add_posts(ANA, [{"rkey": "3lpost00000", "text": "time", "created_at": created, "indexed_at": indexed}])

    (post,) = client.fetch_timeline(ANA)

    assert post.created_at == expected
    assert post.created_at.tzinfo is not None


def test_update_since_time_fetches_only_the_newer_page(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.add_posts(ANA, make_posts(250))
    calls: list[int] = []

    posts = client.fetch_timeline(ANA, since_time=BASE + timedelta(minutes=240), progress=calls.append)

    assert [p.id for p in posts] == [uri(ANA, n) for n in range(249, 240, -1)]
    assert len(ana.requests_to(FEED)) == 1
    assert calls == [9]


def test_update_since_id_stops_at_the_known_post(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.add_posts(ANA, make_posts(30))

    assert [p.id for p in client.fetch_timeline(ANA, since_id=uri(ANA, 27))] == [uri(ANA, 29), uri(ANA, 28)]
    assert client.fetch_timeline(ANA, since_id=uri(ANA, 29)) == []
    assert len(ana.requests_to(FEED)) == 2


def test_the_fake_refuses_page_sizes_bluesky_refuses(ana: FakeBluesky) -> None:
    answer = httpx.get(f"{ana.url}/xrpc/{FEED}", params={"actor": ANA, "limit": 101})

    assert answer.status_code == 400
    assert answer.json() == {"error": "InvalidRequest", "message": "Error: limit can not be greater than 100"}


# -- failures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_refusals_are_auth_errors(ana: FakeBluesky, client: BlueskyClient, status: int) -> None:
    ana.fail_next(status)

    with pytest.raises(
        BlueskyAuthError, match=f"Bluesky refused to answer while looking up @ana.bsky.social \\({status}"
    ):
        client.lookup_user("ana.bsky.social")
    assert len(ana.requests) == 1


def test_rate_limit_says_when_to_retry(ana: FakeBluesky, client: BlueskyClient) -> None:
    reset = int(time.time()) + 170
    ana.fail_next(429, headers={"ratelimit-reset": str(reset)})

    with pytest.raises(BlueskyRateLimited) as caught:
        client.fetch_timeline(ANA)

    assert caught.value.reset_at == datetime.fromtimestamp(reset, tz=UTC)
    assert f"Bluesky's rate limit is spent; try again after {caught.value.reset_at:%H:%M} UTC" in str(caught.value)
    assert "in about 3 minutes" in str(caught.value)
    assert len(ana.requests) == 1


def test_rate_limit_without_a_reset_still_advises(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.fail_next(429, headers={"ratelimit-reset": None})

    with pytest.raises(BlueskyRateLimited, match="5 minutes") as caught:
        client.lookup_user("ana.bsky.social")
    assert caught.value.reset_at is None


@pytest.mark.parametrize("status", [500, 502, 503])
def test_passing_server_errors_are_retried(ana: FakeBluesky, client: BlueskyClient, status: int) -> None:
    ana.fail_next(status, times=2)

    assert client.lookup_user("ana.bsky.social").id == ANA
    assert len(ana.requests) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_lasting_server_errors_mean_unavailable(ana: FakeBluesky, client: BlueskyClient, status: int) -> None:
    ana.fail_next(status, times=4)

    with pytest.raises(BlueskyUnavailable, match=f"Bluesky is having trouble \\({status} .*Try again in a few minutes"):
        client.lookup_user("ana.bsky.social")
    assert len(ana.requests) == 4  # the first try and three retries
    assert client.lookup_user("ana.bsky.social").id == ANA


def test_retries_back_off_exponentially(ana: FakeBluesky) -> None:
    ana.fail_next(503, times=3)
    started = time.monotonic()
    with BlueskyClient(appview_url=ana.url, timeout=5, backoff=0.05) as bluesky:
        assert bluesky.lookup_user(ANA).id == ANA
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2


def test_a_slow_bluesky_times_out(ana: FakeBluesky) -> None:
    ana.delay = 0.4
    started = time.monotonic()
    with (
        BlueskyClient(appview_url=ana.url, timeout=0.1, retries=1, backoff=0.01) as bluesky,
        pytest.raises(BlueskyUnavailable, match=r"Bluesky did not answer within 0\.1 seconds"),
    ):
        bluesky.lookup_user("ana.bsky.social")
    assert time.monotonic() - started < 1.5
    ana.delay = 0
    assert len(ana.requests) == 2  # one retry


def test_server_not_listening_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    with (
        BlueskyClient(appview_url=url, timeout=2, backoff=0.01) as bluesky,
        pytest.raises(BlueskyUnavailable) as caught,
    ):
        bluesky.lookup_user("ana.bsky.social")

    assert f"Could not reach Bluesky at {url}" in str(caught.value)
    assert "BLUESKY_APPVIEW_URL" in str(caught.value)


def test_an_html_page_in_place_of_an_answer_is_malformed(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.serve_next(200, "<html><body>Checking your browser</body></html>")

    with pytest.raises(
        BlueskyUnavailable, match=r"malformed answer while looking up @ana\.bsky\.social: it is not a JSON object"
    ):
        client.lookup_user("ana.bsky.social")


def test_an_html_gateway_error_is_retried_then_unavailable(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.serve_next(502, "<html>502 Bad Gateway</html>", times=4)

    with pytest.raises(BlueskyUnavailable, match="502"):
        client.lookup_user("ana.bsky.social")
    assert len(ana.requests) == 4


def test_broken_json_is_malformed(ana: FakeBluesky, client: BlueskyClient) -> None:
    ana.serve_next(200, b'{"feed": [', headers={"Content-Type": "application/json"})

    with pytest.raises(BlueskyUnavailable, match="malformed answer"):
        client.fetch_timeline(ANA)


def test_a_wrong_appview_url_is_named(ana: FakeBluesky) -> None:
    with (
        BlueskyClient(appview_url=ana.url + "/elsewhere/", timeout=5, backoff=0.01) as bluesky,
        pytest.raises(BlueskyUnavailable, match=r"the server at .*/elsewhere \(BLUESKY_APPVIEW_URL\) does not serve"),
    ):
        bluesky.lookup_user("ana.bsky.social")


@pytest.mark.parametrize("written", ["yesterday", "0001-01-01T00:00:00+01:00", None])
def test_a_post_whose_own_time_cannot_be_read_takes_the_time_bluesky_saw_it(
    ana: FakeBluesky, client: BlueskyClient, written
) -> None:
    ana.add_posts(ANA, make_posts(1))
    item = ana.item(ANA, "3lpost00000")
    item["post"]["record"]["createdAt"] = written
    item["post"]["indexedAt"] = "2026-03-04T05:06:07.000Z"
    ana.serve_next(200, {"feed": [item]})
    (post,) = client.fetch_timeline(ANA)
    assert post.created_at == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda item: item["post"]["record"].pop("text"), "has no text"),
        (lambda item: (item["post"]["record"].pop("createdAt"), item["post"].pop("indexedAt")), "indexedAt"),
        (
            lambda item: (item["post"]["record"].update(createdAt="yesterday"), item["post"].update(indexedAt="?")),
            "has no valid createdAt",
        ),
        (lambda item: item["post"]["record"].update(text="x" * (MAX_POST_CHARS + 1)), "50,001 characters"),
        (lambda item: item["post"].pop("uri"), r"feed\.0\.post\.uri"),
        (lambda item: item.pop("post"), r"feed\.0\.post"),
    ],
)
def test_corrupt_posts_are_malformed(ana: FakeBluesky, client: BlueskyClient, change, expected: str) -> None:
    ana.add_posts(ANA, make_posts(1))
    item = ana.item(ANA, "3lpost00000")
    change(item)
    ana.serve_next(200, {"feed": [item]})

    with pytest.raises(BlueskyUnavailable, match=f"malformed .*{expected}"):
        client.fetch_timeline(ANA)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BlockedByActor", f"Bluesky hides the posts of the account {ANA}, which blocks the app's account"),
        ("BlockedActor", f"Bluesky hides the posts of the account {ANA}, which is blocked by the app's account"),
    ],
)
def test_a_block_is_named(ana: FakeBluesky, client: BlueskyClient, name: str, expected: str) -> None:
    ana.serve_next(400, {"error": name, "message": f"Requester has blocked actor: {ANA}"})

    with pytest.raises(BlueskyAccountBlocked, match=expected) as caught:
        client.fetch_timeline(ANA)
    assert isinstance(caught.value, errors.AccountProtected)


def test_every_failure_shares_the_bases_the_jobs_catch() -> None:
    pairs = [
        (BlueskyAccountNotFound, errors.AccountNotFound),
        (BlueskyAccountBlocked, errors.AccountProtected),
        (BlueskyAuthError, errors.SourceAuthError),
        (BlueskyRateLimited, errors.RateLimited),
        (BlueskyUnavailable, errors.SourceUnavailable),
    ]
    for kind, base in pairs:
        assert issubclass(kind, BlueskyError) and issubclass(kind, base)


# -- searching --------------------------------------------------------------------------------------------


def test_search_without_login_is_refused_without_asking(ana: FakeBluesky, client: BlueskyClient) -> None:
    with pytest.raises(BlueskyAuthError, match="Set BLUESKY_HANDLE and BLUESKY_APP_PASSWORD"):
        client.search_recent("coffee")
    assert ana.requests == []


def test_the_fake_refuses_anonymous_search(ana: FakeBluesky) -> None:
    answer = httpx.get(f"{ana.url}/xrpc/{SEARCH}", params={"q": "coffee"})

    assert answer.status_code == 401
    assert answer.json()["error"] == "AuthMissing"


def test_search_signs_in_once_and_returns_posts_with_their_authors(ana: FakeBluesky) -> None:
    ana.add_account(BEN, "ben.example.com")
    ana.add_posts(ANA, [{"rkey": "3lpost00001", "text": "Coffee at noon", "created_at": BASE}])
    ana.add_posts(BEN, [{"rkey": "3lpost00002", "text": "more coffee", "created_at": BASE + timedelta(minutes=5)}])
    ana.add_posts(BEN, [{"rkey": "3lpost00003", "text": "tea", "created_at": BASE + timedelta(minutes=9)}])

    with signed_in(ana) as bluesky:
        found = bluesky.search_recent("coffee")
        again = bluesky.search_recent("coffee", since_id=uri(ANA, 1))

    assert [(post.id, handle) for post, handle in found] == [
        (uri(BEN, 2), "ben.example.com"),
        (uri(ANA, 1), "ana.bsky.social"),
    ]
    assert [post.id for post, _ in again] == [uri(BEN, 2)]
    assert len(ana.requests_to(SESSION)) == 1
    assert ana.requests_to(SEARCH)[0] == {"q": "coffee", "sort": "latest", "limit": "100"}
    assert ana.request_headers[-1]["Authorization"].startswith("Bearer ")


def test_search_pages_up_to_the_limit(ana: FakeBluesky) -> None:
    ana.add_posts(ANA, make_posts(150))

    with signed_in(ana) as bluesky:
        found = bluesky.search_recent("post", limit=130)

    assert [post.id for post, _ in found] == [uri(ANA, n) for n in range(149, 19, -1)]
    assert [q["limit"] for q in ana.requests_to(SEARCH)] == ["100", "30"]


def test_a_wrong_app_password_names_the_settings(ana: FakeBluesky) -> None:
    with signed_in(ana, password="wrong") as bluesky, pytest.raises(BlueskyAuthError) as caught:
        bluesky.search_recent("coffee")

    assert "Invalid identifier or password" in str(caught.value)
    assert "BLUESKY_APP_PASSWORD" in str(caught.value)
    assert ana.requests_to(SEARCH) == []


# -- configuration ----------------------------------------------------------------------------------------


def test_config_always_gives_an_anonymous_client_by_default() -> None:
    with client_from_config({}) as bluesky:
        assert bluesky._appview_url == DEFAULT_APPVIEW
        assert bluesky._login is None
        with pytest.raises(BlueskyAuthError, match="BLUESKY_HANDLE"):
            bluesky.search_recent("anything")


def test_config_points_the_client_and_signs_in(ana: FakeBluesky) -> None:
    ana.add_posts(ANA, [{"rkey": "3lpost00001", "text": "coffee", "created_at": BASE}])
    config = {
        "BLUESKY_APPVIEW_URL": ana.url + "/xrpc/",
        "BLUESKY_SERVICE_URL": ana.url,
        "BLUESKY_HANDLE": "@ana.bsky.social",
        "BLUESKY_APP_PASSWORD": "pw-ana",
        "SOURCE_RETRY_BACKOFF": "0.01",
    }

    with client_from_config(config) as bluesky:
        assert bluesky.lookup_user("ana.bsky.social").id == ANA
        assert [post.id for post, _ in bluesky.search_recent("coffee")] == [uri(ANA, 1)]


def test_a_nonsense_url_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="BLUESKY_APPVIEW_URL"):
        BlueskyClient(appview_url="public.api.bsky.app")


def test_an_account_that_asks_not_to_be_shown_signed_out_is_not_fetched(
    ana: FakeBluesky, client: BlueskyClient
) -> None:
    """Bluesky's apps honour the account's own !no-unauthenticated label; this app shows posts to anyone."""
    profile = {
        "did": ANA,
        "handle": "ana.bsky.social",
        "labels": [
            {
                "src": ANA,
                "uri": f"at://{ANA}/app.bsky.actor.profile/self",
                "val": "!no-unauthenticated",
                "cts": "2026-01-01T00:00:00.000Z",
            }
        ],
    }
    ana.serve_next(200, profile)
    with pytest.raises(errors.AccountProtected, match="not to show its posts to people who are not signed in"):
        client.lookup_user("ana.bsky.social")
