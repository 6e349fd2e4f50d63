"""A sentiment dashboard for a hashtag or any query: its posts, each scored, the mix, and the mix over time.

The posts come from the network asked for: X's recent search (``QUERY -is:retweet lang:en``, with a
token), a hashtag's timeline on a Mastodon instance (``MASTODON_TOPIC_INSTANCE``, no token needed),
Bluesky's search (for a signed-in account: ``BLUESKY_HANDLE`` and ``BLUESKY_APP_PASSWORD``), or the stored
posts whose text holds every word of the query (the default without an X token). A network's search is
live: polling with ``since_id`` fetches and scores only posts newer than those already shown. The stored
posts are not: the page shows the newest ``RESULTS`` matches, page by page.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app, request

from twitapp.errors import UserError
from twitapp.extensions import db, limiter
from twitapp.models import Tweet, User
from twitapp.sentiment import model as sentiment
from twitapp.sentiment.labelled import LABELS
from twitapp.sources import networks, x
from twitapp.sources.records import checked_text, clean_text
from twitapp.web import paging

MAX_QUERY_CHARS = 200
PER_POLL = 50
PER_PAGE = 20  # posts on one page of the topic
RESULTS = sentiment.MAX_TEXTS  # the newest stored matches the page scores (in one call), charts and pages through


class TopicError(UserError, ValueError):
    """The query cannot be searched as given; the message says what to change."""


@dataclass(frozen=True)
class TopicPosts:
    query: str
    source: str  # "x", "mastodon", "bluesky" or "stored"
    backend: str
    model_version: int | None
    posts: list[dict]  # newest first
    matches: int | None = field(default=None, compare=False)  # stored posts matching, when more than shown

    @property
    def live(self) -> bool:
        """Whether new posts can arrive while the page is open (a network's search, not the stored posts)."""
        return self.source != "stored"

    @property
    def newest_id(self) -> str | None:
        """What the next poll passes as ``since_id``: the network's id of the newest post shown, or, for the
        stored posts, the largest key shown (keys count up as posts are stored, so a poll brings the posts
        stored since, whenever they were written: an account added later may hold older posts)."""
        if not self.posts:
            return None
        if self.source == "stored":
            return str(max(int(post["id"]) for post in self.posts))
        return self.posts[0]["id"]

    def mix(self) -> dict[str, int]:
        counts = dict.fromkeys(LABELS, 0)
        for post in self.posts:
            counts[post["label"]] += 1
        return counts

    def shares(self) -> dict[str, int]:
        """Each label's share of the posts, in whole percent."""
        total = len(self.posts) or 1
        return {label: round(100 * count / total) for label, count in self.mix().items()}

    def as_dict(self) -> dict:
        return {
            "query": self.query,
            "source": self.source,
            "model": {"backend": self.backend, "version": self.model_version},
            "mix": self.mix(),
            "newest_id": self.newest_id,
            "posts": self.posts,
        }


def check_query(query: str | None) -> str:
    empty = "Type a hashtag or words to follow, for example #transit."
    return checked_text(query, MAX_QUERY_CHARS, empty, TopicError, noun="A query")


Row = tuple[str, str, str, datetime]  # post id, text, author's handle, when
# A query's newest posts from a network, and when they were fetched: every visitor polling the same topic
# shares one search per TOPIC_CACHE_SECONDS, so the operator's quota (and the network's patience with this
# server) does not shrink with the audience.
_searches: dict[tuple[str, str], tuple[float, list[Row]]] = {}
_searches_lock = threading.Lock()
_search_fetch_lock = threading.Lock()
SEARCHES_KEPT = 200
NETWORKS = ("x", "mastodon", "bluesky", "stored")
SHOWN = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky", "stored": "the stored posts"}


# X refuses a since_id older than its seven days of recent search; kept posts older than this are let go.
KEEP_POSTS = timedelta(days=6)


def usable(config) -> dict[str, str | None]:
    """Each network the topic can be read from, with why it cannot be here (None: it can)."""
    return {
        "x": None if config.get("X_BEARER_TOKEN") else "X's search needs X_BEARER_TOKEN.",
        "mastodon": None,
        "bluesky": None
        if config.get("BLUESKY_HANDLE") and config.get("BLUESKY_APP_PASSWORD")
        else "Bluesky searches only for a signed-in account: set BLUESKY_HANDLE and BLUESKY_APP_PASSWORD.",
        "stored": None,
    }


def network_of(raw: str | None) -> str:
    """The network asked for (``?network=``), or the default: X's search with a token, else the stored posts."""
    if not raw:
        return "x" if x.online() else "stored"
    if raw not in NETWORKS:
        raise TopicError(f"network must be one of {', '.join(NETWORKS)}, not {raw[:20]!r}.")
    why = usable(current_app.config)[raw]
    if why is not None:
        raise TopicError(why)
    return raw


def fresh(network: str, query: str | None) -> bool:
    """Whether this query's last search is recent enough to answer from (so it asks the network nothing)."""
    with _searches_lock:
        kept = _searches.get((network, query or ""))
    return kept is not None and time.monotonic() - kept[0] < current_app.config["TOPIC_CACHE_SECONDS"]


# One client per network (and its settings) for this process's searches, used under _search_fetch_lock: a
# Bluesky search signs in once, not at every poll (Bluesky allows an account some 300 sign-ins a day).
_clients: dict[tuple, object] = {}
CLIENTS_KEPT = 8
_SETTINGS = {"x": "X_", "mastodon": "MASTODON_", "bluesky": "BLUESKY_"}


def _client(network: str):
    config = current_app.config
    key = (network, *sorted((k, str(v)) for k, v in config.items() if k.startswith(_SETTINGS[network])))
    if key not in _clients:
        while len(_clients) >= CLIENTS_KEPT:
            _clients.pop(next(iter(_clients))).close()
        _clients[key] = networks.client_for(network, config)
    return _clients[key]


def _search(network: str, query: str, since_id: str | None) -> list[tuple]:
    """Ask the network: X's recent search, a Mastodon hashtag's timeline, Bluesky's search."""
    asked = f"{query} -is:retweet lang:en" if network == "x" else query
    try:
        return _client(network).search_recent(asked, since_id=since_id, limit=PER_POLL)
    except ValueError as exc:  # a query that network cannot search (Mastodon follows one hashtag)
        raise TopicError(str(exc)) from None


def _searched(network: str, query: str) -> list[Row]:
    """The query's newest PER_POLL posts, newest first: kept ones while fresh, else the network asked for
    what is newer.

    Keyed on the query exactly as typed: X's search operators are case-sensitive (``OR``).
    """
    key = (network, query)
    with _search_fetch_lock:  # one search per query at a time, however many visitors miss together
        with _searches_lock:
            kept = _searches.get(key)
        if kept is not None and time.monotonic() - kept[0] < current_app.config["TOPIC_CACHE_SECONDS"]:
            return kept[1]
        recent_enough = datetime.now(UTC) - KEEP_POSTS
        earlier = [row for row in (kept[1] if kept else []) if row[3] > recent_enough]
        try:
            found = _search(network, query, earlier[0][0] if earlier else None)
        except Exception:
            with _searches_lock:
                _searches.pop(key, None)  # the next request starts afresh, without a since_id it may refuse
            raise
        fresh_rows = [(str(post.id), post.text, name, post.created_at) for post, name in found]
        rows = sorted({row[0]: row for row in [*earlier, *fresh_rows]}.values(), key=_newest_first)
        rows = rows[:PER_POLL]
        with _searches_lock:
            _searches.pop(key, None)
            _searches[key] = (time.monotonic(), rows)
            while len(_searches) > SEARCHES_KEPT:
                _searches.pop(next(iter(_searches)))
        return rows


def _newest_first(row: Row) -> tuple:
    number = row[0].rsplit("/", 1)[-1]
    return (-row[3].timestamp(), -int(number) if number.isdigit() else 0, row[0])


def _after(rows: list[Row], since_id: str) -> list[Row]:
    """The rows newer than the post ``since_id`` (the newest a page shows already)."""
    ids = [row[0] for row in rows]
    if since_id in ids:
        return rows[: ids.index(since_id)]
    place, _, number = since_id.rpartition("/")
    if number.isdigit() and "://" not in since_id:  # X's ids, and a Mastodon instance's, count up with time
        return [row for row in rows if _same_place_and_later(row[0], place, int(number))]
    return rows  # gone from the kept posts (a Bluesky URI): all are newer than it was


def _same_place_and_later(post_id: str, place: str, number: int) -> bool:
    row_place, _, row_number = post_id.rpartition("/")
    return row_place == place and row_number.isdigit() and int(row_number) > number


def _holds_every_word(statement: sa.Select, query: str) -> sa.Select:
    for word in query.split()[:10]:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(Tweet.text.ilike(f"%{escaped}%", escape="\\"))
    return statement


def _stored(query: str, since_id: str | None, limit: int = PER_POLL) -> list[Row]:
    statement = _holds_every_word(sa.select(Tweet.id, Tweet.text, User.username, Tweet.created_at).join(User), query)
    if since_id:
        if not (since_id.isdigit() and len(since_id) <= 19 and int(since_id) < 2**63):
            raise TopicError('"since_id" must be a post id of the stored posts: the "newest_id" of an earlier answer.')
        statement = statement.where(Tweet.id > int(since_id))  # stored since (see TopicPosts.newest_id)
    statement = statement.order_by(Tweet.created_at.desc(), Tweet.id.desc()).limit(limit)
    return [(str(i), text, name, at) for i, text, name, at in db.session.execute(statement)]


def _stored_matches(query: str) -> int:
    return db.session.scalar(_holds_every_word(sa.select(sa.func.count()).select_from(Tweet), query))


def _scored(query: str, source: str, rows: list[Row], matches: int | None = None) -> TopicPosts:
    # Only what the scorer takes: the same cleaning it applies (a post of NUL characters is empty).
    rows = [r for r in rows if 0 < len(clean_text(r[1]).strip()) <= sentiment.MAX_TEXT_CHARS]
    if not rows:
        row, model = sentiment.in_service()
        return TopicPosts(query, source, "trained" if model else "vader", row.id if row else None, [], matches)
    backend, row, scored = sentiment.analyse([text for _, text, _, _ in rows], explain=False)
    posts = [
        {
            "id": post_id,
            "text": text,
            "username": name,
            "created_at": created_at.isoformat(),
            "label": result.label,
            "score": round(result.score, 4),
        }
        for (post_id, text, name, created_at), result in zip(rows, scored, strict=True)
    ]
    return TopicPosts(query, source, backend, row.id if row else None, posts, matches)


def recent(query: str | None, since_id: str | None = None, network: str | None = None) -> TopicPosts:
    """The newest posts for the query from ``network`` (after ``since_id`` when given), scored."""
    query = check_query(query)
    source = network_of(network)
    if source == "stored":
        return _scored(query, source, _stored(query, since_id))
    rows = _searched(source, query)
    return _scored(query, source, _after(rows, since_id) if since_id else rows)


def results(query: str | None, network: str | None = None) -> TopicPosts:
    """What the topic's page shows: a network's newest posts for the query, or the newest ``RESULTS`` stored
    posts that match it (``matches`` says how many match in all), scored, newest first."""
    query = check_query(query)
    source = network_of(network)
    if source != "stored":
        return _scored(query, source, _searched(source, query))
    return _stored_results(query)


# The stored topic's results, per query and state of the posts and the model in service: paging through
# them, or coming back, scores nothing twice.
_results: OrderedDict[tuple, TopicPosts] = OrderedDict()
_results_lock = threading.Lock()
RESULTS_KEPT = 32


def _stored_results(query: str) -> TopicPosts:
    state = db.session.execute(sa.select(sa.func.count(), sa.func.max(Tweet.id))).one()
    row, _ = sentiment.in_service()
    key = (query, *state, row.id if row else None)
    with _results_lock:
        if key in _results:
            _results.move_to_end(key)
            return _results[key]
    rows = _stored(query, None, limit=RESULTS)
    found = _scored(query, "stored", rows, _stored_matches(query) if len(rows) == RESULTS else None)
    with _results_lock:
        _results[key] = found
        while len(_results) > RESULTS_KEPT:
            _results.popitem(last=False)
    return found


# ---------------------------------------------------------------------------------------------------
# Page by page


@dataclass(frozen=True)
class Page:
    number: int  # the page shown
    pages: int
    posts: list[dict]
    asked: int  # the page asked for: past the last one, the last one is shown


def page_number(raw: str | None) -> int:
    """The page ``?page=`` asks for (1 when it is not given), or a TopicError that says what it must be."""
    try:
        return paging.whole_number("page", raw, 1, paging.MAX_PAGE)
    except ValueError as exc:
        raise TopicError(str(exc)) from None


def page_of(found: TopicPosts, number: int) -> Page:
    """One page of the posts, newest first; a page past the last one shows the last one."""
    pages = max(1, math.ceil(len(found.posts) / PER_PAGE))
    shown = min(number, pages)
    start = (shown - 1) * PER_PAGE
    return Page(shown, pages, found.posts[start : start + PER_PAGE], number)


def _spends_no_quota() -> bool:
    """Read from the database, or the query's last search still answers (or the request is refused)."""
    try:
        network = network_of(request.args.get("network"))
    except TopicError:
        return True
    return network == "stored" or fresh(network, (request.args.get("q") or "").strip())


# A topic read from X spends the operator's quota: its own budget per address (the topic page and the API
# share it), on top of the page's or the API's own, counted only for the requests that search X.
topic_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_TOPIC"], scope="topic", exempt_when=_spends_no_quota
)


