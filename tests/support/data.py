"""What many test files build their stories from: fictional accounts and posts, counting rows, and the
checks that skip a test (or fail it, where CI requires the component) when a server is missing."""

from __future__ import annotations

import os
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from twitapp.extensions import db
from twitapp.ingest.store import import_tweets
from twitapp.sources.records import AccountRecord, PostRecord


def require(component: str, reason: str):
    """Skip when a real component is missing, unless CI demands it (REQUIRE_<COMPONENT>=1)."""
    if os.environ.get(f"REQUIRE_{component.upper()}") == "1":
        pytest.fail(f"{component} is required here but unavailable: {reason}")
    pytest.skip(f"{component} unavailable: {reason}")


# Short made-up voices, distinct enough for a small model to separate them.
VOICES = {
    "baker": [
        "fresh sourdough out of the oven at six, come early before it sells out",
        "the rye loaves are proving slowly today, cold kitchen, warm hearts",
        "flour everywhere again. croissants are worth it though",
        "new cinnamon buns on the counter this morning, still warm",
        "we ran out of baguettes by nine, sorry friends, more tomorrow at dawn",
        "butter, flour, salt, patience. that is the whole secret of good bread",
    ],
    "commuter": [
        "Route 12 was 14 minutes late again. Third time this week. #transit",
        "Bike lane on 5th Street finally open: 2.3 km of protected track, 0 potholes.",
        "Timetable update: the 7:42 express now leaves at 7:38. Plan accordingly.",
        "Bus bunching on route 9: three buses at once, then nothing for 25 minutes.",
        "Counted 41 cyclists at the bridge between 8 and 9am. Up from 28 last month.",
        "Signal fault at Central station, trains delayed 10-15 min. #transit",
    ],
    "coder": [
        "deployed on a friday. rolled back on a friday. classic",
        "spent three hours on a bug that was a missing `await`",
        "tests green, coffee cold, merge button pressed",
        "refactored the parser today, 400 lines deleted, nothing broke",
        "the flaky test is flaky again. adding retries feels like giving up",
        "new laptop, new dotfiles, same typos in git commit messages",
    ],
}


def make_posts(texts: list[str], start_id: int, start: datetime | None = None) -> list[PostRecord]:
    start = start or datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    return [
        PostRecord(id=start_id + i, text=text, created_at=start + timedelta(hours=i), like_count=i % 4, lang="en")
        for i, text in enumerate(texts)
    ]


def count_rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def stored(*files: tuple[str, bytes]) -> list[int]:
    """Files stored as a page stores what is sent (in the app context the caller holds); their upload ids."""
    import io

    from twitapp.jobs import uploads

    return uploads.store([(name, io.BytesIO(raw)) for name, raw in files])


def fake_posts(start_id: int, count: int, prefix: str = "post") -> list[dict]:
    return [
        {
            "id": start_id + i,
            "text": f"{prefix} {i} about the harbour market and the rain",
            "created_at": f"2026-03-{1 + i // 24:02d}T{i % 24:02d}:00:00.000Z",
            "like_count": i,
            "lang": "en",
        }
        for i in range(count)
    ]


def online(app, fake_x):
    app.config.update(X_BEARER_TOKEN=fake_x.bearer_token, X_API_URL=fake_x.url)


TWEETS_JS = """window.YTD.tweets.part0 = [
  {"tweet": {"id_str": "1500000000000000001", "full_text": "Fish &amp; chips at the harbour https://t.co/abc",
             "created_at": "Wed Oct 10 20:19:24 +0000 2018", "favorite_count": "7", "retweet_count": "2",
             "lang": "en", "entities": {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://example.com/menu"}]}}},
  {"tweet": {"id_str": "1500000000000000002", "full_text": "RT @someone: not mine",
             "created_at": "Wed Oct 10 21:00:00 +0000 2018", "favorite_count": "0", "retweet_count": "0"}},
  {"tweet": {"id_str": "1500000000000000003", "full_text": "@friend thanks!", "in_reply_to_status_id_str": "42",
             "created_at": "Wed Oct 10 22:00:00 +0000 2018", "favorite_count": "1", "retweet_count": "0"}}
]"""


GOOD = ["love", "great", "wonderful", "happy", "fantastic", "brilliant", "excellent", "delightful"]
BAD = ["hate", "awful", "terrible", "sad", "horrible", "dreadful", "miserable", "disgusting"]
PLAIN = ["Tuesday", "the report", "a meeting", "the bus", "page four", "the schedule", "a form", "the list"]


def training_rows() -> list[tuple[str, str]]:
    rows = []
    for i in range(40):
        rows.append((f"I {GOOD[i % 8]} the {PLAIN[(i * 3) % 8]}, truly {GOOD[(i + 3) % 8]} #{i}", "positive"))
        rows.append((f"I {BAD[i % 8]} the {PLAIN[(i * 5) % 8]}, so {BAD[(i + 2) % 8]} #{i}", "negative"))
        rows.append((f"The {PLAIN[i % 8]} is on {PLAIN[(i + 1) % 8]} number {i}", "neutral"))
    return rows


