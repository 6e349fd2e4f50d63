"""Bluesky and Mastodon accounts through the whole app: the add form, the job, the stored rows, updates,
moves, faults and a comparison beside an X account. The real atproto and Mastodon.py code talks to fakes
on loopback; no X token is set anywhere here."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.support.data import VOICES, count_rows
from tests.support.fakebluesky import FakeBluesky, fake_bluesky  # noqa: F401  (a fixture, used by name)
from tests.support.fakemastodon import FakeMastodon, fake_mastodon  # noqa: F401  (a fixture, used by name)
from twitapp import jobs, registry
from twitapp.extensions import db
from twitapp.models import Job, ModelVersion, Tweet, User, find_account, find_user

ANA_DID = "did:plc:anaanaanaanaanaanaanaana"
NEW_DID = "did:plc:newnewnewnewnewnewnewnew"
NOW = datetime.now(UTC).replace(microsecond=0)


def bluesky_posts(texts: list[str], start: datetime, prefix: str = "3k") -> list[dict]:
    """Posts an hour apart, oldest first, each with its own counts."""
    return [
        {
            "rkey": f"{prefix}{n:06d}",
            "text": text,
            "created_at": start + timedelta(hours=n),
            "likes": n,
            "reposts": n % 3,
            "replies": 1,
            "langs": ["en"],
        }
        for n, text in enumerate(texts)
    ]


def mastodon_statuses(texts: list[str], start: datetime, first_id: int = 110_000_000_000_000_000) -> list[dict]:
    return [
        {
            "id": str(first_id + n),
            "content": f"<p>{text}</p>",
            "created_at": start + timedelta(hours=n),
            "favourites": n,
            "reblogs": 0,
            "replies": 2,
            "language": "en",
        }
        for n, text in enumerate(texts)
    ]


@pytest.fixture
def networks(app, fake_bluesky, fake_mastodon):  # noqa: F811
    app.config.update(
        BLUESKY_APPVIEW_URL=fake_bluesky.url,
        BLUESKY_SERVICE_URL=fake_bluesky.url,
        MASTODON_INSTANCE_URL=fake_mastodon.url_template,
        SOURCE_RETRY_BACKOFF=0.01,
    )
    return fake_bluesky, fake_mastodon


def add_and_wait(client, handle: str) -> tuple[int, str, str]:
    """Send the home page's add form, let the job run; the status, where it led, and that page."""
    response = client.post("/users", data={"username": handle})
    if response.status_code != 302:
        return response.status_code, "", response.get_data(as_text=True)
    jobs.thread_worker.join()
    location = response.headers["Location"]
    return response.status_code, location, client.get(location).get_data(as_text=True)


def stored_posts(app, platform: str, platform_id: str) -> list[tuple[str, str, int]]:
    with app.app_context():
        user = find_account(platform, platform_id)
        rows = db.session.execute(
            sa.select(Tweet.post_id, Tweet.text, Tweet.like_count).where(Tweet.user_id == user.id).order_by(Tweet.id)
        )
        return [tuple(row) for row in rows]


def test_a_bluesky_account_is_added_from_the_home_page_with_no_token(app, client, networks):
    bluesky, _ = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social", display_name="Ana Lima", followers=321)
    bluesky.add_posts(
        ANA_DID, bluesky_posts([f"tide tables for pier {n}" for n in range(150)], NOW - timedelta(days=30))
    )
    status, location, page = add_and_wait(client, "@Ana.bsky.social")
    assert status == 302 and location.endswith("/user/ana.bsky.social")
    assert "Reading @ana.bsky.social as a Bluesky account." in page
    assert "Added @ana.bsky.social with 150 posts." in page
    assert 'class="network network-bluesky">Bluesky</span>' in page
    assert 'href="https://bsky.app/profile/ana.bsky.social"' in page
    with app.app_context():
        user = find_user("ana.bsky.social")
        assert (user.platform, user.platform_id, user.source) == ("bluesky", ANA_DID, "bluesky")
        assert (user.name, user.followers_count, user.newest_tweet_id) == ("Ana Lima", 321, None)
    posts = stored_posts(app, "bluesky", ANA_DID)
    assert len(posts) == 150 and posts[-1][0] == f"at://{ANA_DID}/app.bsky.feed.post/3k000149"
    assert posts[-1][1:] == ("tide tables for pier 149", 149)
    feed = bluesky.requests_to("app.bsky.feed.getAuthorFeed")
    assert [r.get("filter") for r in feed] == ["posts_no_replies"] * 2 and feed[1].get("cursor")
    listed = client.get("/api/users").get_json()["users"]
    assert [(u["username"], u["platform"], u["id"]) for u in listed] == [("ana.bsky.social", "bluesky", ANA_DID)]
    tweets = client.get("/api/users/ana.bsky.social/tweets?per_page=1").get_json()["tweets"]
    assert tweets[0]["url"] == "https://bsky.app/profile/ana.bsky.social/post/3k000149"


