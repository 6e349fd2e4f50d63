"""Jobs: progress a person can watch, nothing half-written when one dies, waits on X's rate limit, RQ."""

import io
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.support.data import count_rows, fake_posts, online, stored
from twitapp import jobs
from twitapp.extensions import db
from twitapp.ingest import jobs as ingest_jobs
from twitapp.models import Job, Tweet, Upload, User


class Killed(BaseException):
    """Stands for the worker being killed (SIGKILL, a dyno restart) in the middle of a job."""


def kill_when(prefix: str):
    """An echo that records every report and 'kills' the job at the first message starting with prefix."""
    seen: list[tuple[int, int, str]] = []

    def echo(done: int, total: int, message: str) -> None:
        seen.append((done, total, message))
        if prefix and message.startswith(prefix):
            raise Killed(message)

    return echo, seen


def job_rows(app) -> list[Job]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Job).order_by(Job.id)).all()
        db.session.expunge_all()
        return rows


def test_a_job_reports_fetching_then_reading_progress(app, fake_x):
    online(app, fake_x)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 250))
    echo, seen = kill_when("")
    with app.app_context():
        job = jobs.run_here("add", "quaynews", echo=echo)
        assert (job.state, job.done, job.total) == ("done", 250, 250)
        assert job.message == "Added @quaynews with 250 posts."
        assert job.result == {"username": "quaynews", "platform": "x", "added": 250, "total": 250, "created": True}
    fetched = [done for done, _, message in seen if message.startswith("Fetching")]
    assert fetched == [100, 200, 250]  # one report per page of X's timeline
    read = [(done, total) for done, total, message in seen if message.startswith("Reading")]
    assert read[0] == (0, 250) and read[-1] == (250, 250)
    assert [d for d, _ in read] == sorted(d for d, _ in read)


def test_a_job_killed_half_way_leaves_nothing_and_a_rerun_resumes(app, fake_x):
    online(app, fake_x)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 250))
    echo, _ = kill_when("Reading")
    with app.app_context(), pytest.raises(Killed):
        jobs.run_here("add", "quaynews", echo=echo)
    assert count_rows(app, User) == 0 and count_rows(app, Tweet) == 0
    (killed,) = job_rows(app)
    assert killed.state == "running"
    # Its process is gone: on this machine that is seen at once, from another one by its silence.
    killed.worker = ended_worker()
    assert jobs.is_stale(killed)
    killed.worker = "another-machine:1:2:3"
    assert not jobs.is_stale(killed)
    assert jobs.is_stale(killed, killed.heartbeat_at + jobs.STALE_RUNNING + timedelta(seconds=1))

    with app.app_context():
        assert jobs.run_here("add", "quaynews").state == "done"
    assert count_rows(app, Tweet) == 250

    fake_x.add_posts("quaynews", fake_posts(6000, 5, prefix="fresh"))
    echo, _ = kill_when("Reading")
    with app.app_context(), pytest.raises(Killed):
        jobs.run_here("add", "quaynews", echo=echo)
    assert count_rows(app, Tweet) == 250
    fake_x.requests.clear()
    with app.app_context():
        job = jobs.run_here("add", "quaynews")
    assert job.message == "Updated @quaynews: 5 new posts, 255 in all."
    timeline = [query for path, query in fake_x.requests if path.endswith("/tweets")]
    assert timeline[0]["since_id"] == "5249"  # resumed from the newest stored post, not from scratch


def test_a_stale_job_is_shown_as_stopped_and_can_be_started_again(app, client, fake_x):
    online(app, fake_x)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 20))
    with app.app_context():
        dead = jobs.create("add", "quaynews", worker="another-machine:1:2:3")  # judged by its silence
        dead.state, dead.heartbeat_at = "running", jobs.now() - jobs.STALE_RUNNING - timedelta(minutes=1)
        db.session.commit()
        dead_id = dead.id
    body = client.get(f"/api/jobs/{dead_id}").get_json()
    assert body["state"] == "failed" and body["finished"]
    assert "stopped before it finished" in body["error"]
    page = client.get("/user/quaynews").get_data(as_text=True)
    assert "stopped before it finished" in page
    client.post("/users", data={"username": "quaynews"})  # a new job, not the dead one
    jobs.thread_worker.join()
    assert [j.state for j in job_rows(app)] == ["failed", "done"]  # the first request swept it away
    assert count_rows(app, Tweet) == 20


