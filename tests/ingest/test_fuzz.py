"""Property-based fuzzing: whatever arrives, the answer is never a 500, and a refusal changes nothing."""

import io
import json
import os

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from twitapp import jobs
from twitapp.extensions import db
from twitapp.ingest import backup
from twitapp.models import Job, Tweet, User, find_account
from twitapp.sources import formats
from twitapp.sources.fields import ArchiveError

# The app fixture is made once per test, not per example: that is the point (state must survive).
# On CI the examples are derandomised, so a run is repeatable; locally each run explores new ones.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Any Unicode, lone surrogates included (JSON can carry them as \\udXXX escapes).
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=400)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(ANY_TEXT, inner, max_size=5),
    max_leaves=20,
)
# What a form can carry: a browser sends any character but a lone surrogate (it cannot be UTF-8 encoded).
FORM_TEXT = st.text(st.characters(codec="utf-8"), max_size=400)
SOME_HANDLES = st.sampled_from(["baker", "commuter", "coder", "nobody", "@baker", "", " ", "x" * 40])
HANDLES = SOME_HANDLES | ANY_TEXT
FORM_HANDLES = SOME_HANDLES | FORM_TEXT


def state(app) -> tuple:
    with app.app_context():
        counts = [db.session.scalar(sa.select(sa.func.count()).select_from(model)) for model in (User, Tweet, Job)]
        return (*counts, db.session.scalar(sa.select(sa.func.sum(Tweet.like_count))))


def check(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]


def test_predict_api_never_fails_whatever_the_body(app, client, voices):
    before = state(app)

    @FUZZ
    @given(
        body=st.fixed_dictionaries({"usernames": st.lists(HANDLES, max_size=25) | JSON_VALUES, "text": JSON_VALUES})
        | JSON_VALUES
    )
    def fuzz(body):
        check(client.post("/api/predict", data=json.dumps(body), content_type="application/json"))

    fuzz()
    assert state(app) == before