def test_a_mastodon_account_is_added_and_updated_with_only_its_newer_posts(app, client, networks):
    _, mastodon = networks
    mastodon.add_account("mastodon.example", "1093", "Quay", display_name="Quay Radio", followers=44)
    mastodon.add_statuses(
        "mastodon.example", "1093", mastodon_statuses(["harbour at dawn"] * 90, NOW - timedelta(days=40))
    )
    status, location, page = add_and_wait(client, "https://mastodon.example/@quay")
    assert status == 302 and location.endswith("/user/quay@mastodon.example")
    assert "Reading @quay@mastodon.example as a Mastodon account." in page
    assert "Added @Quay@mastodon.example with 90 posts." in page
    assert 'href="https://mastodon.example/@Quay"' in page
    with app.app_context():
        user = find_user("quay@MASTODON.example")
        assert (user.platform, user.platform_id, user.followers_count) == ("mastodon", "mastodon.example/1093", 44)
    mastodon.add_statuses(
        "mastodon.example", "1093", mastodon_statuses(["fresh catch"] * 3, NOW, 120_000_000_000_000_000)
    )
    mastodon.requests.clear()
    response = client.post("/user/Quay@mastodon.example/update")
    assert response.status_code == 302
    jobs.thread_worker.join()
    assert "Updated @Quay@mastodon.example: 3 new posts, 93 in all." in client.get(
        "/user/quay@mastodon.example"
    ).get_data(as_text=True)
    timeline = [query for path, query in mastodon.requests if path.endswith("/statuses")]
    assert timeline[0]["since_id"] == str(110_000_000_000_000_089)  # the newest stored, older than a week
    assert timeline[0]["exclude_replies"] in ("1", "true") and timeline[0]["exclude_reblogs"] in ("1", "true")
    assert len(stored_posts(app, "mastodon", "mastodon.example/1093")) == 93


def test_an_update_of_a_bluesky_account_fetches_only_what_is_newer(app, client, networks):
    bluesky, _ = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["old news"] * 120, NOW - timedelta(days=60)))
    add_and_wait(client, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["fresh news"] * 4, NOW - timedelta(hours=5), prefix="3m"))
    bluesky.requests.clear()
    client.post("/user/ana.bsky.social/update")
    jobs.thread_worker.join()
    assert "Updated @ana.bsky.social: 4 new posts, 124 in all." in client.get("/user/ana.bsky.social").get_data(
        as_text=True
    )
    assert len(bluesky.requests_to("app.bsky.feed.getAuthorFeed")) == 1  # one page, not the whole history again


def test_a_bluesky_account_that_took_a_new_handle_is_followed_by_its_did(app, client, networks):
    bluesky, _ = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["a post"] * 3, NOW - timedelta(days=20)))
    add_and_wait(client, "ana.bsky.social")
    with app.app_context():  # a style model of hers, kept under her handle
        row = ModelVersion(kind="style", subject="ana.bsky.social", format=1, status="champion", created_at=NOW)
        row.trained_from = row.trained_to = NOW
        row.params, row.metrics, row.decision, row.sha256, row.artefact = {}, {}, {}, "0" * 64, b"model"
        registry.record(row)
        db.session.commit()
    bluesky.add_account(ANA_DID, "ana.example.com")  # she moved to her own domain
    client.post("/user/ana.bsky.social/update")
    jobs.thread_worker.join()
    with app.app_context():
        assert find_user("ana.bsky.social") is None
        assert find_user("ana.example.com").platform_id == ANA_DID
        assert db.session.scalars(sa.select(ModelVersion.subject)).all() == ["ana.example.com"]
    assert len(stored_posts(app, "bluesky", ANA_DID)) == 3
    with app.app_context():  # her jobs followed her: the account's page shows them
        assert db.session.scalars(sa.select(Job.username).order_by(Job.id)).all() == ["ana.example.com"] * 2

    # Someone else takes the old handle: adding it stores a second account, the first keeps its own.
    bluesky.add_account(NEW_DID, "ana.bsky.social")
    bluesky.add_posts(NEW_DID, bluesky_posts(["another person"] * 2, NOW - timedelta(days=2), prefix="3z"))
    add_and_wait(client, "ana.bsky.social")
    with app.app_context():
        assert find_user("ana.bsky.social").platform_id == NEW_DID
        assert find_user("ana.example.com").platform_id == ANA_DID


