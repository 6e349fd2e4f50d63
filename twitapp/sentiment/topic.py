"""A live sentiment dashboard for a hashtag or any query: recent posts, each scored, and the mix.

With an X token the posts come from X's recent search (``QUERY -is:retweet lang:en``); without one, from
the stored posts whose text holds every word of the query. Polling with ``since_id`` fetches and scores
only posts newer than those already shown.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app, request

from twitapp.errors import UserError
from twitapp.extensions import db, limiter
from twitapp.models import Tweet, User
from twitapp.sentiment import model as sentiment
from twitapp.sentiment.labelled import LABELS
from twitapp.sources import x
from twitapp.sources.records import checked_text, clean_text
from twitapp.sources.x import client_from_config

MAX_QUERY_CHARS = 200
PER_POLL = 50


class TopicError(UserError, ValueError):
    """The query cannot be searched as given; the message says what to change."""


@dataclass(frozen=True)
class TopicPosts:
    query: str
    source: str  # "x" or "stored"
    backend: str
    model_version: int | None
    posts: list[dict]  # newest first

    @property
    def newest_id(self) -> str | None:
        return self.posts[0]["id"] if self.posts else None

    def mix(self) -> dict[str, int]:
        counts = dict.fromkeys(LABELS, 0)
        for post in self.posts:
            counts[post["label"]] += 1
        return counts

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
# A query's newest posts from X, and when they were fetched: every visitor polling the same topic shares
# one search per TOPIC_CACHE_SECONDS, so the operator's X quota does not grow with the audience.
_searches: dict[str, tuple[float, list[Row]]] = {}
_searches_lock = threading.Lock()
_search_fetch_lock = threading.Lock()
SEARCHES_KEPT = 200


# X refuses a since_id older than its seven days of recent search; kept posts older than this are let go.
KEEP_POSTS = timedelta(days=6)


def fresh(query: str | None) -> bool:
    """Whether this query's last search is recent enough to answer from (so it spends no X quota)."""
    with _searches_lock:
        kept = _searches.get(query or "")
    return kept is not None and time.monotonic() - kept[0] < current_app.config["TOPIC_CACHE_SECONDS"]


def _searched(client, query: str) -> list[Row]:
    """The query's newest PER_POLL posts, newest first: kept ones while fresh, else X asked for what is newer.

    Keyed on the query exactly as typed: X's search operators are case-sensitive (``OR``).
    """
    with _search_fetch_lock:  # one search per query at a time, however many visitors miss together
        with _searches_lock:
            kept = _searches.get(query)
        if kept is not None and time.monotonic() - kept[0] < current_app.config["TOPIC_CACHE_SECONDS"]:
            return kept[1]
        recent_enough = datetime.now(UTC) - KEEP_POSTS
        earlier = [row for row in (kept[1] if kept else []) if row[3] > recent_enough]
        newest = int(earlier[0][0]) if earlier else None
        try:
            with client:
                found = client.search_recent(f"{query} -is:retweet lang:en", since_id=newest, limit=PER_POLL)
        except Exception:
            with _searches_lock:
                _searches.pop(query, None)  # the next request starts afresh, without a since_id X may refuse
            raise
        fresh_rows = [(str(post.id), post.text, name, post.created_at) for post, name in found]
        rows = sorted({row[0]: row for row in [*earlier, *fresh_rows]}.values(), key=lambda r: -int(r[0]))
        rows = rows[:PER_POLL]
        with _searches_lock:
            _searches.pop(query, None)
            _searches[query] = (time.monotonic(), rows)
            while len(_searches) > SEARCHES_KEPT:
                _searches.pop(next(iter(_searches)))
        return rows


def recent(query: str | None, since_id: int | None = None) -> TopicPosts:
    """The newest posts for the query (after ``since_id`` when given), scored."""
    query = check_query(query)
    client = client_from_config(current_app.config)
    if client is not None:
        rows = _searched(client, query)
        if since_id:
            rows = [row for row in rows if int(row[0]) > since_id]
        source = "x"
    else:
        statement = sa.select(Tweet.id, Tweet.text, User.username, Tweet.created_at).join(User)
        for word in query.split()[:10]:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            statement = statement.where(Tweet.text.ilike(f"%{escaped}%", escape="\\"))
        if since_id:
            statement = statement.where(Tweet.id > since_id)
        statement = statement.order_by(Tweet.created_at.desc(), Tweet.id.desc()).limit(PER_POLL)
        rows = [(str(i), text, name, at) for i, text, name, at in db.session.execute(statement)]
        source = "stored"
    # Only what the scorer takes: the same cleaning it applies (a post of NUL characters is empty).
    rows = [r for r in rows if 0 < len(clean_text(r[1]).strip()) <= sentiment.MAX_TEXT_CHARS]
    if not rows:
        row, model = sentiment.in_service()
        return TopicPosts(query, source, "trained" if model else "vader", row.id if row else None, [])
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
    return TopicPosts(query, source, backend, row.id if row else None, posts)


def _spends_no_quota() -> bool:
    """Offline (topics are read from the database), or the query's last search still answers."""
    return not x.online() or fresh((request.args.get("q") or "").strip())


# A topic read from X spends the operator's quota: its own budget per address (the topic page and the API
# share it), on top of the page's or the API's own, counted only for the requests that search X.
topic_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_TOPIC"], scope="topic", exempt_when=_spends_no_quota
)