def patternless_rows(count: int = 150) -> list[tuple[str, str]]:
    """Texts of plain words with labels drawn at random: nothing in a text tells its label."""
    rng = random.Random(7)
    words = [w for phrase in PLAIN for w in phrase.split()] + ["blue", "seven", "window", "river", "chair"]
    labels = ["negative", "neutral", "positive"]
    return [(" ".join(rng.choices(words, k=6)) + f" {i}", rng.choice(labels)) for i in range(count)]


# Everyday words: posts drawn at random from them alone carry nothing that tells their writers apart.
POOL = [
    *("the", "a", "morning", "evening", "coffee", "rain", "city", "river", "market", "people", "today"),
    *("tomorrow", "news", "time", "good", "late", "small", "big", "green", "quiet", "loud", "bridge"),
    *("street", "window", "music", "book", "friend", "work", "home", "road", "light", "again"),
]


def shuffled_posts(count: int, rng: random.Random) -> list[str]:
    """Posts of eight words drawn from POOL: written by nobody in particular."""
    return [" ".join(rng.sample(POOL, 8)) for _ in range(count)]


def words_of(texts) -> list[str]:
    """The words a reader sees, told apart here without the app's code (twitapp/style/words.py): letters,
    digits and underscores with apostrophes inside, an @ or # before them belonging to them, any case."""
    return [w for text in texts for w in re.findall(r"[@#]?\w+(?:'\w+)*", text.lower().replace("’", "'"))]


LIKED = ["Huge giveaway today, win a signed copy", "Big news: our new album is out now", "Giveaway time! Tag a friend"]


IGNORED = [
    "minutes of the committee meeting, item four",
    "routine notice: office closed",
    "agenda item five, see annex",
]


START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def virality_posts(
    start_id: int, count: int, start: datetime, signal: bool = True, seed: int = 0, inverted: bool = False
) -> list[PostRecord]:
    """Posts every 5 hours; with ``signal``, the liked kind of text gets likes and the other kind none
    (``inverted``: the other way round, a taste that has since changed)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        liked = rng.random() < 0.5
        text = f"{rng.choice(LIKED if liked != inverted else IGNORED)} #{start_id + i}"
        likes = (rng.randint(3, 40) if liked else 0) if signal else rng.choice([0, 0, 5])
        out.append(PostRecord(start_id + i, text, start + timedelta(hours=5 * i), like_count=likes, lang="en"))
    return out


def store(app, username: str, account_id: int, records: list[PostRecord]) -> None:
    with app.app_context():
        import_tweets(AccountRecord(account_id, username, username.title()), records, source="archive")


def liked_posts(start_id: int, count: int, start: datetime, seed: int = 0) -> list[PostRecord]:
    """Posts every 5 hours that all get likes: the liked kind of text 30 to 60, the other kind 1 to 10."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        liked = rng.random() < 0.5
        text = f"{rng.choice(LIKED if liked else IGNORED)} #{start_id + i}"
        likes = rng.randint(30, 60) if liked else rng.randint(1, 10)
        out.append(PostRecord(start_id + i, text, start + timedelta(hours=5 * i), like_count=likes, lang="en"))
    return out


PARTS = {
    "baker": (
        ["fresh sourdough", "rye loaves", "cinnamon buns", "croissants", "seeded rolls", "focaccia", "brioche"],
        ["out at six", "proving slowly", "still warm", "on the counter", "cooling now", "in the oven"],
        ["come early", "sold out by nine", "flour everywhere", "see you soon", "patience pays", "warm hearts"],
        ["friends", "neighbours", "all", "early birds", "regulars", "market folk"],
    ),
    "commuter": (
        ["Route 12", "The 7:42", "Bus 9", "The tram", "The night bus", "Line 4", "The ferry"],
        ["was late again", "left early", "skipped Central", "is bunching", "broke down", "ran on time"],
        ["#transit", "plan ahead.", "third time.", "so it goes.", "no notice.", "eyes rolling."],
        ["Monday", "today", "this week", "again", "at rush hour", "tonight"],
    ),
    "coder": (
        ["deployed on friday", "the flaky test", "the parser", "new dotfiles", "the build", "a missing await"],
        ["rolled back", "failed twice", "got refactored", "went green", "ate my morning", "broke prod"],
        ["classic", "coffee cold", "merge pressed", "sigh", "lesson learned", "never again"],
        ["lol", "again", "today", "as usual", "somehow", "of course"],
    ),
}


def voice_posts(voice: str, count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(slot) for slot in PARTS[voice]) for _ in range(count)]


@pytest.fixture
def writers(app):
    """Three stored accounts of 80 posts each, in three voices."""
    for number, voice in enumerate(PARTS, start=1):
        posts = [
            PostRecord(number * 10_000 + i, text, generate_time(i), like_count=i % 3)
            for i, text in enumerate(voice_posts(voice, 80, seed=number))
        ]
        with app.app_context():
            import_tweets(AccountRecord(number * 7, voice, voice.title()), posts, source="archive")
    return list(PARTS)


def generate_time(i: int):
    from datetime import UTC, datetime, timedelta

    return datetime(2025, 3, 1, tzinfo=UTC) + timedelta(hours=7 * i)
