"""Load, faults and hostile clients: gunicorn (2 workers) on PostgreSQL, mixed traffic from 32 connections.

    pipenv run python bench/load.py --data ../shared/data/authorship-dev [--seconds 60] [--connections 32]
        [--fault-seconds 30] [--hostile-seconds 60] [--hammer-connections 4]
        [--worker-class gthread --threads 4]

Setup: a throwaway PostgreSQL server on loopback (as the tests start it), migrated with `flask db upgrade`,
four accounts of 200 original posts each imported with `flask import` from the dev data (the demo
accounts when the data is absent), and gunicorn with two workers as gunicorn.conf.py sets them (threaded,
4 threads and 4 connections each, unless --worker-class and --threads say otherwise; every gunicorn the
bench starts gets the same settings). Rate limits are
switched off for the load and fault runs: they measure the app, not its limiter.

Load run: each connection loops over a mix of requests (home page 30%, an account page 40%, POST
/api/predict for 2 to 4 of the accounts 30%) for --seconds. Prints requests/s, p50, p95 and p99 latency
per kind and overall, every answer that was not 2xx, and the CPU seconds spent by gunicorn, PostgreSQL,
the bench's own clients and everything else on the machine (other work there slows the figures).

Fault run (--fault-seconds, same traffic; 0 skips it): a gunicorn worker is killed with SIGKILL a few
seconds in, then PostgreSQL is restarted. Afterwards every account and post written before must still be
there and the app must answer again; prints what the clients saw during the faults.

Hostile phase (--hostile-seconds, 0 skips it): gunicorn is started again as a deployment runs it, with
rate limits on and counted in a throwaway Redis (tests/support/redisserver.py) that both workers share,
RATELIMIT_API set to its default of 120 per minute, TRUSTED_PROXIES 0 (its default: no proxy in front,
so X-Forwarded-For is not believed), and one `flask worker` process that runs the import jobs. After
10 s of ordinary traffic that is not counted (each worker fits each set of accounts once), the same mix
runs from all but two of --connections for --hostile-seconds, and meanwhile:

- an operator (made with `flask operator create`, signed in through /signin) sends POST /import with a
  CSV of made-up posts just under MAX_UPLOAD_MB, again every 8 s (or as soon as the last one is
  answered; /import allows 10 a minute), and every answer is recorded: 302 is a file accepted and
  queued, a 409 (an import of that account under way) or a 400 (the file refused) is an answer too,
  and what the import jobs made of the files is printed at the end;
- a client sends POST /api/predict back to back from --hammer-connections connections, each request
  with a different made-up X-Forwarded-For, and counts its 429s: with the header ignored, its one
  address spends the API limit and is refused from then on.

The limits stay as a deployment has them. Instead, each ordinary connection binds its socket to an
address of its own in 127.0.1.0/24 (loopback answers on all of 127.0.0.0/8), so each is counted apart
and sends far fewer than 120 API requests a minute; the hammering client (127.0.0.2) and the uploader
(127.0.0.3) have one address each. Prints the ordinary traffic's figures for the phase, the hostile
clients' counts and each upload, the ordinary latency with and without an upload under way and 10 s at a
time, the CPU seconds of each process group, and one line on the targets: ordinary p99 under 1 s and
no ordinary answer other than 2xx.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import html
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.pgserver import PostgresServer, free_port  # noqa: E402
from tests.support.redisserver import RedisServer  # noqa: E402
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
KINDS = ("home", "account page", "predict")

# The hostile phase
API_LIMIT = "120 per minute"  # RATELIMIT_API's default, set explicitly so a local .env cannot change it
OPERATOR, PASSWORD = "bench_operator", "load-bench-password"
UPLOAD_ACCOUNT = "bench_bulk"  # the account the large file is imported into
UPLOAD_EVERY = 8.0  # seconds between uploads at least: /import allows 10 per minute per address
HAMMER_ADDRESS, UPLOADER_ADDRESS = "127.0.0.2", "127.0.0.3"
WINDOW = 10.0  # seconds per line of the phase's timeline
WARM_UP = 10.0  # seconds of ordinary traffic, not counted, before the phase
OPENINGS = ["Today", "This morning", "Tonight", "Again", "Big news", "Reminder", "Quick update", "So proud"]
TOPICS = [
    "the city council",
    "our schools",
    "the new bus line",
    "the budget",
    "small businesses",
    "the farmers market",
    "public housing",
    "the bridge repair",
    "clean water",
    "the library",
]
CLOSINGS = [
    "Let's get it done.",
    "More soon.",
    "Join us!",
    "Thank you all.",
    "Read the plan.",
    "Share this.",
    "We can do better.",
    "Who's with me?",
    "Details below.",
    "Not on my watch.",
]
TAGS = ["", "", "", " #2020", " #community", " #vote", " #jobs", " #climate"]


def flask(env: dict, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
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
    def __init__(self, env: dict, workers: int = 2, worker_class: str = "sync", threads: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = str(Path(sys.executable).parent / "gunicorn")
        args = [binary, "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}", "--log-level", "error"]
        args += ["--worker-class", worker_class, "--threads", str(threads)]
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
        return children(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in out.split()]


class SourceAddress(HTTPAdapter):
    """Connections that leave from one local address (any of 127.0.0.0/8 reaches a loopback server)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address: str | None) -> requests.Session:
    session = requests.Session()
    if address is not None:
        session.mount("http://", SourceAddress(address))
    return session