def test_a_handle_whose_stored_holder_moved_to_another_did_refreshes_the_holder(app, client, networks):
    bluesky, _ = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["mine"], NOW - timedelta(days=20)))
    add_and_wait(client, "ana.bsky.social")
    bluesky.add_account(ANA_DID, "ana-old.bsky.social")
    bluesky.add_account(NEW_DID, "ana.bsky.social")
    bluesky.add_posts(NEW_DID, bluesky_posts(["theirs"], NOW - timedelta(days=1), prefix="3z"))
    _, _, page = add_and_wait(client, "ana.bsky.social")  # without an update of the first in between
    assert "Added @ana.bsky.social with 1 posts." in page
    with app.app_context():
        assert find_user("ana-old.bsky.social").platform_id == ANA_DID
        assert find_user("ana.bsky.social").platform_id == NEW_DID
    assert count_rows(app, User) == 2


def test_an_account_added_by_its_did_is_found_by_it_and_then_by_its_handle(app, client, networks):
    bluesky, _ = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["by did"] * 2, NOW - timedelta(days=3)))
    status, location, page = add_and_wait(client, f"https://bsky.app/profile/{ANA_DID}")
    assert status == 302 and location.endswith(f"/user/{ANA_DID}")
    assert "Added @ana.bsky.social with 2 posts." in page
    assert client.get("/user/ana.bsky.social").status_code == 200


def test_a_mastodon_account_that_moved_instance_is_followed_with_its_posts(app, client, networks):
    _, mastodon = networks
    mastodon.add_account("old.example", "7", "quay")
    mastodon.add_statuses("old.example", "7", mastodon_statuses(["on the old instance"] * 5, NOW - timedelta(days=30)))
    add_and_wait(client, "@quay@old.example")
    mastodon.add_account("old.example", "7", "quay", moved_to="quay@new.example")
    mastodon.add_account("new.example", "55", "quay")
    mastodon.add_statuses("new.example", "55", mastodon_statuses(["on the new one"] * 2, NOW - timedelta(days=1)))
    client.post("/user/quay@old.example/update")
    jobs.thread_worker.join()
    with app.app_context():
        user = find_user("quay@new.example")
        assert user is not None and user.platform_id == "new.example/55" and find_user("quay@old.example") is None
        assert count_rows(app, User) == 1
    texts = [text for _, text, _ in stored_posts(app, "mastodon", "new.example/55")]
    assert texts.count("on the old instance") == 5 and texts.count("on the new one") == 2


@pytest.mark.parametrize(
    ("handle", "arrange", "message"),
    [
        ("ghost.bsky.social", lambda b, m: None, "Bluesky has no account"),
        ("gone.bsky.social", lambda b, m: b.add_account(NEW_DID, "gone.bsky.social", status="takendown"), "taken down"),
        (
            "@ghost@mastodon.example",
            lambda b, m: m.add_account("mastodon.example", "1", "quay"),
            "mastodon.example has no account @ghost",
        ),
        (
            "@quay@closed.example",
            lambda b, m: m.add_account("closed.example", "1", "quay", require_token="t"),
            "MASTODON_TOKENS",
        ),
        ("@quay@nowhere.example", lambda b, m: None, "web page, not the Mastodon API"),
    ],
)
def test_an_account_that_cannot_be_read_is_explained_and_nothing_is_stored(
    app, client, networks, handle, arrange, message
):
    arrange(*networks)
    _, _, page = add_and_wait(client, handle)
    assert message in page
    assert count_rows(app, User) == 0 and count_rows(app, Tweet) == 0


def test_a_failing_feed_after_some_pages_leaves_nothing_half_written(app, client, networks):
    bluesky, _ = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["a post"] * 250, NOW - timedelta(days=30)))
    bluesky.serve_next(200, {"did": ANA_DID, "handle": "ana.bsky.social", "followersCount": 1})  # the profile
    first_page = [bluesky.item(ANA_DID, f"3k{n:06d}") for n in range(249, 149, -1)]  # the 100 newest
    bluesky.serve_next(200, {"feed": first_page, "cursor": "page-2"})
    bluesky.fail_next(503, times=10)  # then the second page, past its retries
    _, _, page = add_and_wait(client, "ana.bsky.social")
    assert "Bluesky is having trouble (503" in page
    assert len(bluesky.requests_to("app.bsky.feed.getAuthorFeed")) >= 2  # a page had been read
    assert count_rows(app, User) == 0 and count_rows(app, Tweet) == 0


def test_a_rate_limited_bluesky_job_waits_for_the_reset_and_goes_on(app, networks):
    bluesky, _ = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["a post"] * 5, NOW - timedelta(days=3)))
    reset = int(time.time()) + 2
    bluesky.fail_next(429, headers={"ratelimit-reset": str(reset)})
    seen = []
    with app.app_context():
        job = jobs.run_here("add", "ana.bsky.social", echo=lambda *args: seen.append(args))
    assert job.state == "done" and job.result["added"] == 5 and time.time() >= reset - 0.05  # it waited
    assert any("Bluesky's rate limit is spent; waiting until" in str(args) for args in seen)


