"""Reading posts from X exports, JSONL and CSV: what is kept, what is skipped, what is refused."""

import json
from datetime import UTC, datetime

import pytest

from tests.support.data import TWEETS_JS
from twitapp.sources import archive, demo, handles
from twitapp.sources.archive import read_file
from twitapp.sources.fields import ArchiveError, media_in


def test_tweets_js_keeps_original_posts_and_restores_text(tmp_path):
    path = tmp_path / "tweets.js"
    path.write_text(TWEETS_JS)
    parsed = read_file(path)
    assert [p.id for p in parsed.posts] == [1500000000000000001]
    post = parsed.posts[0]
    assert post.text == "Fish & chips at the harbour https://example.com/menu"
    assert post.created_at == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)
    assert (post.like_count, post.retweet_count, post.lang) == (7, 2, "en")
    assert post.has_media is False  # an export lists media in its entities; this one has none
    assert parsed.skipped == {"reposts": 1, "replies": 1}


@pytest.mark.parametrize(
    ("fields", "media"),
    [
        ({"full_text": "a", "favorite_count": "1", "extended_entities": {"media": [{"type": "photo"}]}}, True),
        ({"full_text": "a", "favorite_count": "1", "entities": {"urls": []}}, False),
        ({"text": "a", "public_metrics": {}, "attachments": {"media_keys": ["3_1"]}}, True),
        ({"text": "a", "public_metrics": {}}, None),  # X API v2 without the field asked for: not known
    ],
)
def test_whether_a_post_carries_media_is_read_where_the_source_says(fields, media):
    assert media_in(fields) is media


def test_tweets_js_takes_the_account_from_account_js_beside_it(tmp_path):
    (tmp_path / "tweets.js").write_text(TWEETS_JS)
    (tmp_path / "account.js").write_text(
        'window.YTD.account.part0 = [{"account": {"accountId": "98765", "username": "harbour_fan"}}]'
    )
    parsed = read_file(tmp_path / "tweets.js")
    assert (parsed.account_id, parsed.username) == (98765, "harbour_fan")


def test_jsonl_in_the_x_api_layout(tmp_path):
    lines = [
        {
            "id": "11",
            "author_id": "5",
            "username": "ann",
            "created_at": "2019-07-01T10:00:00.000Z",
            "text": "first",
            "conversation_id": "11",
            "public_metrics": {"like_count": 3, "retweet_count": 1, "reply_count": 2},
        },
        {
            "id": "12",
            "author_id": "5",
            "created_at": "2019-07-01T11:00:00.000Z",
            "text": "a reply",
            "conversation_id": "11",
            "public_metrics": {},
        },
    ]
    path = tmp_path / "ann.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    parsed = read_file(path)
    assert [(p.id, p.text, p.reply_count) for p in parsed.posts] == [(11, "first", 2)]
    assert (parsed.account_id, parsed.username, parsed.skipped) == (5, "ann", {"replies": 1})


def test_csv_with_and_without_counts(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(
        'id,created_at,text,like_count\n1,2024-05-01T09:00:00Z,"hello, world",4\n2,2024-05-02 10:00:00,plain,\n'
    )
    parsed = read_file(path)
    assert [(p.id, p.text, p.like_count) for p in parsed.posts] == [(1, "hello, world", 4), (2, "plain", None)]
    assert parsed.posts[0].retweet_count is None  # a column the file lacks: unknown, not 0
    assert parsed.posts[1].created_at.tzinfo is not None


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.jsonl",
            '{"id": "1", "created_at": "2024-01-01T00:00:00Z", "text": "ok"}\n{oops',
            "line 2, column 2: not valid JSON",
        ),
        (
            "bad.jsonl",
            '{"id": "x1", "created_at": "2024-01-01T00:00:00Z", "text": "ok"}',
            "line 1: id must be a number",
        ),
        ("bad.jsonl", '{"id": "1", "created_at": "yesterday", "text": "ok"}', "cannot read the date"),
        ("bad.jsonl", '{"id": "1", "created_at": "2024-01-01T00:00:00Z", "text": ""}', "has no text"),
        ("bad.csv", "when,what\n1,2\n", "header must name id, created_at and text"),
        ("bad.csv", "id,created_at,text\n1,2024-01-01,hi,extra\n", "row 2: more fields"),
        ("bad.csv", "id,created_at,text,like_count\n1,2024-01-01,hi,-3\n", "cannot be negative"),
        ("tweets.js", "window.YTD.tweets.part0 = [{", "not valid JSON"),
        ("notes.txt", "just some words", "unknown format"),
    ],
)
def test_malformed_files_are_refused_with_the_place_and_reason(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ArchiveError, match=message):
        read_file(path)


def test_a_file_mixing_accounts_is_refused(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [{"id": str(i), "author_id": str(i), "created_at": "2024-01-01T00:00:00Z", "text": "t"} for i in (1, 2)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ArchiveError, match="several accounts"):
        read_file(path)


def test_missing_and_binary_files_are_refused(tmp_path):
    with pytest.raises(ArchiveError, match="no such file"):
        read_file(tmp_path / "nope.csv")
    blob = tmp_path / "blob.csv"
    blob.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ArchiveError, match="not UTF-8"):
        read_file(blob)


def test_usernames_are_checked_like_x_does():
    assert handles.check_typed("@Some_User1") == "Some_User1"
    for bad in ("", "has space", "way_too_long_for_x_1", "dash-ed"):
        with pytest.raises(handles.HandleError, match="not a valid X username"):
            handles.check_typed(bad)


def test_local_ids_are_stable_negative_and_case_blind():
    assert archive.local_account_id("Ann") == archive.local_account_id("ann") < 0
    assert archive.local_account_id("ann") != archive.local_account_id("bob")


def test_the_bundled_demo_accounts_are_large_and_fictional_enough():
    accounts = demo.demo_accounts()
    assert len(accounts) >= 6
    assert len({a.username for a, _ in accounts}) == len(accounts)
    all_ids = [p.id for _, parsed in accounts for p in parsed.posts]
    assert len(all_ids) == len(set(all_ids)), "post ids must be unique across demo accounts"
    for account, parsed in accounts:
        assert len(parsed.posts) >= 150, account.username
        assert all(len(p.text) <= 280 for p in parsed.posts)
        assert parsed.account_id == account.id
