"""The X client against a fake X on loopback: tweepy's real request code runs, only the server is fake."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.fakex import FakeXAPI, fake_x  # noqa: F401  (fake_x is a fixture used by name)
from twitapp.sources.records import AccountRecord, PostRecord
from twitapp.sources.x import (
    AccountNotFound,
    AccountProtected,
    XAPIError,
    XAuthError,
    XClient,
    XRateLimited,
    XUnavailable,
    client_from_config,
)

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def make_posts(count: int, *, first_id: int = 1000) -> list[dict]:
    """``count`` posts, oldest first, one minute apart, with distinct metrics."""
    return [
        {
            "id": first_id + n,
            "text": f"post number {n}",
            "created_at": (BASE + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "like_count": n,
            "retweet_count": n % 7,
            "reply_count": n % 3,
            "lang": "en",
        }
        for n in range(count)
    ]


@pytest.fixture
def client(fake_x: FakeXAPI) -> Iterator[XClient]:  # noqa: F811
    with XClient("test-token", api_url=fake_x.url, timeout=5, backoff=0.01) as x:
        yield x


def tweet_requests(fake: FakeXAPI) -> list[dict[str, str]]:
    return [query for path, query in fake.requests if path.endswith("/tweets")]


# -- looking up accounts ----------------------------------------------------------------------------------


def test_lookup_finds_account_whatever_the_case_of_the_handle(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(2244994945, "XDevelopers", "Developers", followers=1_250_000)

    account = client.lookup_user("@xdevelopers")

    assert account == AccountRecord(id=2244994945, username="XDevelopers", name="Developers", followers_count=1_250_000)
    assert isinstance(account.id, int)
    assert fake_x.requests[-1][0] == "/2/users/by/username/xdevelopers"


def test_requests_go_through_tweepy_with_the_bearer_token(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(1, "someone", "Some One")

    client.lookup_user("someone")

    headers = fake_x.request_headers[-1]
    assert "Tweepy/" in headers["User-Agent"]
    assert headers["Authorization"] == "Bearer test-token"


def test_unknown_account_is_reported_readably(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    with pytest.raises(AccountNotFound) as caught:
        client.lookup_user("nobody_here")

    message = str(caught.value)
    assert "@nobody_here" in message
    assert "Could not find user with username: [nobody_here]." in message


def test_impossible_handle_is_refused_without_asking_x(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    with pytest.raises(AccountNotFound, match="not a valid X username"):
        client.lookup_user("../../2/tweets")

    assert fake_x.requests == []


def test_suspended_account_reads_as_not_found(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.serve_next(
        200,
        {
            "errors": [
                {
                    "detail": "User has been suspended: [gone].",
                    "title": "Forbidden",
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
            ]
        },
    )

    with pytest.raises(AccountNotFound, match="suspended"):
        client.lookup_user("gone")


# -- reading timelines ------------------------------------------------------------------------------------


def test_timeline_pages_up_to_the_limit_newest_first(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(42, "prolific", "Prolific", make_posts(250))
    seen: list[int] = []

    posts = client.fetch_timeline(42, limit=230, progress=seen.append)

    assert len(posts) == 230
    assert [p.id for p in posts] == list(range(1249, 1249 - 230, -1))
    assert [q["max_results"] for q in tweet_requests(fake_x)] == ["100", "100", "30"]
    assert "pagination_token" not in tweet_requests(fake_x)[0]
    assert all("pagination_token" in q for q in tweet_requests(fake_x)[1:])
    assert seen == [100, 200, 230]


def test_timeline_posts_carry_time_metrics_and_language(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    posts = make_posts(10)
    posts[8]["media"] = True
    fake_x.add_user(42, "prolific", "Prolific", posts)

    newest, with_photo = client.fetch_timeline(42, limit=10)[:2]

    assert newest == PostRecord(
        id=1009,
        text="post number 9",
        created_at=datetime(2026, 1, 1, 0, 9, tzinfo=UTC),
        like_count=9,
        retweet_count=2,
        reply_count=0,
        lang="en",
        has_media=False,  # asked for, and X left "attachments" out
    )
    assert newest.created_at.utcoffset() == timedelta(0)
    assert with_photo.has_media is True


def test_timeline_stops_when_the_account_runs_out(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(42, "quiet", "Quiet", make_posts(120))

    posts = client.fetch_timeline(42, limit=400)

    assert len(posts) == 120
    assert len(tweet_requests(fake_x)) == 2


def test_small_limit_still_asks_for_the_minimum_page_and_trims(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(42, "prolific", "Prolific", make_posts(20))

    posts = client.fetch_timeline(42, limit=3)

    assert [p.id for p in posts] == [1019, 1018, 1017]
    assert [q["max_results"] for q in tweet_requests(fake_x)] == ["5"]


def test_limit_is_capped_at_what_x_can_serve(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(42, "huge", "Huge", make_posts(3300))

    posts = client.fetch_timeline(42, limit=10_000)

    assert len(posts) == 3200
    assert len(tweet_requests(fake_x)) == 32


def test_since_id_returns_only_newer_posts(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(42, "prolific", "Prolific", make_posts(30))

    posts = client.fetch_timeline(42, since_id=1024)

    assert [p.id for p in posts] == [1029, 1028, 1027, 1026, 1025]
    assert tweet_requests(fake_x)[0]["since_id"] == "1024"


def test_since_id_at_the_newest_post_gives_nothing(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(42, "prolific", "Prolific", make_posts(30))
    calls: list[int] = []

    assert client.fetch_timeline(42, since_id=1029, progress=calls.append) == []
    assert calls == [0]


def test_replies_and_reposts_are_left_out(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    posts = make_posts(4)
    posts[1]["is_reply"] = True
    posts[2]["is_retweet"] = True
    fake_x.add_user(42, "chatty", "Chatty", posts)

    fetched = client.fetch_timeline(42)

    assert [p.id for p in fetched] == [1003, 1000]
    query = tweet_requests(fake_x)[0]
    assert set(query["exclude"].split(",")) == {"replies", "retweets"}
    assert set(query["tweet.fields"].split(",")) >= {"created_at", "public_metrics", "lang"}


def test_timeline_of_unknown_account_is_not_found(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    with pytest.raises(AccountNotFound, match="Could not find user with id"):
        client.fetch_timeline(999)


# -- failures ---------------------------------------------------------------------------------------------


def test_bad_token_is_an_auth_error(fake_x: FakeXAPI) -> None:  # noqa: F811
    fake_x.add_user(1, "someone", "Some One")

    with XClient("wrong-token", api_url=fake_x.url) as x, pytest.raises(XAuthError) as caught:
        x.lookup_user("someone")

    assert "X_BEARER_TOKEN" in str(caught.value)
    assert fake_x.request_headers[-1]["Authorization"] == "Bearer wrong-token"


def test_forbidden_is_an_auth_error_naming_the_access_level(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(42, "prolific", "Prolific", make_posts(5))
    fake_x.fail_next(403)

    with pytest.raises(XAuthError) as caught:
        client.fetch_timeline(42)

    assert "403" in str(caught.value)
    assert "access level" in str(caught.value)


def test_rate_limit_says_when_to_retry(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    reset = int(time.time()) + 600
    fake_x.add_user(42, "prolific", "Prolific", make_posts(5))
    fake_x.fail_next(429, headers={"x-rate-limit-reset": str(reset)})

    with pytest.raises(XRateLimited) as caught:
        client.fetch_timeline(42)

    assert caught.value.reset_at == datetime.fromtimestamp(reset, tz=UTC)
    assert f"{caught.value.reset_at:%H:%M} UTC" in str(caught.value)
    assert "10 minutes" in str(caught.value)


def test_rate_limit_without_reset_header_still_advises(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.serve_next(429, {"title": "Too Many Requests", "detail": "Too Many Requests"})

    with pytest.raises(XRateLimited, match="15 minutes") as caught:
        client.lookup_user("someone")

    assert caught.value.reset_at is None


def test_rate_limit_midway_through_paging_is_not_swallowed(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(42, "prolific", "Prolific", make_posts(250))
    client.fetch_timeline(42, limit=100)
    fake_x.requests.clear()
    fake_x.serve_next(200, {"data": [], "meta": {"result_count": 0, "next_token": "fx3e8"}})
    fake_x.fail_next(429)

    with pytest.raises(XRateLimited):
        client.fetch_timeline(42, limit=250)
    assert len(fake_x.requests) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_passing_server_errors_are_retried(fake_x: FakeXAPI, client: XClient, status: int) -> None:  # noqa: F811
    fake_x.add_user(1, "someone", "Some One")
    fake_x.fail_next(status, times=2)

    assert client.lookup_user("someone").id == 1
    assert len(fake_x.requests) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_lasting_server_errors_mean_unavailable(fake_x: FakeXAPI, client: XClient, status: int) -> None:  # noqa: F811
    fake_x.add_user(1, "someone", "Some One")
    fake_x.fail_next(status, times=4)

    with pytest.raises(XUnavailable, match=str(status)):
        client.lookup_user("someone")

    assert len(fake_x.requests) == 4  # the first try and three retries, then it gives up
    assert client.lookup_user("someone").id == 1  # a later attempt works once X recovers


def test_retries_back_off_exponentially(fake_x: FakeXAPI) -> None:  # noqa: F811
    fake_x.add_user(1, "someone", "Some One")
    fake_x.fail_next(503, times=3)
    started = time.monotonic()
    with XClient("test-token", api_url=fake_x.url, timeout=5, backoff=0.1) as x:
        assert x.lookup_user("someone").id == 1
    assert time.monotonic() - started >= 0.1 + 0.2  # waits of 0.1 s and 0.2 s (urllib3 skips the first)


def test_html_error_page_means_unavailable(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.serve_next(502, "<html><body>Bad gateway</body></html>", times=4)

    with pytest.raises(XUnavailable, match="502"):
        client.lookup_user("someone")


def test_non_json_answer_is_malformed(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.serve_next(200, "<html>over capacity</html>")

    with pytest.raises(XUnavailable, match="malformed"):
        client.lookup_user("someone")


def test_post_without_text_is_malformed(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    posts = make_posts(3)
    del posts[1]["text"]
    fake_x.add_user(42, "broken", "Broken", posts)

    with pytest.raises(XUnavailable, match="malformed"):
        client.fetch_timeline(42)


@pytest.mark.parametrize(
    "item",
    [
        {"text": "no id", "created_at": "2026-01-01T00:00:00.000Z"},
        {"id": "abc", "text": "bad id", "created_at": "2026-01-01T00:00:00.000Z"},
        {"id": "7", "text": "bad time", "created_at": "yesterday"},
        "not an object",
    ],
)
def test_corrupt_post_fields_are_malformed(fake_x: FakeXAPI, client: XClient, item: object) -> None:  # noqa: F811
    fake_x.serve_next(200, {"data": [item], "meta": {"result_count": 1}})

    with pytest.raises(XUnavailable, match="malformed"):
        client.fetch_timeline(42)


def test_user_without_id_is_malformed(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.serve_next(200, {"data": {"username": "someone", "name": "Some One"}})

    with pytest.raises(XUnavailable, match="malformed"):
        client.lookup_user("someone")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_server_not_listening_is_unavailable_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()

    with XClient("test-token", api_url=url, timeout=2, backoff=0.01) as x, pytest.raises(XUnavailable) as caught:
        x.lookup_user("someone")

    assert time.monotonic() - started < 2
    assert "Could not reach the X API" in str(caught.value)


def test_server_that_never_answers_times_out() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel completes connections, but nobody ever reads or answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    # Closing the listener resets its queued connections, so a client without a timeout fails, not hangs.
    watchdog = threading.Timer(3, silent.close)
    watchdog.start()
    started = time.monotonic()
    try:
        with (
            XClient("test-token", api_url=url, timeout=0.3, retries=1, backoff=0.01) as x,
            pytest.raises(XUnavailable, match=r"0\.3 seconds"),
        ):
            x.lookup_user("someone")
    finally:
        watchdog.cancel()
        silent.close()

    assert time.monotonic() - started < 2


def test_every_failure_shares_one_base_class() -> None:
    for kind in (AccountNotFound, XAuthError, XRateLimited, XUnavailable):
        assert issubclass(kind, XAPIError)


# -- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{}, {"X_BEARER_TOKEN": None}, {"X_BEARER_TOKEN": "  "}])
def test_no_token_means_no_client(config: dict) -> None:
    assert client_from_config(config) is None


def test_config_api_url_redirects_the_client(fake_x: FakeXAPI) -> None:  # noqa: F811
    fake_x.add_user(7, "configured", "Configured")
    x = client_from_config({"X_BEARER_TOKEN": "test-token", "X_API_URL": fake_x.url + "/"})
    assert x is not None

    with x:
        assert x.lookup_user("configured").id == 7


def test_a_protected_account_is_named_as_such(fake_x: FakeXAPI, client: XClient) -> None:  # noqa: F811
    fake_x.add_user(64, "quietone", "Quiet One", make_posts(3), protected=True)

    with pytest.raises(AccountProtected, match="@quietone's posts are protected"):
        client.lookup_user("QuietOne")
    assert fake_x.requests[0][1]["user.fields"] == "protected,public_metrics"

    with pytest.raises(AccountProtected, match="protected"):  # and if the timeline is asked for anyway
        client.fetch_timeline(64)
