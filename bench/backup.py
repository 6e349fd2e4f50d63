"""Bounded work on big files: the memory of a large import, and a one-million-post export that completes.

    pipenv run python bench/backup.py --data ../shared/data/authorship-dev [--posts 200000] [--export-posts 1000000]

Import: a CSV of --posts posts (the dev accounts' texts, repeated under new ids; made-up texts without the
data) is imported into a fresh SQLite database with `flask import`, the command an operator uses for files
larger than a page takes. Prints the time, posts per second and the command's peak resident memory
(target: under 400 MB, flat however many posts), and checks every post was stored.

Export: a fresh SQLite database is filled with --export-posts posts (written directly, with placeholder
embeddings: an export never reads them), then exported twice: with `flask export`, and as a download of
GET /export from gunicorn (two workers, the Procfile's command and gunicorn.conf.py's settings) with its
30-second worker timeout. Prints
each one's time and peak memory, and whether the file is whole (its end line there, its counts and
checksum right: the check a restore makes first, timed too).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twitapp.ingest.backup import ExportFile  # noqa: E402

WORDS = ("the", "harbour", "ferry", "rain", "bread", "market", "tide", "morning", "late", "bus", "coffee", "quiet")


def texts_from(data: Path) -> list[str]:
    """The dev accounts' original post texts, or made-up ones when the data is absent."""
    found = []
    for path in sorted(data.glob("*.jsonl")) if data.is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if not row["text"].startswith("RT @"):
                    found.append(row["text"])
    if found:
        return found
    print(f"(no data at {data}: using made-up texts)")
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) for _ in range(5000)]


def run(env: dict, *args: str, stdin: str | None = None) -> tuple[float, int, str]:
    """A flask command: (seconds, peak resident memory in MB, output); exits on failure."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # reaped here, so its own peak memory can be read
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        sys.exit(f"flask {' '.join(args)} failed:\n{output}")
    return seconds, usage.ru_maxrss // 1024, output


def environment(folder: Path) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite3'}",
        "SECRET_KEY": "bench",
        "FLASK_APP": "twitapp",
        "SIGN_IN_REQUIRED": "0",
        "RATELIMIT_ENABLED": "0",
        "REDIS_URL": "",
    }


def bench_import(texts: list[str], posts: int) -> None:
    print(f"\n== Import of {posts:,} posts with flask import (SQLite) ==")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = environment(folder)
        run(env, "db", "upgrade")
        path = folder / "big.csv"
        start = datetime(2020, 1, 1, tzinfo=UTC)
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["id", "created_at", "text", "like_count", "retweet_count", "reply_count"])
            for i in range(posts):
                at = (start + timedelta(minutes=i)).isoformat()
                writer.writerow([10_000_000 + i, at, texts[i % len(texts)], i % 50, i % 7, i % 3])
        print(f"file: {path.stat().st_size / 2**20:,.1f} MB")
        seconds, peak, output = run(env, "import", str(path), "--username", "bench_big")
        print(output.strip().splitlines()[-1])
        engine = sa.create_engine(env["DATABASE_URL"])
        with engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT count(*) FROM tweets")).scalar()
            staged = connection.execute(sa.text("SELECT count(*) FROM staged_posts")).scalar()
        engine.dispose()
        print(f"time {seconds:.1f} s, {posts / seconds:,.0f} posts/s; peak resident memory {peak} MB (target < 400)")
        print(f"stored {stored:,} of {posts:,} posts; {staged} staged rows left")


def fill(env: dict, posts: int, texts: list[str]) -> None:
    """posts rows written straight into the tables, over 20 accounts, with placeholder embeddings."""
    engine = sa.create_engine(env["DATABASE_URL"])
    accounts = 20
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO users (id, username, name, source) VALUES (:id, :username, :name, 'archive')"),
            [{"id": 100 + a, "username": f"bench_{a}", "name": f"Bench {a}"} for a in range(accounts)],
        )
        batch = []
        for i in range(posts):
            at = (start + timedelta(seconds=i)).isoformat(sep=" ")
            batch.append(
                {
                    "id": 10_000_000 + i,
                    "user_id": 100 + i % accounts,
                    "text": texts[i % len(texts)],
                    "at": at,
                    "likes": i % 50,
                    "embedding": b"\0" * 384,
                }
            )
            if len(batch) == 20_000 or i == posts - 1:
                connection.execute(
                    sa.text(
                        "INSERT INTO tweets (id, user_id, text, created_at, like_count, retweet_count, reply_count,"
                        " embedding) VALUES (:id, :user_id, :text, :at, :likes, 0, 0, :embedding)"
                    ),
                    batch,
                )
                batch = []
    engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def procfile_web() -> list[str]:
    """The Procfile's web command, as arguments (with its app string unquoted)."""
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    return [arg.strip('"') for arg in line.split(":", 1)[1].split()]


def checked(path: Path) -> str:
    started = time.monotonic()
    try:
        summary = ExportFile.on_disk(path).check(check_handles=False)
    except ValueError as exc:
        return f"REFUSED by the restore check ({time.monotonic() - started:.1f} s): {exc}"
    seconds = time.monotonic() - started
    return f"whole: {summary.posts:,} posts in {len(summary.accounts)} accounts, checked in {seconds:.1f} s"


def bench_export(texts: list[str], posts: int) -> None:
    print(f"\n== Export of {posts:,} posts (SQLite) ==")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = environment(folder)
        run(env, "db", "upgrade")
        started = time.monotonic()
        fill(env, posts, texts)
        print(f"filled in {time.monotonic() - started:.1f} s")
        target = folder / "export.jsonl"
        seconds, peak, _ = run(env, "export", str(target))
        print(
            f"flask export: {seconds:.1f} s, {posts / seconds:,.0f} posts/s, peak {peak} MB, "
            f"{target.stat().st_size / 2**20:,.0f} MB; {checked(target)}"
        )

        binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
        port = free_port()
        web = procfile_web()
        command = [binary, *web[1:], "--bind", f"127.0.0.1:{port}", "--workers", "2"]
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("gunicorn did not start")
                time.sleep(0.2)
            downloaded = folder / "download.jsonl"
            started = time.monotonic()
            cut = ""
            try:
                url = f"http://127.0.0.1:{port}/export"
                with requests.get(url, stream=True, timeout=600) as response, downloaded.open("wb") as out:
                    for chunk in response.iter_content(1 << 20):
                        out.write(chunk)
            except requests.RequestException as exc:
                cut = f" (the connection broke: {type(exc).__name__})"
            seconds = time.monotonic() - started
            print(
                f"GET /export through gunicorn ({' '.join(web[1:])}): {seconds:.1f} s, "
                f"{downloaded.stat().st_size / 2**20:,.0f} MB{cut}; {checked(downloaded)}"
            )
        finally:
            server.terminate()
            log, _ = server.communicate(timeout=30)
            if "WORKER TIMEOUT" in log:
                print("gunicorn killed a worker for its timeout during the download")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "authorship-dev")
    parser.add_argument("--posts", type=int, default=200_000, help="posts in the imported file (0: skip)")
    parser.add_argument("--export-posts", type=int, default=1_000_000, help="posts exported (0: skip)")
    args = parser.parse_args()
    texts = texts_from(args.data)
    if args.posts:
        bench_import(texts, args.posts)
    if args.export_posts:
        bench_export(texts, args.export_posts)


if __name__ == "__main__":
    main()