# ---------------------------------------------------------------------------------------------------
# The mix over time

# The bucket follows the posts' span: hours under two days, days under two months, weeks under a year,
# months under five years, then years (a chart a phone can read has some dozens of columns, not hundreds).
UNIT_SPANS = (
    ("hour", timedelta(days=2)),
    ("day", timedelta(days=62)),
    ("week", timedelta(days=366)),
    ("month", timedelta(days=5 * 365)),
)


@dataclass(frozen=True)
class Bucket:
    start: datetime  # UTC
    unit: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, label: str) -> int:
        """The label's share of the bucket's posts, in whole percent."""
        return round(100 * self.counts[label] / self.total) if self.total else 0

    @property
    def name(self) -> str:
        """The bucket as a person reads it: "14 Mar 2025, 13:00", "14 Mar 2025", "week of …", "March 2025", "2025"."""
        day = f"{self.start.day} {self.start:%b %Y}"
        return {
            "hour": f"{day}, {self.start:%H:00}",
            "day": day,
            "week": f"week of {day}",
            "month": f"{self.start:%B %Y}",
            "year": f"{self.start:%Y}",
        }[self.unit]

    def tick(self, previous: Bucket | None) -> tuple[str, str]:
        """The axis label under the bucket's column, and a second line naming the day (or year) where it
        differs from the label before."""
        if self.unit == "hour":
            main, sub, same = f"{self.start:%H:00}", f"{self.start.day} {self.start:%b}", "%Y-%m-%d"
        elif self.unit == "month":
            main, sub, same = f"{self.start:%b}", f"{self.start:%Y}", "%Y"
        elif self.unit == "year":
            main, sub, same = f"{self.start:%Y}", "", "%Y"
        else:
            main, sub, same = f"{self.start.day} {self.start:%b}", f"{self.start:%Y}", "%Y"
        if previous is not None and previous.start.strftime(same) == self.start.strftime(same):
            sub = ""
        return main, sub