def test_asking_twice_while_a_job_runs_gives_the_same_job(app, client, fake_x):
    online(app, fake_x)
    with app.app_context():
        waiting = jobs.create("add", "QuayNews")  # queued, as if a worker were busy elsewhere
        waiting_id = waiting.id
    response = client.post("/api/users", json={"username": "quaynews"})
    assert response.status_code == 202 and response.get_json()["id"] == waiting_id
    assert len(job_rows(app)) == 1


def test_the_api_starts_a_job_and_reports_its_progress(app, client, fake_x):
    online(app, fake_x)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 120))
    response = client.post("/api/users", json={"username": "@quaynews"})
    assert response.status_code == 202
    url = response.headers["Location"]
    assert response.get_json()["url"] == url and response.get_json()["state"] in (*jobs.ACTIVE, "done")
    jobs.thread_worker.join()
    body = client.get(url).get_json()
    assert body["state"] == "done" and body["finished"] and body["done"] == body["total"] == 120
    assert body["result"]["added"] == 120 and body["message"] == "Added @quaynews with 120 posts."
    assert client.get("/api/jobs/999999").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"username": "not a name!"}, 400, "a Mastodon address (@ana@mastodon.social)"),
        ({"name": "quaynews"}, 400, '{"username": "an X username, a Bluesky handle or a Mastodon address"}'),
        ("quaynews", 400, '{"username": "an X username, a Bluesky handle or a Mastodon address"}'),
    ],
)
def test_the_api_refuses_bad_requests_without_starting_a_job(app, client, fake_x, body, status, message):
    online(app, fake_x)
    response = client.post("/api/users", json=body)
    assert response.status_code == status and message in response.get_json()["message"]
    assert job_rows(app) == [] and fake_x.requests == []


def test_without_a_token_the_api_says_so(client):
    response = client.post("/api/users", json={"username": "quaynews"})
    assert response.status_code == 503 and "X_BEARER_TOKEN" in response.get_json()["message"]


def test_a_rate_limited_job_waits_for_the_reset_and_says_so(app, fake_x):
    online(app, fake_x)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 150))
    reset = int(time.time()) + 2
    fake_x.fail_next(429, headers={"x-rate-limit-reset": str(reset)})
    echo, seen = kill_when("")
    with app.app_context():
        job = jobs.run_here("add", "quaynews", echo=echo)
    assert job.state == "done" and job.result["added"] == 150
    waits = [message for _, _, message in seen if "rate limit" in message]
    assert waits and "waiting until" in waits[0] and "UTC" in waits[0]
    assert time.time() >= reset - 1


def test_a_rate_limit_that_does_not_lift_fails_the_job_with_the_wait(app, fake_x, monkeypatch):
    online(app, fake_x)
    monkeypatch.setattr(ingest_jobs, "RATE_LIMIT_WAITS", 0)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 10))
    fake_x.fail_next(429, headers={"x-rate-limit-reset": str(int(time.time()) + 600)})
    with app.app_context():
        job = jobs.run_here("add", "quaynews")
    assert job.state == "failed" and "rate limit" in job.error.lower()
    assert count_rows(app, User) == 0


def test_update_all_goes_on_past_an_account_that_fails(app, fake_x):
    online(app, fake_x)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 10))
    fake_x.add_user(78, "pierdaily", "Pier Daily", fake_posts(6000, 10))
    with app.app_context():
        jobs.run_here("add", "quaynews")
        jobs.run_here("add", "pierdaily")
    fake_x.add_posts("quaynews", fake_posts(5100, 2, prefix="fresh"))
    fake_x.fail_next(401)  # the first account's lookup is refused
    with app.app_context():
        job = jobs.run_here("update-all")
    assert job.state == "done"
    assert job.message == "Updated 1 of 2 accounts: 2 new posts. 1 could not be: @pierdaily."
    assert "bearer token" in job.result["failed"]["pierdaily"]


