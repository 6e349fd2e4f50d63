"""The Mastodon client against a fake Mastodon on loopback: Mastodon.py's real request code runs, only the
server is fake."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.fakemastodon import FakeMastodon, fake_mastodon  # noqa: F401  (a fixture used by name)
from twitapp.sources import errors
from twitapp.sources.mastodon import (
    MastodonAccountNotFound,
    MastodonAuthError,
    MastodonClient,
    MastodonError,
    MastodonQueryError,
    MastodonRateLimited,
    MastodonUnavailable,
    client_from_config,
    html_to_text,
    parse_tokens,
)
from twitapp.sources.records import MAX_POST_CHARS, AccountRecord

SOCIAL = "mastodon.social"
BASE = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_ID = 110_000_000_000_000_000


def make_statuses(count: int, *, first_id: int = FIRST_ID) -> list[dict]:
    """``count`` statuses, oldest first, one minute apart, with distinct counts."""
    return [
        {
            "id": str(first_id + n),
            "content": f"<p>status number {n}</p>",
            "created_at": BASE + timedelta(minutes=n),
            "favourites": n,
            "reblogs": n % 7,
            "replies": n % 3,
        }
        for n in range(count)
    ]


@pytest.fixture
def client(fake_mastodon: FakeMastodon) -> Iterator[MastodonClient]:  # noqa: F811
    with MastodonClient(url_template=fake_mastodon.url_template, timeout=5, backoff=0.01) as mastodon:
        yield mastodon


def status_requests(fake: FakeMastodon) -> list[dict[str, str]]:
    return [query for path, query in fake.requests if path.endswith("/statuses")]


def ids(count: int, newest: int) -> list[str]:
    return [f"{SOCIAL}/{FIRST_ID + n}" for n in range(newest, newest - count, -1)]


# -- looking up accounts ----------------------------------------------------------------------------------


def test_lookup_asks_the_accounts_own_instance_whatever_the_case(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "109302", "Ana", "Ana Lima", followers=1234)

    account = client.lookup_user("@ana@Mastodon.Social")

    assert account == AccountRecord(
        id="mastodon.social/109302", username="Ana@mastodon.social", name="Ana Lima", followers_count=1234,
        platform="mastodon",
    )  # fmt: skip
    assert fake_mastodon.requests[-1] == ("/mastodon.social/api/v1/accounts/lookup", {"acct": "ana"})
    assert "Authorization" not in fake_mastodon.request_headers[-1]


def test_lookup_falls_back_to_the_username_without_a_display_name(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account("fosstodon.org", "7", "quiet")

    assert client.lookup_user("quiet@fosstodon.org").name == "quiet"


def test_unknown_account_names_the_instance(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "1", "someone")

    with pytest.raises(MastodonAccountNotFound) as caught:
        client.lookup_user("nobody@mastodon.social")

    assert "mastodon.social has no account @nobody. Check the spelling" in str(caught.value)
    assert isinstance(caught.value, errors.AccountNotFound)


def test_not_an_address_is_refused_without_asking(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    with pytest.raises(MastodonAccountNotFound, match="not a Mastodon address"):
        client.lookup_user("ana@../../api")
    assert fake_mastodon.requests == []


def test_suspended_account_is_not_found(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "5", "gone", "Gone", suspended=True)

    with pytest.raises(MastodonAccountNotFound, match=r"@gone@mastodon\.social is suspended or taken down"):
        client.lookup_user("gone@mastodon.social")
    with pytest.raises(MastodonAccountNotFound, match="suspended"):  # and its posts, asked for anyway (410)
        client.fetch_timeline("mastodon.social/5")


def test_older_servers_say_410_for_a_suspended_account(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "5", "gone")
    fake_mastodon.fail_next(410)

    with pytest.raises(MastodonAccountNotFound, match=r"suspended or taken down on mastodon\.social"):
        client.lookup_user("gone@mastodon.social")


@pytest.mark.parametrize(
    ("moved_to", "home", "user"),
    [("ana@hachyderm.io", "hachyderm.io", "ana"), ("ana_new", SOCIAL, "ana_new")],  # another instance, or within
)
def test_a_moved_account_is_followed(fake_mastodon: FakeMastodon, client, moved_to, home, user) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "100", "ana", "Ana", moved_to=moved_to)
    fake_mastodon.add_account(home, "555", user, "Ana Lima", followers=10)

    account = client.lookup_user("ana@mastodon.social")

    assert account.id == f"{home}/555"  # the new home's id, not the old instance's copy of it
    assert account.username == f"{user}@{home}"
    assert account.moved_from == "mastodon.social/100"
    assert fake_mastodon.requests[-1] == (f"/{home}/api/v1/accounts/lookup", {"acct": user})


def test_a_loop_of_moves_is_reported(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "1", "ping", moved_to="pong@hachyderm.io")
    fake_mastodon.add_account("hachyderm.io", "2", "pong", moved_to="ping@mastodon.social")

    with pytest.raises(MastodonAccountNotFound, match="loop"):
        client.lookup_user("ping@mastodon.social")
    assert len(fake_mastodon.requests) == 2


def webfinger_requests(fake: FakeMastodon) -> list[tuple[str, dict[str, str]]]:
    return [(path, query) for path, query in fake.requests if path.endswith("/.well-known/webfinger")]


def test_a_handle_under_another_domain_is_found_by_webfinger(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account("social.example.com", "42", "ana", "Ana Lima", followers=7)
    fake_mastodon.add_statuses("social.example.com", "42", make_statuses(3))
    fake_mastodon.add_webfinger("example.com", "ana", "social.example.com")

    account = client.lookup_user("@Ana@Example.com")

    assert account == AccountRecord(
        id="social.example.com/42", username="ana@example.com", name="Ana Lima", followers_count=7,
        platform="mastodon",
    )  # fmt: skip
    assert fake_mastodon.requests == [
        ("/example.com/api/v1/accounts/lookup", {"acct": "Ana"}),
        ("/example.com/.well-known/webfinger", {"resource": "acct:Ana@example.com"}),
        ("/social.example.com/api/v1/accounts/lookup", {"acct": "Ana@example.com"}),
    ]
    posts = client.fetch_timeline(account.id)  # read from the server, where the id belongs
    assert [post.id for post in posts] == [f"social.example.com/{FIRST_ID + n}" for n in (2, 1, 0)]
    assert status_requests(fake_mastodon) and fake_mastodon.requests[-1][0].startswith("/social.example.com/")


def test_a_404_that_is_not_the_apis_json_asks_webfinger_too(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account("social.example.com", "42", "ana")
    fake_mastodon.add_webfinger("example.com", "ana", "social.example.com")
    fake_mastodon.serve_next(404, "Not Found", content_type="text/plain", instance="example.com")

    assert client.lookup_user("ana@example.com").id == "social.example.com/42"


def test_an_unknown_account_on_a_real_instance_asks_no_webfinger(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "1", "someone")

    with pytest.raises(MastodonAccountNotFound, match="has no account @nobody"):
        client.lookup_user("nobody@mastodon.social")
    assert webfinger_requests(fake_mastodon) == []


def test_a_domain_with_neither_api_nor_webfinger_is_explained(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    with pytest.raises(MastodonUnavailable) as caught:
        client.lookup_user("ana@blog.example")

    message = str(caught.value)
    assert message.startswith("blog.example answered with a web page, not the Mastodon API: is it a Mastodon server?")
    assert "Nor does it point to one by WebFinger: its WebFinger answered 404" in message
    assert "Check the instance's name (while looking up @ana@blog.example)" in message
    assert len(webfinger_requests(fake_mastodon)) == 1


@pytest.mark.parametrize(
    ("href", "reason"),
    [
        ("ftp://social.example.com/users/ana", "which is not an http(s) address"),
        ("javascript:alert(1)", "which is not an http(s) address"),
        ("https://127.0.0.1/users/ana", "whose host is not a server's domain"),
        ("https://social.example.com:8443/users/ana", "whose host is not a server's domain"),
        ("https://user@social.example.com/users/ana", "whose host is not a server's domain"),
        ("https://example.com/users/ana", "points back to the domain itself"),
    ],
)
def test_a_webfinger_href_that_is_no_servers_address_is_refused(
    fake_mastodon: FakeMastodon,  # noqa: F811
    client,
    href: str,
    reason: str,
) -> None:
    fake_mastodon.add_account("social.example.com", "42", "ana")
    fake_mastodon.add_webfinger("example.com", "ana", "social.example.com", href=href)

    with pytest.raises(MastodonUnavailable, match="Nor does it point to one by WebFinger") as caught:
        client.lookup_user("ana@example.com")

    assert reason in str(caught.value)
    assert not any(path.startswith("/social.example.com/") for path, _ in fake_mastodon.requests)


def test_webfinger_is_asked_once_not_of_the_server_too(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_webfinger("example.com", "ana", "web.example")
    fake_mastodon.add_webfinger("web.example", "ana", "further.example")
    fake_mastodon.serve_next(200, "<html><body>Just a site</body></html>", instance="web.example")

    with pytest.raises(MastodonUnavailable, match=r"^web\.example answered with a web page"):
        client.lookup_user("ana@example.com")
    assert webfinger_requests(fake_mastodon) == [
        ("/example.com/.well-known/webfinger", {"resource": "acct:ana@example.com"})
    ]


# -- reading timelines ------------------------------------------------------------------------------------


def test_timeline_pages_back_up_to_the_limit_newest_first(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "42", "prolific")
    fake_mastodon.add_statuses(SOCIAL, "42", make_statuses(150))
    seen: list[int] = []

    posts = client.fetch_timeline("mastodon.social/42", limit=100, progress=seen.append)

    assert [p.id for p in posts] == ids(100, 149)
    queries = status_requests(fake_mastodon)
    assert [q["limit"] for q in queries] == ["40", "40", "20"]
    assert "max_id" not in queries[0]
    assert queries[1]["max_id"] == str(FIRST_ID + 110)
    assert all(q["exclude_replies"] == "1" and q["exclude_reblogs"] == "1" for q in queries)
    assert seen == [40, 80, 100]


def test_timeline_stops_when_the_account_runs_out(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "42", "quiet")
    fake_mastodon.add_statuses(SOCIAL, "42", make_statuses(50))

    assert len(client.fetch_timeline("mastodon.social/42", limit=400)) == 50
    assert len(status_requests(fake_mastodon)) == 2


def test_a_repeating_page_does_not_loop_forever(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    page = [dict(s, id=s["id"], created_at="2026-01-01T00:00:00.000Z") for s in make_statuses(40)]
    link = {"Link": f'<http://x/api/v1/accounts/1/statuses?max_id={FIRST_ID}>; rel="next"'}
    fake_mastodon.add_account(SOCIAL, "42", "stuck")
    fake_mastodon.serve_next(200, page, times=5, headers=link)

    posts = client.fetch_timeline("mastodon.social/42", limit=400)

    assert len(posts) == 80 and len(status_requests(fake_mastodon)) == 2


def test_statuses_become_posts(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "42", "ana")
    fake_mastodon.add_statuses(
        SOCIAL,
        "42",
        [
            {"id": "1001", "content": "<p>plain</p>", "created_at": "2026-02-03T04:05:06.789Z", "favourites": 3,
             "reblogs": 2, "replies": 1, "language": "pt"},
            {"id": "1002", "content": "<p>the ending</p>", "spoiler": "film spoilers", "media": True,
             "language": None, "created_at": "2026-02-03T05:00:00.000+02:00"},
        ],
    )  # fmt: skip

    newest, oldest = client.fetch_timeline("mastodon.social/42")

    assert newest.text == "CW: film spoilers\n\nthe ending"
    assert newest.has_media is True and newest.lang is None
    assert newest.created_at == datetime(2026, 2, 3, 3, 0, tzinfo=UTC)
    assert (oldest.id, oldest.text, oldest.lang, oldest.has_media) == ("mastodon.social/1001", "plain", "pt", False)
    assert (oldest.like_count, oldest.retweet_count, oldest.reply_count) == (3, 2, 1)
    assert oldest.created_at == datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    assert oldest.created_at.utcoffset() == timedelta(0)


def test_replies_and_boosts_are_left_out(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    statuses = make_statuses(4)
    statuses[1]["reply"] = True
    statuses[2]["reblog"] = True
    fake_mastodon.add_account(SOCIAL, "42", "chatty")
    fake_mastodon.add_statuses(SOCIAL, "42", statuses)

    assert [p.id for p in client.fetch_timeline("mastodon.social/42")] == ids(1, 3) + ids(1, 0)


def test_a_boost_slipping_through_is_still_skipped(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    boost = {"id": "9", "content": "", "created_at": "2026-01-01T00:00:00Z", "reblog": {"id": "8"}}
    fake_mastodon.serve_next(200, [boost, {"id": "7", "content": "<p>mine</p>", "created_at": "2026-01-01T00:00:00Z"}])

    assert [p.text for p in client.fetch_timeline("mastodon.social/42")] == ["mine"]


def test_since_id_fetches_only_newer_statuses(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "42", "ana")
    fake_mastodon.add_statuses(SOCIAL, "42", make_statuses(100))

    posts = client.fetch_timeline("mastodon.social/42", since_id=f"mastodon.social/{FIRST_ID + 54}")

    assert [p.id for p in posts] == ids(45, 99)
    assert all(q["since_id"] == str(FIRST_ID + 54) for q in status_requests(fake_mastodon))
    assert client.fetch_timeline("mastodon.social/42", since_id=f"mastodon.social/{FIRST_ID + 99}") == []


def test_since_id_of_another_instance_is_ignored(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "42", "moved_here")
    fake_mastodon.add_statuses(SOCIAL, "42", make_statuses(3))

    assert len(client.fetch_timeline("mastodon.social/42", since_id="old.example/999999999999999999")) == 3
    assert "since_id" not in status_requests(fake_mastodon)[0]


def test_since_time_stops_at_older_statuses(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "42", "ana")
    fake_mastodon.add_statuses(SOCIAL, "42", make_statuses(100))

    posts = client.fetch_timeline("mastodon.social/42", since_time=BASE + timedelta(minutes=90))

    assert [p.id for p in posts] == ids(10, 99)


def test_not_an_account_id_is_refused(client) -> None:
    with pytest.raises(MastodonQueryError, match="instance/ID"):
        client.fetch_timeline("42")


# -- HTML -------------------------------------------------------------------------------------------------


def test_html_reads_as_a_person_sees_it() -> None:
    html = (
        '<p>Hello &amp; welcome, <span class="h-card"><a href="https://m.example/@bob" class="u-url mention">'
        "@<span>bob</span></a></span>!</p><p>Read "
        '<a href="https://example.com/a/very/long/path/indeed" rel="nofollow"><span class="invisible">https://'
        '</span><span class="ellipsis">example.com/a/very/lo</span><span class="invisible">ng/path/indeed</span>'
        '</a> now<br />or <a href="https://m.example/tags/later" class="mention hashtag">#<span>later</span></a>'
        " :blobcat: &lt;3</p>"
    )

    assert html_to_text(html) == (
        "Hello & welcome, @bob!\n\nRead https://example.com/a/very/long/path/indeed now\nor #later :blobcat: <3"
    )


def test_html_drops_a_written_out_ellipsis_and_scripts() -> None:
    html = '<p><a><span class="ellipsis">example.com/lo…</span><span class="invisible">ng</span></a></p>'
    assert html_to_text(html + "<script>alert(1)</script>") == "example.com/long"


# -- failures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 422])
def test_refused_anonymous_reads_say_to_set_a_token(fake_mastodon: FakeMastodon, client, status: int) -> None:  # noqa: F811
    fake_mastodon.fail_next(status)

    with pytest.raises(MastodonAuthError) as caught:
        client.lookup_user("ana@private.example")

    message = str(caught.value)
    assert "private.example does not show its posts without signing in" in message
    assert 'MASTODON_TOKENS ("instance=token,other.instance=token")' in message
    assert isinstance(caught.value, errors.SourceAuthError)


def test_a_token_from_config_opens_a_closed_instance(fake_mastodon: FakeMastodon) -> None:  # noqa: F811
    fake_mastodon.add_account("private.example", "3", "ana", "Ana", require_token="s3cret")
    fake_mastodon.add_statuses("private.example", "3", make_statuses(2))
    base = {"MASTODON_INSTANCE_URL": fake_mastodon.url_template, "SOURCE_RETRY_BACKOFF": 0.01}

    with client_from_config(base) as anonymous, pytest.raises(MastodonAuthError, match="MASTODON_TOKENS"):
        anonymous.lookup_user("ana@private.example")
    with client_from_config({**base, "MASTODON_TOKENS": "private.example=s3cret"}) as signed_in:
        assert signed_in.lookup_user("ana@private.example").id == "private.example/3"
        assert len(signed_in.fetch_timeline("private.example/3")) == 2
    assert fake_mastodon.request_headers[-1]["Authorization"] == "Bearer s3cret"
    wrong_token = {**base, "MASTODON_TOKENS": {"private.example": "wrong"}}
    with (
        client_from_config(wrong_token) as wrong,
        pytest.raises(MastodonAuthError, match="refused the token set for it in MASTODON_TOKENS"),
    ):
        wrong.lookup_user("ana@private.example")


def test_rate_limit_says_when_to_retry(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    reset = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    fake_mastodon.fail_next(429, headers={"X-RateLimit-Reset": reset.isoformat().replace("+00:00", ".000Z")})

    with pytest.raises(MastodonRateLimited) as caught:
        client.lookup_user("ana@mastodon.social")

    assert caught.value.reset_at == reset
    assert f"mastodon.social rate limit reached. Try again after {reset:%H:%M} UTC" in str(caught.value)
    assert "10 minutes" in str(caught.value)
    assert isinstance(caught.value, errors.RateLimited)
    assert len(fake_mastodon.requests) == 1  # a rate limit is not retried


def test_rate_limit_without_reset_still_advises(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.serve_next(429, {"error": "Too many requests"})

    with pytest.raises(MastodonRateLimited, match="5 minutes") as caught:
        client.lookup_user("ana@mastodon.social")
    assert caught.value.reset_at is None


@pytest.mark.parametrize("status", [500, 503])
def test_passing_server_errors_are_retried(fake_mastodon: FakeMastodon, client, status: int) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "1", "ana")
    fake_mastodon.fail_next(status, times=2)

    assert client.lookup_user("ana@mastodon.social").id == "mastodon.social/1"
    assert len(fake_mastodon.requests) == 3


def test_lasting_server_errors_mean_unavailable(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "1", "ana")
    fake_mastodon.fail_next(503, times=4)

    with pytest.raises(MastodonUnavailable, match=r"mastodon\.social is having trouble \(503") as caught:
        client.lookup_user("ana@mastodon.social")

    assert isinstance(caught.value, errors.SourceUnavailable)
    assert len(fake_mastodon.requests) == 4  # the first try and three retries
    assert client.lookup_user("ana@mastodon.social").id == "mastodon.social/1"


def test_slow_instance_times_out(fake_mastodon: FakeMastodon) -> None:  # noqa: F811
    fake_mastodon.add_account("slow.example", "1", "ana")
    fake_mastodon.delay = 0.5
    started = time.monotonic()

    with (
        MastodonClient(url_template=fake_mastodon.url_template, timeout=0.2, retries=1, backoff=0.01) as slow,
        pytest.raises(MastodonUnavailable, match=r"slow\.example did not answer within 0\.2 seconds"),
    ):
        slow.lookup_user("ana@slow.example")

    assert time.monotonic() - started < 3


def test_a_web_page_or_garbage_is_not_the_mastodon_api(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.serve_next(200, "<!doctype html><html><body>My blog</body></html>")

    with pytest.raises(MastodonUnavailable, match="answered with a web page, not the Mastodon API: is it a Mastodon"):
        client.lookup_user("ana@blog.example")
    with pytest.raises(MastodonUnavailable, match="web page"):  # a name no instance here answers to: 404 HTML
        client.lookup_user("ana@nginx.example")
    fake_mastodon.serve_next(200, "{not json", content_type="application/json")
    with pytest.raises(MastodonUnavailable, match="malformed \\(non-JSON\\)"):
        client.lookup_user("ana@mastodon.social")


@pytest.mark.parametrize(
    "page",
    [
        [{"content": "<p>no id</p>", "created_at": "2026-01-01T00:00:00.000Z"}],
        [{"id": "1", "created_at": "2026-01-01T00:00:00.000Z"}],
        [{"id": "1", "content": "<p>no time</p>"}],
        [{"id": "1", "content": "<p>bad time</p>", "created_at": "yesterday"}],
        [{"id": "1", "content": "x" * (MAX_POST_CHARS + 1), "created_at": "2026-01-01T00:00:00.000Z"}],
        ["not an object"],
        {"statuses": []},  # a page that is not a list
    ],
)
def test_corrupt_pages_are_malformed(fake_mastodon: FakeMastodon, client, page: object) -> None:  # noqa: F811
    fake_mastodon.serve_next(200, page)

    with pytest.raises(MastodonUnavailable, match="malformed"):
        client.fetch_timeline("mastodon.social/42")


def test_unreachable_instance_is_unavailable_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    template = f"http://127.0.0.1:{port}/{{instance}}"
    started = time.monotonic()

    with (
        MastodonClient(url_template=template, timeout=2, backoff=0.01) as mastodon,
        pytest.raises(MastodonUnavailable, match=r"Could not reach down\.example") as caught,
    ):
        mastodon.lookup_user("ana@down.example")

    assert "did not answer" not in str(caught.value)
    assert time.monotonic() - started < 2


def test_every_failure_shares_one_base_class() -> None:
    for kind in (MastodonAccountNotFound, MastodonAuthError, MastodonRateLimited, MastodonUnavailable):
        assert issubclass(kind, MastodonError) and issubclass(kind, errors.SourceError)


# -- hashtag search ---------------------------------------------------------------------------------------


def test_hashtag_search_gives_posts_with_full_author_handles(fake_mastodon: FakeMastodon) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "1", "local_ana")
    fake_mastodon.add_account("hachyderm.io", "2", "far_bo")
    fake_mastodon.add_statuses(SOCIAL, "1", [{"id": "301", "content": "<p>#Python fun</p>", "tags": ["python"]}])
    fake_mastodon.add_statuses(
        "hachyderm.io",
        "2",
        [
            {"id": "302", "content": "<p>more #python</p>", "tags": ["python"]},
            {"id": "303", "content": "", "tags": ["python"], "reblog": True},
            {"id": "304", "content": "<p>#rust</p>", "tags": ["rust"]},
        ],
    )
    config = {"MASTODON_INSTANCE_URL": fake_mastodon.url_template, "MASTODON_TOPIC_INSTANCE": SOCIAL}

    with client_from_config(config) as mastodon:
        found = mastodon.search_recent("#Python")
        newer = mastodon.search_recent("python", since_id="mastodon.social/301")

    assert [(post.id, author) for post, author in found] == [
        ("mastodon.social/302", "far_bo@hachyderm.io"),
        ("mastodon.social/301", "local_ana@mastodon.social"),
    ]
    assert [post.id for post, _ in newer] == ["mastodon.social/302"]
    assert fake_mastodon.requests[-1] == (
        "/mastodon.social/api/v1/timelines/tag/python",
        {"since_id": "301", "limit": "40"},
    )


@pytest.mark.parametrize("query", ["two tags", "#", "from:ana", "#a #b"])
def test_a_query_that_is_not_one_hashtag_is_refused(client, query: str) -> None:
    with pytest.raises(MastodonQueryError, match="is not a hashtag") as caught:
        client.search_recent(query)
    assert isinstance(caught.value, ValueError)


def test_hashtag_search_on_a_closed_instance_asks_for_a_token(fake_mastodon: FakeMastodon) -> None:  # noqa: F811
    fake_mastodon.add_account("private.example", "1", "ana", require_token="s3cret")

    with (
        MastodonClient(url_template=fake_mastodon.url_template, topic_instance="private.example") as mastodon,
        pytest.raises(MastodonAuthError, match="MASTODON_TOKENS"),
    ):
        mastodon.search_recent("#python")


# -- configuration ----------------------------------------------------------------------------------------


def test_tokens_parse_from_the_setting() -> None:
    assert parse_tokens(" Mastodon.Social = abc , hachyderm.io=d=ef,") == {
        "mastodon.social": "abc",
        "hachyderm.io": "d=ef",
    }
    assert parse_tokens("") == {}


@pytest.mark.parametrize("raw", ["mastodon.social", "mastodon.social=", "=abc", "not an instance=abc"])
def test_malformed_tokens_are_refused_without_echoing_them(raw: str) -> None:
    with pytest.raises(ValueError, match="Entry 2 of MASTODON_TOKENS is not of the form instance=token") as caught:
        parse_tokens(f"fine.example=tok,{raw}")
    assert "abc" not in str(caught.value)


def test_an_instance_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_tokens("a.example=1,A.example=2")


def test_config_defaults_to_https_on_the_instance() -> None:
    with client_from_config({}) as mastodon:
        assert mastodon._api("mastodon.social").api_base_url == "https://mastodon.social"


def test_with_a_token_only_the_posts_everyone_may_read_are_taken(fake_mastodon: FakeMastodon) -> None:  # noqa: F811
    """A token lets the instance serve its account's followers-only and direct posts too; none is stored."""
    fake_mastodon.add_account("private.example", "3", "ana", require_token="s3cret")
    kinds = ["public", "unlisted", "private", "direct"]
    statuses = [dict(s, visibility=kind) for s, kind in zip(make_statuses(4), kinds, strict=True)]
    fake_mastodon.add_statuses("private.example", "3", statuses)
    config = {"MASTODON_INSTANCE_URL": fake_mastodon.url_template, "MASTODON_TOKENS": "private.example=s3cret"}
    with client_from_config(config) as signed_in:
        posts = signed_in.fetch_timeline("private.example/3")
    assert [p.text for p in posts] == ["status number 1", "status number 0"]