@dataclass(frozen=True)
class Timeline:
    unit: str  # "hour", "day", "week", "month" or "year"
    buckets: list[Bucket]  # oldest first, every bucket from the first post's to the last's, empty ones too

    @property
    def busiest(self) -> int:
        return max(bucket.total for bucket in self.buckets)

    def with_posts(self) -> list[Bucket]:
        return [bucket for bucket in self.buckets if bucket.total]

    def ticks(self, most: int = 4) -> list[tuple[int, str, str]]:
        """Up to ``most`` evenly spread (bucket index, label, second line), first and last included."""
        last = len(self.buckets) - 1
        places = sorted({round(i * last / (most - 1)) for i in range(most)}) if last else [0]
        labelled, before = [], None
        for place in places:
            labelled.append((place, *self.buckets[place].tick(before)))
            before = self.buckets[place]
        return labelled


def _bucket_start(at: datetime, unit: str) -> datetime:
    hour = at.replace(minute=0, second=0, microsecond=0)
    if unit == "hour":
        return hour
    day = hour.replace(hour=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())  # weeks start on Monday
    month = day.replace(day=1)
    return month if unit == "month" else month.replace(month=1)


def _bucket_after(start: datetime, unit: str) -> datetime:
    if unit == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    if unit == "year":
        return start.replace(year=start.year + 1)
    return start + {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}[unit]


def _utc(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def over_time(posts: list[dict]) -> Timeline | None:
    """How many of the posts read positive, neutral and negative, bucket by bucket (None: no posts)."""
    if not posts:
        return None
    times = [_utc(post["created_at"]) for post in posts]
    span = max(times) - min(times)
    unit = next((unit for unit, under in UNIT_SPANS if span < under), "year")
    counts: dict[datetime, dict[str, int]] = {}
    for at, post in zip(times, posts, strict=True):
        counts.setdefault(_bucket_start(at, unit), dict.fromkeys(LABELS, 0))[post["label"]] += 1
    buckets, start, last = [], _bucket_start(min(times), unit), _bucket_start(max(times), unit)
    while start <= last:
        buckets.append(Bucket(start, unit, counts.get(start, dict.fromkeys(LABELS, 0))))
        start = _bucket_after(start, unit)
    return Timeline(unit, buckets)