def test_a_typed_handle_is_read_as_its_network_or_refused_with_the_three_forms(app, client, networks):
    response = client.post("/api/users", json={"username": "https://bsky.app/profile/ana.bsky.social"})
    assert response.status_code == 202
    assert (response.get_json()["platform"], response.get_json()["username"]) == ("bluesky", "ana.bsky.social")
    jobs.thread_worker.join()
    response = client.post("/api/users", json={"username": "@ana@"})
    assert response.status_code == 400
    assert "an X username (ana or @ana), a Bluesky handle" in response.get_json()["message"]
    response = client.post("/api/users", json={"username": "ana"})  # X, which needs the token
    assert response.status_code == 503 and "X_BEARER_TOKEN" in response.get_json()["message"]
    status, _, page = add_and_wait(client, "ana@")
    assert status == 400 and "a Mastodon address (@ana@mastodon.social)" in page


def test_the_cli_adds_and_updates_accounts_of_every_network(app, runner, networks):
    bluesky, mastodon = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["one", "two"], NOW - timedelta(days=10)))
    mastodon.add_account("mastodon.example", "9", "quay")
    mastodon.add_statuses("mastodon.example", "9", mastodon_statuses(["three"], NOW - timedelta(days=10)))
    result = runner.invoke(args=["add", "ana.bsky.social"])
    assert result.exit_code == 0 and "Reading @ana.bsky.social as a Bluesky account." in result.output
    assert "Added @ana.bsky.social with 2 posts." in result.output
    assert runner.invoke(args=["add", "@quay@mastodon.example"]).exit_code == 0
    bluesky.add_posts(ANA_DID, bluesky_posts(["fresh"], NOW - timedelta(hours=1), prefix="3m"))
    result = runner.invoke(args=["update"])
    assert result.exit_code == 0, result.output
    assert "@ana.bsky.social: 1 new posts." in result.output and "@quay@mastodon.example: 0 new posts." in result.output
    assert "Updated 2 of 2 accounts: 1 new posts." in result.output
    result = runner.invoke(args=["add", "not a handle"])
    assert result.exit_code != 0 and "is not a handle this app can read" in result.output


def test_an_x_a_bluesky_and_a_mastodon_account_are_compared(app, client, networks, add_account):
    bluesky, mastodon = networks
    add_account("baker", VOICES["baker"], account_id=111, source="demo")
    bluesky.add_account(ANA_DID, "commuter.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(VOICES["commuter"], NOW - timedelta(days=30)))
    mastodon.add_account("mastodon.example", "5", "coder")
    mastodon.add_statuses("mastodon.example", "5", mastodon_statuses(VOICES["coder"], NOW - timedelta(days=30)))
    add_and_wait(client, "commuter.bsky.social")
    add_and_wait(client, "coder@mastodon.example")
    body = {
        "text": "The 7:40 bus was late again",
        "usernames": ["baker", "commuter.bsky.social", "@coder@mastodon.example"],
    }
    response = client.post("/api/predict", json=body)
    assert response.status_code == 200, response.get_json()
    ranking = response.get_json()["ranking"]
    assert ranking[0]["username"] == "commuter.bsky.social"
    assert {r["username"] for r in ranking} == {"baker", "commuter.bsky.social", "coder@mastodon.example"}


def test_an_export_with_bluesky_and_mastodon_accounts_restores_exactly(app, client, runner, networks, tmp_path):
    bluesky, mastodon = networks
    bluesky.add_account(ANA_DID, "ana.bsky.social")
    bluesky.add_posts(ANA_DID, bluesky_posts(["one", "two"], NOW - timedelta(days=10)))
    mastodon.add_account("mastodon.example", "9", "quay")
    mastodon.add_statuses("mastodon.example", "9", mastodon_statuses(["three"], NOW - timedelta(days=10)))
    add_and_wait(client, "ana.bsky.social")
    add_and_wait(client, "quay@mastodon.example")
    before = stored_posts(app, "bluesky", ANA_DID), stored_posts(app, "mastodon", "mastodon.example/9")
    path = tmp_path / "export.jsonl"
    assert runner.invoke(args=["export", str(path)]).exit_code == 0
    assert '"version": 3' in path.read_text().splitlines()[0] and '"platform": "bluesky"' in path.read_text()
    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    result = runner.invoke(args=["restore", str(path)])
    assert result.exit_code == 0 and "Restored 2 accounts: 3 new posts" in result.output
    assert (stored_posts(app, "bluesky", ANA_DID), stored_posts(app, "mastodon", "mastodon.example/9")) == before
    with app.app_context():
        assert find_user("ana.bsky.social").source == "bluesky"