def test_jobs_run_on_rq_workers_when_redis_is_set(app, client, fake_x, redis_url, runner):
    """Through a real redis-server and the `flask worker` command, as the Procfile runs it."""
    online(app, fake_x)
    app.config["REDIS_URL"] = redis_url
    jobs.rq_queue(redis_url).empty()
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 120))
    response = client.post("/users", data={"username": "quaynews"})
    assert response.status_code == 302
    url = client.post("/api/users", json={"username": "quaynews"}).headers["Location"]  # the same job
    assert client.get(url).get_json()["state"] == "queued"
    assert jobs.thread_worker.queue.unfinished_tasks == 0  # nothing went to the in-process thread
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    body = client.get(url).get_json()
    assert body["state"] == "done", body
    assert "Added @quaynews with 120 posts." in client.get("/user/quaynews").get_data(as_text=True)
    assert count_rows(app, Tweet) == 120 and len(job_rows(app)) == 1


def test_a_job_queued_by_the_code_before_a_deploy_still_runs(app, fake_x, redis_url, runner):
    """RQ keeps the dotted name of the function a job calls; jobs queued before the code moved name
    ``twitapp.jobs.run_in_worker``, and a worker started after the deploy must still find it."""
    online(app, fake_x)
    app.config["REDIS_URL"] = redis_url
    queue = jobs.rq_queue(redis_url)
    queue.empty()
    fake_x.add_user(78, "tidewatch", "Tide Watch", fake_posts(6000, 30))
    with app.app_context():
        job = jobs.create("add", "tidewatch", "rq")
        queue.enqueue("twitapp.jobs.run_in_worker", job.id, job_id=jobs.rq_id(job.id), result_ttl=0)
        job_id = job.id
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Job, job_id).state == "done"
    assert count_rows(app, Tweet) == 30


def test_the_worker_command_needs_redis(runner):
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code != 0 and "REDIS_URL is not set" in result.output


# -- jobs whose process ended --------------------------------------------------------------------------------


def ended_pid() -> int:
    """The pid of a process that has ended (run and waited for)."""
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def ended_worker() -> str:
    """What a job held by an ended process of this machine records as its worker."""
    return jobs.worker_id().rsplit(":", 2)[0] + f":{ended_pid()}:1"


CSV = "id,created_at,text\n1,2024-05-01T09:00:00Z,kettle on\n2,2024-05-02T09:00:00Z,rain again\n"


