"""Security: headers on every answer, HTTPS in production, rate limits, and secrets kept out of sight."""

import logging

import pytest

from tests.support.data import fake_posts, online
from twitapp import create_app, jobs


def test_every_answer_carries_the_security_headers(client, voices):
    for response in (client.get("/"), client.get("/api/users"), client.get("/user/nobody"), client.get("/healthz")):
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP here: HTTPS is off


def test_pages_need_no_inline_script(client, voices):
    for path in ("/", "/user/baker"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>" not in page and " on" + "click=" not in page and 'style="' not in page


@pytest.fixture
def https_app(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'https.sqlite3'}",
            "HTTPS": True,
            "TRUSTED_PROXIES": 1,  # as on Heroku, whose router says which scheme the client used
        }
    )
    app.instance_path = str(tmp_path / "instance")
    return app


def test_over_https_plain_http_is_redirected_and_cookies_are_secure(https_app):
    client = https_app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 302 and response.headers["Location"].startswith("https://")
    # Behind Heroku's router the app sees the original scheme through X-Forwarded-Proto (the trusted proxy).
    with https_app.app_context():
        from twitapp.extensions import db

        db.create_all()
    response = client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    cookie = response.headers["Set-Cookie"]  # the CSRF token lives in the session
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_ADD="2 per minute")
def test_adding_accounts_is_rate_limited_per_address(app, client, fake_x):
    online(app, fake_x)
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 5))
    for _ in range(2):
        assert client.post("/users", data={"username": "quaynews"}).status_code == 302
    response = client.post("/users", data={"username": "quaynews"})
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Too many requests from your address: at most 2 per 1 minute" in page
    assert response.headers["Retry-After"]
    # Another address has its own budget.
    response = client.post("/users", data={"username": "quaynews"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 302
    jobs.thread_worker.join()


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_API="3 per minute")
def test_the_api_is_rate_limited_but_job_polling_is_not(app, client, voices):
    for _ in range(3):
        assert client.get("/api/users").status_code == 200
    response = client.post("/api/predict", json={"usernames": voices, "text": "fresh bread"})
    assert response.status_code == 429
    assert response.get_json()["error"] == "Too Many Requests"
    with app.app_context():
        job = jobs.create("add", "someone")
        jobs.runner._finish(job.id, "done", message="Done.")
        job_id = job.id
    for _ in range(10):
        assert client.get(f"/api/jobs/{job_id}").status_code == 200


def test_the_token_is_never_shown_or_logged(app, client, fake_x, caplog):
    online(app, fake_x)
    token = fake_x.bearer_token
    fake_x.add_user(77, "quaynews", "Quay News", fake_posts(5000, 5))
    caplog.set_level(logging.DEBUG)
    fake_x.fail_next(401)
    client.post("/users", data={"username": "quaynews"})
    jobs.thread_worker.join()
    fake_x.fail_next(500, times=10)
    client.post("/api/users", json={"username": "pierdaily"})
    jobs.thread_worker.join()
    bodies = [client.get(path).get_data(as_text=True) for path in ("/", "/user/quaynews", "/user/pierdaily")]
    bodies += [client.get(f"/api/jobs/{n}").get_data(as_text=True) for n in (1, 2)]
    assert "bearer token" in bodies[1]  # the failure is explained...
    for body in bodies:
        assert token not in body  # ...without the token itself
    assert token not in caplog.text


def limited_app(tmp_path, **settings):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'limits.sqlite3'}",
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_API": "3 per minute",
            **settings,
        }
    )
    with app.app_context():
        from twitapp.extensions import db

        db.create_all()
    return app


def test_a_forwarded_for_header_is_not_believed_unless_a_proxy_is_trusted(tmp_path):
    client = limited_app(tmp_path).test_client()  # TRUSTED_PROXIES is 0 by default
    answers = [client.get("/api/users", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(5)]
    assert answers == [200, 200, 200, 429, 429]  # a new made-up address each time buys nothing


def test_behind_trusted_proxies_the_address_is_the_one_the_nearest_proxy_saw(tmp_path):
    client = limited_app(tmp_path, TRUSTED_PROXIES=1).test_client()
    spoofed = [
        client.get("/api/users", headers={"X-Forwarded-For": f"203.0.113.{n}, 198.51.100.7"}).status_code
        for n in range(4)
    ]
    assert spoofed == [200, 200, 200, 429]  # what the client wrote first is ignored; the router's entry counts
    other = client.get("/api/users", headers={"X-Forwarded-For": "198.51.100.8"})
    assert other.status_code == 200


def test_a_forwarded_host_is_not_believed_unless_configured(tmp_path):
    headers = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}
    client = limited_app(tmp_path, HTTPS=True, TRUSTED_PROXIES=1).test_client()
    response = client.get("/healthz", headers=headers)
    assert response.status_code == 302 and response.headers["Location"].startswith("https://localhost/")
    trusting = limited_app(tmp_path, HTTPS=True, TRUSTED_PROXIES=1, TRUST_FORWARDED_HOST=True).test_client()
    assert trusting.get("/healthz", headers=headers).headers["Location"].startswith("https://evil.example/")


def test_on_heroku_the_proxies_in_front_must_be_named(monkeypatch):
    from twitapp.config import ConfigError

    monkeypatch.setenv("DYNO", "web.1")
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES=1"):
        create_app({"TESTING": True})
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    assert create_app({"TESTING": True}).config["TRUSTED_PROXIES"] == 1
    monkeypatch.setenv("TRUSTED_PROXIES", "one")
    with pytest.raises(ConfigError, match="whole number of proxies"):
        create_app({"TESTING": True})


def test_with_redis_every_process_counts_against_one_limit(tmp_path, redis_url):
    """Two app processes (two gunicorn workers, two dynos) share one budget per address through Redis."""
    settings = {"REDIS_URL": redis_url, "RATELIMIT_STORAGE_URI": redis_url, "RATELIMIT_KEY_PREFIX": str(tmp_path)}
    workers = [limited_app(tmp_path, **settings).test_client() for _ in range(2)]
    answers = [workers[n % 2].get("/api/users").status_code for n in range(6)]
    assert answers == [200, 200, 200, 429, 429, 429]


def test_where_limits_are_counted_is_said(tmp_path, caplog):
    assert limited_app(tmp_path).test_client().get("/healthz").get_json()["rate_limits"] == "per process"
    assert limited_app(tmp_path, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0").extensions["rate_limits"] == "shared"
    assert limited_app(tmp_path, RATELIMIT_ENABLED=False).extensions["rate_limits"] == "off"
    caplog.set_level(logging.WARNING)
    create_app(
        {"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'served.sqlite3'}", "TESTING": False}
    )
    assert "Rate limits are counted in each process's memory" in caplog.text  # as gunicorn would log it