def test_a_retry_after_is_not_slept_on_and_a_429_is_not_asked_again(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "42", "ana")
    fake_mastodon.fail_next(503, times=1, headers={"Retry-After": "3600"})
    started = time.monotonic()
    assert client.lookup_user("ana@mastodon.social").id == "mastodon.social/42"  # asked again at once
    assert time.monotonic() - started < 5
    fake_mastodon.requests.clear()
    fake_mastodon.fail_next(429, headers={"Retry-After": "1"})
    with pytest.raises(MastodonRateLimited):
        client.lookup_user("ana@mastodon.social")
    assert len(fake_mastodon.requests) == 1  # the job waits for the reset, not the transport


def test_a_strangers_malformed_status_is_left_out_of_a_hashtag(fake_mastodon: FakeMastodon, client) -> None:  # noqa: F811
    fake_mastodon.add_account(SOCIAL, "42", "ana")
    huge = {"id": str(FIRST_ID + 5), "content": "<p>" + "x" * 60_000 + "</p>", "tags": ["harbour"]}
    fine = {"id": str(FIRST_ID + 6), "content": "<p>calm #harbour</p>", "tags": ["harbour"]}
    fake_mastodon.add_statuses(SOCIAL, "42", [dict(huge, created_at=BASE), dict(fine, created_at=BASE)])
    with MastodonClient(url_template=fake_mastodon.url_template, topic_instance=SOCIAL, backoff=0.01) as mastodon:
        found = mastodon.search_recent("#harbour")
    assert [post.text for post, _ in found] == ["calm #harbour"]