class Traffic:
    """Connections looping over the request mix until stopped; every answer is recorded.

    With ``sources``, connection i sends from the address ``sources[i]``.
    """

    def __init__(
        self, url: str, names: list[str], connections: int, seed: int = 0, sources: list[str] | None = None
    ) -> None:
        self.url, self.names = url, names
        self.records: list[tuple[float, str, int, float]] = []  # (start, kind, status, seconds)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        addresses = sources or [None] * connections
        self._threads = [
            threading.Thread(target=self._run, args=(seed + i, addresses[i]), daemon=True) for i in range(connections)
        ]

    def _run(self, seed: int, address: str | None) -> None:
        rng = random.Random(seed)
        session = session_from(address)
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


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 in milliseconds."""
    p50, p95, p99 = np.percentile(np.array(seconds) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def report(records: list, elapsed: float, title: str) -> None:
    print(f"\n## {title}")
    by_kind = defaultdict(list)
    for _, kind, status, seconds in records:
        by_kind[kind].append((status, seconds))
    print(f"  {'kind':<14} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for kind in (*KINDS, "all"):
        rows = [r for rows in by_kind.values() for r in rows] if kind == "all" else by_kind.get(kind, [])
        if not rows:
            continue
        p50, p95, p99 = percentiles([s for _, s in rows])
        bad = sum(1 for status, _ in rows if not 200 <= status < 300)
        print(f"  {kind:<14} {len(rows):>9} {len(rows) / elapsed:>7.1f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {bad:>8}")
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


# ---------------------------------------------------------------------------------------------------
# The hostile phase


def write_posts_csv(path: Path, limit_bytes: int, seed: int = 7) -> int:
    """Made-up original posts as an import CSV of at most ``limit_bytes``; returns how many posts."""
    rng = random.Random(seed)
    moment = datetime(2016, 1, 1, 8, 0, tzinfo=UTC)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "created_at", "text", "like_count", "retweet_count", "reply_count"])
    size, posts, chunks = len(buffer.getvalue().encode()), 0, [buffer.getvalue()]
    while True:
        buffer.seek(0)
        buffer.truncate()
        moment += timedelta(minutes=rng.randint(5, 180))
        text = (
            f"{rng.choice(OPENINGS)}: {rng.choice(TOPICS)} and {rng.choice(TOPICS)}. "
            f"{rng.choice(TEXTS)} {rng.choice(CLOSINGS)}{rng.choice(TAGS)}"
        )
        likes = int(rng.lognormvariate(3, 1.5))
        writer.writerow(
            [
                900_000_000_000_000_000 + posts * 1000 + rng.randint(0, 999),
                moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                text,
                likes,
                likes // rng.randint(3, 10),
                likes // rng.randint(5, 20),
            ]
        )
        row = buffer.getvalue()
        if size + len(row.encode()) > limit_bytes:
            break
        chunks.append(row)
        size += len(row.encode())
        posts += 1
    path.write_text("".join(chunks), encoding="utf-8")
    return posts


def csrf_token(page: str) -> str:
    for tag in re.findall(r"<input[^>]*>", page):
        if 'name="csrf_token"' in tag and (value := re.search(r'value="([^"]*)"', tag)):
            return html.unescape(value.group(1))
    raise RuntimeError("no csrf_token on the page")


def first_error(page: str) -> str:
    found = re.search(r'<p class="error"[^>]*>(.*?)</p>', page, re.S)
    return html.unescape(re.sub(r"\s+", " ", found.group(1))).strip()[:160] if found else ""


class Hostile:
    """The uploading operator and the hammering client, each from an address of its own."""

    def __init__(self, url: str, names: list[str], upload: Path, hammer_connections: int) -> None:
        self.url, self.names, self.upload = url, names, upload
        self.uploads: list[tuple[float, int, float, str]] = []  # (start offset, status, seconds, what)
        self.hammer: list[tuple[float, int, float]] = []  # (start offset, status, seconds)
        self.started = 0.0
        self._stop = threading.Event()
        self.hammer_threads = [
            threading.Thread(target=self._hammerer, args=(99 + i,), daemon=True) for i in range(hammer_connections)
        ]
        self._threads = [threading.Thread(target=self._uploader, daemon=True), *self.hammer_threads]

    def start(self, started: float) -> None:
        self.started = started
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop sending; an upload under way is waited for, so its answer is recorded."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=300)

    def _uploader(self) -> None:
        payload = self.upload.read_bytes()
        session = session_from(UPLOADER_ADDRESS)
        try:
            page = session.get(f"{self.url}/signin", timeout=30)
            fields = {"name": OPERATOR, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
            signed = session.post(f"{self.url}/signin", data=fields, allow_redirects=False, timeout=30)
            if signed.status_code != 302:
                self.uploads.append((0.0, signed.status_code, 0.0, f"sign-in refused: {first_error(signed.text)}"))
                return
            token = csrf_token(session.get(f"{self.url}/", timeout=30).text)
        except (requests.RequestException, RuntimeError) as exc:
            self.uploads.append((0.0, 0, 0.0, f"sign-in failed: {exc}"))
            return
        while not self._stop.is_set():
            began = time.perf_counter()
            try:
                answer = session.post(
                    f"{self.url}/import",
                    data={"username": UPLOAD_ACCOUNT, "csrf_token": token},
                    files={"files": (self.upload.name, payload, "text/csv")},
                    allow_redirects=False,
                    timeout=300,
                )
                status = answer.status_code
                what = answer.headers.get("Location", "") if 300 <= status < 400 else first_error(answer.text)
            except requests.RequestException as exc:
                status, what = 0, type(exc).__name__
            self.uploads.append((began - self.started, status, time.perf_counter() - began, what))
            self._stop.wait(max(0.0, UPLOAD_EVERY - (time.perf_counter() - began)))
        session.close()

    def _hammerer(self, seed: int) -> None:
        rng = random.Random(seed)
        session = session_from(HAMMER_ADDRESS)
        while not self._stop.is_set():
            forwarded = ".".join(str(rng.randint(1, 254)) for _ in range(4))
            body = {"usernames": rng.sample(self.names, rng.randint(2, 4)), "text": rng.choice(TEXTS)}
            began = time.perf_counter()
            try:
                status = session.post(
                    f"{self.url}/api/predict", json=body, headers={"X-Forwarded-For": forwarded}, timeout=30
                ).status_code
            except requests.RequestException:
                status = 0
            self.hammer.append((began - self.started, status, time.perf_counter() - began))
        session.close()


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its descendants, live or already reaped by their parents."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return own + sum(cpu_seconds(child) for child in children(pid))


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since it started (all cores, from /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by process groups, by this process (the clients) and by everything else."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        spent = {role: cpu_seconds(pid) for role, pid in self.groups.items()}
        spent["bench clients"] = sum(os.times()[:2])
        spent["everything else"] = machine_busy()
        return spent

    def line(self, elapsed: float) -> str:
        end = self._read()
        spent = {role: end[role] - self.start[role] for role in end}
        spent["everything else"] -= sum(value for role, value in spent.items() if role != "everything else")
        cores = os.cpu_count() or 1
        parts = ", ".join(f"{role} {value:.0f}" for role, value in spent.items())
        return f"  CPU seconds ({cores} cores give {cores * elapsed:.0f}): {parts}"


def postmaster(server: PostgresServer) -> int:
    return int((server.data / "postmaster.pid").read_text().split()[0])


def hostile_phase(args, env: dict, database: str, server: PostgresServer, names: list[str], tmp: Path) -> None:
    limit_mb = int(env.get("MAX_UPLOAD_MB") or 32)
    upload = tmp / "bench-bulk-posts.csv"
    posts = write_posts_csv(upload, limit_mb * 2**20 - 8 * 1024)  # room for the form's other fields
    redis = RedisServer().start()
    env = {**env, "REDIS_URL": redis.url, "RATELIMIT_ENABLED": "1", "RATELIMIT_API": API_LIMIT, "TRUSTED_PROXIES": "0"}
    for name in ("RATELIMIT_ADD", "RATELIMIT_COMPARE", "RATELIMIT_SIGN_IN", "SIGN_IN_REQUIRED"):
        env.pop(name, None)
    worker = gunicorn = None
    worker_log = open(tmp / "worker.log", "w")  # noqa: SIM115  (closed with the worker)
    try:
        flask(env, "operator", "create", OPERATOR, "--password-stdin", stdin=PASSWORD + "\n")
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "worker"],
            cwd=ROOT,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        gunicorn = Gunicorn(env, worker_class=args.worker_class, threads=args.threads)
        ordinary = max(1, args.connections - 2)
        sources = [f"127.0.1.{i + 1}" for i in range(ordinary)]
        # A fresh gunicorn fits each set of accounts once per worker: that first traffic is not what is measured.
        Traffic(gunicorn.url, names, ordinary, seed=1500, sources=sources).run(WARM_UP)
        print(
            f"\nHostile phase: limits on (Redis), RATELIMIT_API {API_LIMIT}, TRUSTED_PROXIES 0, one `flask worker`; "
            f"upload {upload.stat().st_size / 2**20:.2f} MiB, {posts:,} posts (MAX_UPLOAD_MB {limit_mb})"
        )
        cpu = CpuMeter(
            {
                "gunicorn": gunicorn.process.pid,
                "import worker": worker.pid,
                "PostgreSQL": postmaster(server),
                "Redis": redis.process.pid,
            }
        )

        traffic = Traffic(gunicorn.url, names, ordinary, seed=2000, sources=sources)
        hostile = Hostile(gunicorn.url, names, upload, args.hammer_connections)
        elapsed = traffic.run(args.hostile_seconds, during=hostile.start)
        cpu_line = cpu.line(elapsed)
        hostile.stop()
        report(traffic.records, elapsed, f"Hostile phase, ordinary traffic: {ordinary} connections for {elapsed:.0f} s")
        hostile_report(traffic, hostile, elapsed)
        print(cpu_line)
        jobs_report(database)
        if worker.poll() is not None:
            worker_log.flush()
            tail = (tmp / "worker.log").read_text(errors="replace")[-2000:]
            print(f"  `flask worker` exited with {worker.returncode} during the phase:\n{tail}")
        targets(traffic.records)
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        if worker is not None:
            stop_group(worker)
        worker_log.close()
        redis.stop()


def hostile_report(traffic: Traffic, hostile: Hostile, elapsed: float) -> None:
    hammer = sorted(hostile.hammer)
    refused = [r for r in hammer if r[1] == 429]
    others = Counter(status for _, status, _ in hammer if status != 429)
    first = f", the first after {hammer.index(refused[0])} requests at {refused[0][0]:.1f} s" if refused else ""
    p50, _, p99 = percentiles([s for *_, s in hammer]) if hammer else (0.0, 0.0, 0.0)
    print(
        f"  hammering client ({len(hostile.hammer_threads)} connections from one address, a new X-Forwarded-For "
        f"each time): {len(hammer)} requests "
        f"({len(hammer) / elapsed:.1f}/s), {len(refused)} answered 429{first}; others by status "
        f"{dict(sorted(others.items()))}; p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    print(f"  uploads of the large file ({len(hostile.uploads)}):")
    for offset, status, seconds, what in hostile.uploads:
        print(f"    at {offset:5.1f} s: {status} in {seconds:6.2f} s  {what}")
    start = hostile.started
    spans = [(offset, offset + seconds) for offset, _, seconds, _ in hostile.uploads]
    overlapping = [any(a < r[0] - start + r[3] and r[0] - start < b for a, b in spans) for r in traffic.records]
    for during, label in ((True, "overlapping an upload"), (False, "with no upload under way")):
        times = [r[3] for r, o in zip(traffic.records, overlapping, strict=True) if o == during]
        if times:
            p50, p95, p99 = percentiles(times)
            print(f"  ordinary requests {label}: {len(times)}, p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")
    print(f"  ordinary traffic {WINDOW:.0f} s at a time, with the uploads under way in each window:")
    for window in range(int(np.ceil(elapsed / WINDOW))):
        low, high = window * WINDOW, (window + 1) * WINDOW
        rows = [r for r in traffic.records if low <= r[0] - start < high]
        if not rows:
            continue
        times = [r[3] for r in rows]
        bad = sum(1 for r in rows if not 200 <= r[2] < 300)
        busy = [f"{u[1]}" for u in hostile.uploads if u[0] < high and u[0] + u[2] > low]
        print(
            f"    {low:3.0f}-{high:3.0f} s: {len(rows):5} requests, p99 {percentiles(times)[2]:7.1f} ms, "
            f"max {max(times) * 1000:7.1f} ms, non-2xx {bad}; uploads {', '.join(busy) or '-'}"
        )


def jobs_report(database: str) -> None:
    engine = sa.create_engine(normalise_database_url(database))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, state, done, total, message, error FROM jobs WHERE username = :u ORDER BY id"),
                {"u": UPLOAD_ACCOUNT},
            ).all()
            stored = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM tweets JOIN users ON users.id = tweets.user_id WHERE users.username = :u"
                ),
                {"u": UPLOAD_ACCOUNT},
            )
    finally:
        engine.dispose()
    print(f"  import jobs of @{UPLOAD_ACCOUNT} when the phase ended: {len(rows)}; posts stored {stored:,}")
    for job_id, state, done, total, message, error in rows:
        print(f"    job {job_id}: {state} {done:,}/{total:,} {message[:160]} {(error or '')[:160]}".rstrip())


def targets(records: list) -> None:
    p99 = percentiles([r[3] for r in records])[2] if records else float("nan")
    bad = sum(1 for r in records if not 200 <= r[2] < 300)
    met = p99 < 1000 and bad == 0
    print(
        f"  targets for ordinary traffic: p99 {p99:.0f} ms (under 1000: {'met' if p99 < 1000 else 'MISSED'}), "
        f"{bad} non-2xx (none: {'met' if bad == 0 else 'MISSED'}) -> {'all met' if met else 'MISSED'}"
    )


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process started in a session of its own, with whatever it forked (an RQ work horse)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # a work horse left behind by its parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "authorship-dev")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--fault-seconds", type=float, default=30)
    parser.add_argument("--hostile-seconds", type=float, default=60, help="0 skips the hostile phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--hammer-connections", type=int, default=4, help="connections of the client that hammers /api/predict"
    )
    parser.add_argument(
        "--worker-class", default="gthread", help="gunicorn's --worker-class (gunicorn.conf.py's: gthread)"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn's --threads per worker (gunicorn.conf.py's: 4)"
    )
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
            gunicorn_kind = f"{args.worker_class}" + (f", {args.threads} threads each" if args.threads > 1 else "")
            print(
                f"Stored: {before[0]} accounts ({', '.join(names)}), {before[1]} posts; "
                f"gunicorn with 2 workers ({gunicorn_kind})"
            )
            gunicorn = Gunicorn(env, worker_class=args.worker_class, threads=args.threads)
            for subset_size in (2, 3, 4):  # warm each worker's model cache a little, as traffic would
                requests.post(f"{gunicorn.url}/api/predict", json={"usernames": names[:subset_size], "text": TEXTS[0]})

            traffic = Traffic(gunicorn.url, names, args.connections)
            cpu = CpuMeter({"gunicorn": gunicorn.process.pid, "PostgreSQL": postmaster(server)})
            elapsed = traffic.run(args.seconds)
            cpu_line = cpu.line(elapsed)
            report(traffic.records, elapsed, f"Load: {args.connections} connections for {elapsed:.0f} s")
            print(cpu_line)

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

            if args.fault_seconds > 0:
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
                answer = requests.post(
                    f"{gunicorn.url}/api/predict", json={"usernames": names, "text": TEXTS[1]}, timeout=30
                )
                print(
                    f"  data before {before}, after {after} (accounts, posts, likes): "
                    f"{'unchanged' if after == before else 'CHANGED'}; /healthz {health.status_code}, "
                    f"predict {answer.status_code}; gunicorn workers now {len(gunicorn.workers())}"
                )
            gunicorn.stop()
            gunicorn = None
            if args.hostile_seconds > 0:
                hostile_phase(args, env, database, server, names, Path(tmp))
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        server.stop()


if __name__ == "__main__":
    main()
