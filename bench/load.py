"""Load and faults: gunicorn (2 workers) on PostgreSQL, mixed traffic from 32 connections, then a fault run.

    pipenv run python bench/load.py --data ../shared/data/authorship-dev [--seconds 60] [--connections 32]

Setup: a throwaway PostgreSQL server on loopback (as the tests start it), migrated with `flask db upgrade`,
four accounts of 200 original posts each imported with `flask import` from the dev data (the demo
accounts when the data is absent), and gunicorn with two sync workers. Rate limits are switched off:
this measures the app, not its limiter.

Load run: each connection loops over a mix of requests (home page 30%, an account page 40%, POST
/api/predict for 2 to 4 of the accounts 30%) for --seconds. Prints requests/s, p50 and p99 latency per
kind and overall, and every answer that was not 2xx.

Fault run (--fault-seconds, same traffic): a gunicorn worker is killed with SIGKILL a few seconds in,
then PostgreSQL is restarted. Afterwards every account and post written before must still be there and
the app must answer again; prints what the clients saw during the faults.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pgserver import PostgresServer, _free_port  # noqa: E402
from twitapp.config import normalise_database_url  # noqa: E402

PER_ACCOUNT = 200
TEXTS = [
    "We need an economy that works for working families, not just the wealthy few.",
    "Climate change is the challenge of our time and we have a plan to meet it.",
    "Thank you, Iowa! What a crowd tonight. Let's keep going.",
    "Health care is a right, not a privilege. Full stop.",
    "Proud to stand with teachers fighting for the pay they deserve.",
    "Tune in tonight at 9 ET: I'll be on the debate stage.",
]


def flask(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        sys.exit(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def load_accounts(env: dict, data: Path, workdir: Path) -> list[str]:
    """Import the newest PER_ACCOUNT original posts of four dev accounts; the demo accounts otherwise."""
    if not data.is_dir():
        print(f"(no data at {data}: using the demo accounts)")
        flask(env, "seed-demo")
        return ["harborbaker", "transit_tom", "codecrafter_ana", "greenleaf_gardens"]
    names = []
    for path in sorted(data.glob("*.jsonl"))[:4]:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        originals = [r for r in rows if str(r.get("conversation_id", r["id"])) == str(r["id"])]
        originals = [r for r in originals if not r["text"].startswith("RT @")][-PER_ACCOUNT:]
        subset = workdir / path.name
        subset.write_text("".join(json.dumps(r) + "\n" for r in originals), encoding="utf-8")
        flask(env, "import", str(subset), "--username", originals[0]["username"])
        names.append(originals[0]["username"])
    return names


class Gunicorn:
    def __init__(self, env: dict, workers: int = 2) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = str(Path(sys.executable).parent / "gunicorn")
        args = [binary, "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}", "--log-level", "error"]
        self.process = subprocess.Popen([*args, "twitapp:create_app()"], cwd=ROOT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        sys.exit("gunicorn did not start")

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Traffic:
    """Connections looping over the request mix until stopped; every answer is recorded."""

    def __init__(self, url: str, names: list[str], connections: int, seed: int = 0) -> None:
        self.url, self.names = url, names
        self.records: list[tuple[float, str, int, float]] = []  # (start, kind, status, seconds)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(seed + i,), daemon=True) for i in range(connections)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        while not self._stop.is_set():
            roll = rng.random()
            if roll < 0.3:
                kind, call = "home", lambda: session.get(f"{self.url}/", timeout=30)
            elif roll < 0.7:
                name, page = rng.choice(self.names), rng.randint(1, 4)
                path = f"{self.url}/user/{name}?page={page}"
                kind, call = "account page", lambda path=path: session.get(path, timeout=30)
            else:
                chosen = rng.sample(self.names, rng.randint(2, 4))
                body = {"usernames": chosen, "text": rng.choice(TEXTS)}
                kind, call = "predict", lambda body=body: session.post(f"{self.url}/api/predict", json=body, timeout=30)
            started = time.perf_counter()
            try:
                status = call().status_code
            except requests.RequestException:
                status = 0  # no answer at all
            with self._lock:
                self.records.append((started, kind, status, time.perf_counter() - started))
        session.close()

    def run(self, seconds: float, during=None) -> float:
        started = time.perf_counter()
        for thread in self._threads:
            thread.start()
        if during is not None:
            during(started)
        time.sleep(max(0.0, seconds - (time.perf_counter() - started)))
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return time.perf_counter() - started


def report(records: list, elapsed: float, title: str) -> None:
    print(f"\n## {title}")
    by_kind = defaultdict(list)
    for _, kind, status, seconds in records:
        by_kind[kind].append((status, seconds))
    print(f"  {'kind':<14} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for kind in ("home", "account page", "predict", "all"):
        rows = [r for rows in by_kind.values() for r in rows] if kind == "all" else by_kind.get(kind, [])
        if not rows:
            continue
        times = np.array([s for _, s in rows]) * 1000
        bad = sum(1 for status, _ in rows if not 200 <= status < 300)
        print(
            f"  {kind:<14} {len(rows):>9} {len(rows) / elapsed:>7.1f} {np.percentile(times, 50):>8.1f} "
            f"{np.percentile(times, 99):>8.1f} {bad:>8}"
        )
    statuses = Counter(status for _, _, status, _ in records if not 200 <= status < 300)
    if statuses:
        print("  non-2xx answers by status (0 = no answer):", dict(sorted(statuses.items())))


def counts(database_url: str) -> tuple[int, int, int]:
    engine = sa.create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            users = connection.scalar(sa.text("SELECT count(*) FROM users"))
            posts = connection.scalar(sa.text("SELECT count(*) FROM tweets"))
            likes = connection.scalar(sa.text("SELECT coalesce(sum(like_count), 0) FROM tweets"))
            return users, posts, likes
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "authorship-dev")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--fault-seconds", type=float, default=30)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    server = PostgresServer().start()
    gunicorn = None
    try:
        database = server.url
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "DATABASE_URL": database,
                "SECRET_KEY": "load-bench",
                "FLASK_APP": "twitapp",
                "RATELIMIT_ENABLED": "0",
                "HTTPS": "0",
            }
            for name in ("REDIS_URL", "X_BEARER_TOKEN"):
                env.pop(name, None)
            flask(env, "db", "upgrade")
            names = load_accounts(env, args.data, Path(tmp))
        before = counts(database)
        print(f"Stored: {before[0]} accounts ({', '.join(names)}), {before[1]} posts; gunicorn with 2 workers")
        gunicorn = Gunicorn(env)
        for subset_size in (2, 3, 4):  # warm each worker's model cache a little, as traffic would
            requests.post(f"{gunicorn.url}/api/predict", json={"usernames": names[:subset_size], "text": TEXTS[0]})

        traffic = Traffic(gunicorn.url, names, args.connections)
        elapsed = traffic.run(args.seconds)
        report(traffic.records, elapsed, f"Load: {args.connections} connections for {elapsed:.0f} s")

        events: list[str] = []

        def faults(started: float) -> None:
            time.sleep(5)
            victim = gunicorn.workers()[0]
            os.kill(victim, signal.SIGKILL)
            events.append(f"{time.perf_counter() - started:5.1f} s: killed gunicorn worker {victim}")
            time.sleep(5)
            events.append(f"{time.perf_counter() - started:5.1f} s: restarting PostgreSQL")
            server.restart()
            events.append(f"{time.perf_counter() - started:5.1f} s: PostgreSQL is back")

        traffic = Traffic(gunicorn.url, names, args.connections, seed=1000)
        elapsed = traffic.run(args.fault_seconds, during=faults)
        report(traffic.records, elapsed, f"Fault run: {args.connections} connections for {elapsed:.0f} s")
        for event in events:
            print(f"  {event}")
        settle = min(started for started, *_ in traffic.records) + 15
        late = [r for r in traffic.records if r[0] > settle]
        late_bad = sum(1 for r in late if not 200 <= r[2] < 300)
        print(f"  from 15 s on (after both faults): {len(late)} requests, {late_bad} not 2xx")
        after = counts(database)
        health = requests.get(f"{gunicorn.url}/healthz", timeout=10)
        answer = requests.post(f"{gunicorn.url}/api/predict", json={"usernames": names, "text": TEXTS[1]}, timeout=30)
        print(
            f"  data before {before}, after {after} (accounts, posts, likes): "
            f"{'unchanged' if after == before else 'CHANGED'}; /healthz {health.status_code}, "
            f"predict {answer.status_code}; gunicorn workers now {len(gunicorn.workers())}"
        )
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        server.stop()


if __name__ == "__main__":
    main()