def test_a_queued_job_whose_process_died_does_not_block_the_account(app, client):
    """A web process queued an import, then died before running it: the account is free again at once,
    not after half an hour, and the next request's sweep fails the job and drops its file."""

    with app.app_context():
        (upload,) = stored(("posts.csv", CSV.encode()))
        dead = jobs.create("import-file", "kettle_cam", worker=ended_worker(), uploads=[upload])
        assert jobs.under_way_for("kettle_cam") is None and jobs.is_stale(dead)
        dead_id = dead.id
    response = client.post(
        "/import",
        data={"username": "kettle_cam", "files": [(io.BytesIO(CSV.encode()), "posts.csv")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302  # not "being imported already"
    jobs.thread_worker.join()
    with app.app_context():
        swept = db.session.get(Job, dead_id)
        assert swept.state == "failed" and "the process that held it ended" in swept.error
    assert count_rows(app, Tweet) == 2 and count_rows(app, Upload) == 0


def test_a_job_held_on_another_machine_is_judged_by_its_heartbeat(app):
    with app.app_context():
        elsewhere = jobs.create("import-file", "a", worker="other-host:4242:99")
        assert not jobs.is_stale(elsewhere)
        elsewhere.heartbeat_at = jobs.now() - jobs.runner.ORPHANED - timedelta(seconds=5)
        assert jobs.is_stale(elsewhere)
        db.session.commit()
        mine = jobs.create("import-file", "b")
        mine.heartbeat_at = jobs.now() - jobs.runner.ORPHANED - timedelta(seconds=5)
        db.session.commit()
        jobs.beat()  # this process still holds its own: the beat moves their heartbeat
        db.session.expire_all()
        assert not jobs.is_stale(db.session.get(Job, mine.id))
        assert jobs.is_stale(db.session.get(Job, elsewhere.id))


def test_the_sweep_fails_abandoned_jobs_and_drops_what_nothing_will_read(app):
    from twitapp.ingest import store as ingest
    from twitapp.models import StagedPost

    with app.app_context():
        kept, stray, used = stored(("a.csv", b"a"), ("b.csv", b"b"), ("c.csv", b"c"))
        db.session.execute(
            sa.update(Upload).where(Upload.id == stray).values(created_at=jobs.now() - timedelta(hours=1))
        )
        dead = jobs.create("import-file", "x", worker="other-host:1:1", uploads=[used])
        dead.heartbeat_at = jobs.now() - timedelta(hours=1)
        live = jobs.create("import-file", "y", uploads=[kept])
        db.session.commit()
        staged = {"text": "t", "created_at": jobs.now(), "known": False, "like_count": 0}
        staged.update(retweet_count=0, reply_count=0, staged_at=jobs.now())
        db.session.execute(sa.insert(StagedPost), [{"batch": f"j{dead.id}-abc", "post_id": "1", **staged}])
        db.session.execute(sa.insert(StagedPost), [{"batch": f"j{live.id}-abc", "post_id": "2", **staged}])
        db.session.commit()
        assert jobs.sweep() == 1
        assert db.session.get(Job, dead.id).state == "failed" and db.session.get(Job, live.id).state == "queued"
        assert set(db.session.scalars(sa.select(Upload.id))) == {kept}  # the live job's file stays
        assert db.session.scalars(sa.select(StagedPost.post_id)).all() == ["2"]
        assert ingest.drop_staged(prefix=f"j{live.id}-") == 1


def test_with_redis_a_job_no_worker_takes_is_failed_with_how_to_start_one(app, redis_url):
    app.config["REDIS_URL"] = redis_url
    jobs.rq_queue(redis_url).empty()
    with app.test_request_context():
        waiting = jobs.submit("import-file", "z")  # queued in Redis, and no worker runs
        assert waiting.worker == "rq" and jobs.sweep() == 0  # a worker may yet come and take it
        waiting.created_at = jobs.now() - jobs.STALE_QUEUED - timedelta(seconds=5)
        db.session.commit()
        assert jobs.sweep() == 1
        assert "flask worker" in db.session.get(Job, waiting.id).error
        lost = jobs.submit("import-file", "y")
        jobs.rq_queue(redis_url).empty()  # Redis restarted without its data
        assert jobs.sweep() == 1 and "lost from the Redis queue" in db.session.get(Job, lost.id).error


def test_a_worker_starting_takes_the_jobs_that_waited_for_it(app, runner, fake_x, redis_url):
    """Jobs queued long before any worker ran are run by the first one, not failed by its start-up sweep."""
    online(app, fake_x)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 3))
    app.config["REDIS_URL"] = redis_url
    jobs.rq_queue(redis_url).empty()
    with app.test_request_context():
        waited = jobs.submit("add", "quaynews")
        waited.created_at = jobs.now() - jobs.STALE_QUEUED - timedelta(minutes=1)
        db.session.commit()
        waited_id = waited.id
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Job, waited_id).state == "done"
    assert count_rows(app, Tweet) == 3


def test_a_quiet_job_still_beats_while_it_runs(app, monkeypatch):
    """A step that reports no progress (a long fit) does not make a live job look abandoned elsewhere."""
    app.config["JOB_BEAT_SECONDS"] = 1
    beats = []

    def quiet(params, report):
        with app.app_context():
            first = db.session.get(Job, report.job_id).heartbeat_at
        time.sleep(2.5)
        with app.app_context():
            beats.append(db.session.get(Job, report.job_id).heartbeat_at - first)
        return "Done quietly.", {}

    monkeypatch.setitem(jobs.HANDLERS, "quiet", quiet)
    with app.app_context():
        assert jobs.run_here("quiet").state == "done"
    assert beats and beats[0] >= timedelta(seconds=1)


def test_a_job_is_run_once_even_when_two_processes_are_handed_it(app):
    with app.app_context():
        job = jobs.create("import-file", "twice")
        jobs.abandoned._fail_if_unchanged(job.id, "queued", job.heartbeat_at, "first")  # another process ended it
        assert jobs.execute(job.id).error == "first"  # this one does not run it again
        again = jobs.create("import-file", "twice")
        db.session.execute(sa.update(Job).where(Job.id == again.id).values(state="running"))
        db.session.commit()
        assert jobs.execute(again.id).state == "running"  # taken elsewhere: left alone