def test_predict_api_never_fails_on_raw_bytes(app, client, voices):
    @FUZZ
    @given(raw=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/plain", ""]))
    def fuzz(raw, content_type):
        check(client.post("/api/predict", data=raw, content_type=content_type))

    fuzz()


def test_forms_never_fail_and_refusals_store_nothing(app, client, voices):
    before = state(app)

    @FUZZ
    @given(usernames=st.lists(FORM_HANDLES, max_size=6), text=FORM_TEXT, handle=FORM_HANDLES)
    def fuzz(usernames, text, handle):
        check(client.post("/compare", data={"usernames": usernames, "text": text}))
        response = client.post("/users", data={"username": handle})  # offline: always refused
        check(response)
        assert response.status_code == 400
        check(client.get(f"/user/{handle.replace('/', '')}" if handle.strip("/") else "/user/x"))

    fuzz()
    assert state(app) == before


def test_the_import_form_never_fails_and_a_refused_file_stores_nothing(app, client, voices):
    names = st.sampled_from(["tweets.js", "account.js", "posts.jsonl", "posts.csv", "notes.txt", "x"])
    prefixes = st.sampled_from(
        [b"", b"window.YTD.tweets.part0 = ", b"window.YTD.account.part0 = ", b"id,created_at,text\n"]
    )

    @FUZZ
    @given(handle=FORM_HANDLES, files=st.lists(st.tuples(names, prefixes, st.binary(max_size=300)), max_size=3))
    def fuzz(handle, files):
        before = state(app)
        data = {"username": handle, "files": [(io.BytesIO(prefix + raw), name) for name, prefix, raw in files]}
        response = client.post("/import", data=data, content_type="multipart/form-data")
        check(response)
        if response.status_code == 302:  # taken: let its job end before the next example counts rows
            jobs.thread_worker.join()
        else:  # refused: said on the page, and nothing stored or queued
            assert response.status_code in (400, 409) and state(app) == before

    fuzz()
    jobs.thread_worker.join()


def test_the_restore_form_never_fails_and_a_refused_file_stores_nothing(app, client, voices):
    header = st.sampled_from([b"", b'{"format": "hypotweet-export", "version": 1}\n'])
    lines = st.lists(st.one_of(JSON_VALUES.map(json.dumps), ANY_TEXT), max_size=4).map("\n".join)

    @FUZZ
    @given(header=header, body=lines)
    def fuzz(header, body):
        before = state(app)
        raw = header + body.encode("utf-8", errors="surrogatepass")
        data = {"file": (io.BytesIO(raw), "backup.jsonl")}
        response = client.post("/restore", data=data, content_type="multipart/form-data")
        check(response)
        if response.status_code == 302:
            jobs.thread_worker.join()
        else:
            assert response.status_code in (400, 409) and state(app) == before

    fuzz()
    jobs.thread_worker.join()


@pytest.mark.parametrize(
    "reader", [formats.read_jsonl, formats.read_csv, formats.read_tweets_js], ids=["jsonl", "csv", "tweets.js"]
)
def test_file_readers_accept_or_refuse_but_never_crash(reader):
    lines = st.lists(
        st.one_of(
            JSON_VALUES.map(json.dumps),
            ANY_TEXT,
            st.just('{"id": "1", "text": "hi", "created_at": "2026-01-01T00:00:00Z"}'),
            st.just("id,created_at,text"),
        ),
        max_size=6,
    )

    @settings(max_examples=150, deadline=None, derandomize=bool(os.environ.get("CI")))
    @given(lines=lines, prefix=st.sampled_from(["", "window.YTD.tweets.part0 = "]))
    def fuzz(lines, prefix):
        try:
            parsed = reader(prefix + "\n".join(lines))
        except ArchiveError:
            return
        assert all(post.created_at.tzinfo is not None for post in parsed.posts)

    fuzz()


def test_import_and_restore_refuse_bad_files_without_writing(app, runner, voices, tmp_path):
    before = state(app)
    path = tmp_path / "input.txt"

    @FUZZ
    @given(content=st.lists(JSON_VALUES.map(json.dumps) | ANY_TEXT, max_size=5).map("\n".join))
    def fuzz(content):
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
        for args in (["import", str(path), "--username", "fuzzed"], ["restore", str(path)]):
            result = runner.invoke(args=args)
            assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
            if result.exit_code != 0:
                assert state(app)[:2] == before[:2], result.output

    fuzz()
    with pytest.raises(ArchiveError):
        backup.ExportFile.on_disk(path.with_name("absent.jsonl")).check()


def test_nul_characters_and_lone_surrogates_are_cleaned_not_fatal(app, client, add_account, voices):
    """Regressions the fuzzing found: PostgreSQL refuses NUL, and UTF-8 cannot hold a lone surrogate."""
    assert client.get("/user/a%00b").status_code == 404
    response = client.post("/api/predict", json={"usernames": ["baker", "\x00"], "text": "bread"})
    assert response.status_code == 404 and "No stored account" in response.get_json()["message"]
    response = client.post("/api/predict", json={"usernames": voices, "text": "rye \ud800 bread\x00"})
    assert response.status_code == 200 and response.get_json()["text"] == "rye \ufffd bread"
    add_account("odd", ["nul\x00inside", "lone \udc00 surrogate"], account_id=999)
    with app.app_context():
        texts = sorted(db.session.scalars(sa.select(Tweet.text).where(Tweet.user_id == find_account("x", 999).id)))
    assert texts == ["lone \ufffd surrogate", "nulinside"]


NUMBERS = st.integers(min_value=-(2**80), max_value=2**80).map(str) | st.text(max_size=12) | st.just("9" * 40)


def test_page_numbers_and_ids_of_any_size_get_an_answer_not_a_500(app, client, voices):
    @FUZZ
    @given(page=NUMBERS, per_page=NUMBERS, job=st.integers(min_value=0, max_value=2**90), since=NUMBERS)
    def fuzz(page, per_page, job, since):
        for path, query in (
            ("/user/baker", {"page": page}),
            ("/api/users/baker/tweets", {"page": page, "per_page": per_page}),
            ("/api/topic", {"q": "bread", "since_id": since}),
            (f"/api/jobs/{job}", {}),
        ):
            response = client.get(path, query_string=query)
            check(response)
            if response.status_code >= 400:  # refused with a message a person can act on
                message = response.get_json()["message"] if path.startswith("/api/") else response.text
                assert "must be" in message or "There is no" in message, message

    fuzz()


def test_the_numbers_that_once_gave_a_500_get_a_4xx_saying_why(client, voices):
    huge = "9223372036854775807"
    for path, status, says in (
        (f"/user/baker?page={huge}", 404, "There is no page 9,223,372,036,854,775,807 of @baker&#39;s posts."),
        (f"/api/users/baker/tweets?page={huge}", 404, "There is no page"),
        ("/api/users/baker/tweets?page=2", 404, "There is no page 2 of @baker's posts: there is 1."),
        ("/api/users/baker/tweets?page=-1&per_page=abc", 400, '"page" must be a whole number from 1'),
        ("/api/users/baker/tweets?per_page=101", 400, '"per_page" must be a whole number from 1 to 100'),
        (f"/api/topic?q=bread&since_id={'9' * 40}", 400, '"since_id" must be a post id'),
        (f"/api/topic?q=bread&since_id={'9' * 19}", 400, '"since_id" must be a post id'),  # past a bigint
        ("/api/jobs/99999999999999999999999", 404, "There is no job 99999999999999999999999."),
        (f"/api/topic?q=bread&since_id={'9' * 5000}", 400, '"since_id" must be a post id'),  # past int()'s limit
    ):
        response = client.get(path)
        assert response.status_code == status, path
        message = response.get_json()["message"] if path.startswith("/api/") else response.text
        assert says in message, (path, message[:300])


@pytest.mark.parametrize("depth", [100, 1_000, 100_000])
def test_json_nested_deep_is_refused_with_a_message(app, client, voices, depth):
    nested = "[" * depth + "]" * depth
    for path in ("/api/predict", "/api/sentiment", "/api/virality", "/api/users/baker/generate", "/api/users"):
        response = client.post(path, data=nested, content_type="application/json")
        assert response.status_code == 400, (path, depth)
        assert response.get_json()["message"].startswith(("Send a JSON object", "The JSON is nested too deeply"))
    with pytest.raises(ArchiveError, match=r"nested too deeply|expected a JSON object"):
        formats.read_jsonl(nested + "\n")
    with pytest.raises(ArchiveError, match=r"nested too deeply|should hold a list|expected an object"):
        formats.read_tweets_js("window.YTD.tweets.part0 = [" + nested + "]")


@given(depth=st.integers(min_value=0, max_value=5_000))
@example(depth=3_000)
@settings(max_examples=40, deadline=None, derandomize=bool(os.environ.get("CI")))
def test_file_readers_refuse_any_nesting_depth_without_crashing(depth):
    line = (
        '{"id": "1", "text": "hi", "created_at": "2026-01-01T00:00:00Z", "x": ' + "[" * depth + "0" + "]" * depth + "}"
    )
    try:
        formats.read_jsonl(line)
    except ArchiveError as exc:
        assert "nested too deeply" in str(exc)
