"""Embedding and fetching throughput on real posts: the seed recipe against the project's pipeline, and
each network's fetch through its real client library.

    pipenv run python bench/ingest.py --data ../shared/data/authorship-dev [--posts 3000]

Seed recipe: the full en_core_web_sm pipeline, ``nlp(text).vector`` one post at a time. Project:
tok2vec only, ``nlp.pipe`` batches (twitapp.embed). Each runs in a fresh process so that its resident
memory is its own. A third line times the whole ingest path (parse, embed, write to SQLite).

Then one line per network: the same posts served by the tests' fake X, Bluesky and Mastodon on loopback
in pages of 100 (Mastodon's largest page is 40), read by tweepy, atproto and Mastodon.py, and stored
through the one ingest path (embedded, written to SQLite), as `flask add` does. "fetch" is the client
alone; "to stored rows" is the whole fetch and store.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NETWORKS = {
    "x": "X (tweepy, pages of 100)",
    "bluesky": "Bluesky (atproto, pages of 100)",
    "mastodon": "Mastodon (Mastodon.py, pages of 40)",
}


def rss_mib() -> float:
    """Resident memory of this process now, from /proc (peak from getrusage as a fallback)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_texts(data: Path, limit: int) -> list[str]:
    """Original posts from every account file, interleaved so each account is represented."""
    per_account = []
    for path in sorted(data.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        per_account.append([r["text"] for r in rows if str(r.get("conversation_id", r["id"])) == str(r["id"])])
    texts = []
    for i in range(max(map(len, per_account))):
        texts.extend(acc[i] for acc in per_account if i < len(acc))
    return texts[:limit]


def child(mode: str, data: Path, limit: int) -> dict:
    from twitapp.ingest import embed

    texts = load_texts(data, limit)
    base = rss_mib()
    start = time.perf_counter()
    if mode == "seed":
        nlp = embed.full_pipeline()
        loaded = time.perf_counter()
        vectors = [nlp(t).vector for t in texts]
    else:
        nlp = embed.get_pipeline()
        loaded = time.perf_counter()
        vectors = embed.embed_texts(texts)
    done = time.perf_counter()
    return {
        "mode": mode,
        "posts": len(vectors),
        "load_s": loaded - start,
        "posts_per_s": len(texts) / (done - loaded),
        "rss_loaded_mib": rss_mib(),
        "rss_before_mib": base,
        "pipes": list(nlp.pipe_names),
    }


def ingest_child(data: Path, limit: int) -> dict:
    """The whole path as `flask import` takes it: read, embed, write in one transaction, into SQLite."""
    from twitapp import create_app
    from twitapp.extensions import db
    from twitapp.ingest.store import import_tweets
    from twitapp.sources import archive
    from twitapp.sources.records import AccountRecord

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3"})
        with app.app_context():
            db.create_all()
            from twitapp.ingest.embed import get_pipeline

            get_pipeline()
            total, start = 0, time.perf_counter()
            for path in sorted(data.glob("*.jsonl")):
                if total >= limit:
                    break
                parsed = archive.read_file(path)
                posts = parsed.posts[: limit - total]
                account = AccountRecord(parsed.account_id, path.stem, path.stem)
                total += import_tweets(account, posts, source="archive").added
            elapsed = time.perf_counter() - start
    return {"mode": "ingest", "posts": total, "posts_per_s": total / elapsed, "rss_loaded_mib": rss_mib()}


def _serve(network: str, texts: list[str]):
    """A fake of ``network`` on loopback serving ``texts`` as one account's posts, and the app's config for it."""
    from datetime import UTC, datetime, timedelta

    from tests.support.fakebluesky import FakeBluesky
    from tests.support.fakemastodon import FakeMastodon
    from tests.support.fakex import FakeXAPI

    start = datetime(2026, 1, 1, tzinfo=UTC)
    when = [start + timedelta(minutes=n) for n in range(len(texts))]
    if network == "x":
        fake = FakeXAPI().start()
        posts = [
            {"id": 10_000 + n, "text": t, "created_at": when[n].strftime("%Y-%m-%dT%H:%M:%S.000Z")}
            for n, t in enumerate(texts)
        ]
        fake.add_user(77, "benchaccount", "Bench", posts)
        return fake, "benchaccount", {"X_BEARER_TOKEN": fake.bearer_token, "X_API_URL": fake.url}
    if network == "bluesky":
        fake = FakeBluesky().start()
        did = "did:plc:benchbenchbenchbenchbenc"
        fake.add_account(did, "bench.bsky.social")
        fake.add_posts(did, [{"rkey": f"3k{n:07d}", "text": t, "created_at": when[n]} for n, t in enumerate(texts)])
        return fake, "bench.bsky.social", {"BLUESKY_APPVIEW_URL": fake.url}
    fake = FakeMastodon().start()
    fake.add_account("bench.example", "1", "bench")
    statuses = [{"id": str(10_000 + n), "content": f"<p>{t}</p>", "created_at": when[n]} for n, t in enumerate(texts)]
    fake.add_statuses("bench.example", "1", statuses)
    return fake, "bench@bench.example", {"MASTODON_INSTANCE_URL": fake.url_template}


def network_child(network: str, data: Path, limit: int) -> dict:
    """One account of ``limit`` real posts fetched from a fake ``network`` and stored, as `flask add` does."""
    from twitapp import create_app
    from twitapp.extensions import db
    from twitapp.ingest.embed import get_pipeline
    from twitapp.ingest.fetch import add_or_update_user
    from twitapp.sources import networks

    texts = [t for t in load_texts(data, limit) if t.strip()][:limit]
    fake, handle, settings = _serve(network, texts)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = create_app(
                {
                    "TESTING": True,
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3",
                    "TWEETS_PER_USER": min(limit, 3200),
                    **settings,
                }
            )
            with app.app_context():
                db.create_all()
                get_pipeline()
                client = networks.client_for(network)
                start = time.perf_counter()
                account = client.lookup_user(handle)
                fetched = client.fetch_timeline(account.id, limit=min(limit, 3200))
                fetch_s = time.perf_counter() - start
                start = time.perf_counter()
                result = add_or_update_user(handle, client)
                whole_s = time.perf_counter() - start
                client.close()
    finally:
        fake.stop()
    return {
        "mode": network,
        "posts": result.added,
        "fetched": len(fetched),
        "fetch_posts_per_s": len(fetched) / fetch_s,
        "posts_per_s": result.added / whole_s,
        "rss_loaded_mib": rss_mib(),
    }


def run_child(mode: str, data: Path, limit: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--data", str(data), "--posts", str(limit)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "authorship-dev")
    parser.add_argument("--posts", type=int, default=3000, help="posts to embed each way")
    parser.add_argument("--child", choices=["seed", "project", "ingest", *NETWORKS], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data}; pass --data PATH to the authorship-dev folder")
    if args.child:
        if args.child in NETWORKS:
            result = network_child(args.child, args.data, args.posts)
        elif args.child == "ingest":
            result = ingest_child(args.data, args.posts)
        else:
            result = child(args.child, args.data, args.posts)
        print(json.dumps(result))
        return

    print(f"Embedding {args.posts} original posts from {args.data} (each way in a fresh process)")
    seed = run_child("seed", args.data, args.posts)
    project = run_child("project", args.data, args.posts)
    ingest = run_child("ingest", args.data, args.posts)
    rows = [
        ("seed: full pipeline, nlp(text).vector", seed, f"{seed['load_s']:.2f}"),
        ("project: tok2vec only, nlp.pipe batches", project, f"{project['load_s']:.2f}"),
        ("project, whole ingest into SQLite", ingest, ""),
    ]
    print(f"{'method':<44} {'posts/s':>9} {'load s':>7} {'RSS MiB':>8}")
    for label, result, load in rows:
        print(f"{label:<44} {result['posts_per_s']:9.0f} {load:>7} {result['rss_loaded_mib']:8.0f}")
    print(f"speed-up of the project's embedding over the seed's: {project['posts_per_s'] / seed['posts_per_s']:.1f}x")
    print(f"pipelines: seed {seed['pipes']}, project {project['pipes']}")
    print()
    print(f"One account of {args.posts} of these posts from each network's fake, through its real client library")
    print(f"{'network (client, page size)':<44} {'fetched':>8} {'fetch/s':>9} {'stored/s':>9} {'RSS MiB':>8}")
    for network, label in NETWORKS.items():
        result = run_child(network, args.data, args.posts)
        print(
            f"{label:<44} {result['fetched']:8d} {result['fetch_posts_per_s']:9.0f} {result['posts_per_s']:9.0f} "
            f"{result['rss_loaded_mib']:8.0f}"
        )


if __name__ == "__main__":
    main()
