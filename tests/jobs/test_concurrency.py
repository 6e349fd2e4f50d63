"""Many people adding the same account at once, against gunicorn (two worker processes) and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.support.data import fake_posts
from twitapp.config import normalise_database_url

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fresh_database(postgres_url):
    """A new, migrated database on the test server, dropped afterwards."""
    name = f"concurrency_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalise_database_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "concurrency-test", "FLASK_APP": "twitapp"}
    migrated = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr
    operator = subprocess.run(
        [sys.executable, "-m", "flask", "operator", "create", "ops", "--password-stdin"],
        cwd=ROOT,
        env=env,
        input="a long enough password\n",
        capture_output=True,
        text=True,
    )
    assert operator.returncode == 0, operator.stderr
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def gunicorn(fresh_database, fake_x):
    """The app under gunicorn with two worker processes, as on Heroku, pointed at the fake X API."""
    binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.fail("gunicorn is not installed in this environment (it is in the Pipfile)")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "SECRET_KEY": "concurrency-test",
        "X_BEARER_TOKEN": fake_x.bearer_token,
        "X_API_URL": fake_x.url,
        "RATELIMIT_ENABLED": "0",
        "HTTPS": "0",
    }
    env.pop("REDIS_URL", None)
    args = [binary, "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "twitapp:create_app()"]
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("gunicorn did not start")
            time.sleep(0.2)
        yield url, fresh_database
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        assert "Traceback" not in output, output


def test_ten_simultaneous_adds_of_one_account_store_it_once(gunicorn, fake_x):
    url, database = gunicorn
    fake_x.add_user(4242, "harbournews", "Harbour News", fake_posts(9000, 300))
    fake_x.delay = 0.05  # slow enough that the adds overlap

    token = subprocess.run(
        [sys.executable, "-m", "flask", "operator", "token", "ops", "--label", "test"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database, "SECRET_KEY": "concurrency-test", "FLASK_APP": "twitapp"},
        capture_output=True,
        text=True,
    ).stdout.strip()
    operator = {"Authorization": f"Bearer {token}"}

    def add(_):
        return requests.post(f"{url}/api/users", json={"username": "harbournews"}, headers=operator, timeout=30)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(add, range(10)))
    assert [r.status_code for r in responses] == [202] * 10, [r.text for r in responses if r.status_code != 202]
    job_urls = {r.headers["Location"] for r in responses}
    deadline = time.monotonic() + 120
    finished: dict[str, dict] = {}
    while len(finished) < len(job_urls) and time.monotonic() < deadline:
        for job_url in job_urls - finished.keys():
            body = requests.get(f"{url}{job_url}", timeout=10).json()
            if body["finished"]:
                finished[job_url] = body
        time.sleep(0.2)
    assert len(finished) == len(job_urls), "jobs did not finish in time"
    assert all(job["state"] == "done" for job in finished.values()), list(finished.values())

    engine = sa.create_engine(normalise_database_url(database))
    with engine.connect() as connection:
        users = connection.execute(sa.text("SELECT platform_id, username FROM users")).all()
        posts, distinct = connection.execute(sa.text("SELECT count(*), count(DISTINCT post_id) FROM tweets")).one()
    engine.dispose()
    assert users == [("4242", "harbournews")]
    assert posts == distinct == 300
    page = requests.get(f"{url}/user/harbournews", timeout=10)
    assert page.status_code == 200 and "300 stored posts" in page.text
