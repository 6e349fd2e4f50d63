"""Security: headers on every answer, HTTPS in production, rate limits, and secrets kept out of sight."""

import logging

import pytest

from tests.test_pages import fake_posts, online
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
        }
    )
    app.instance_path = str(tmp_path / "instance")
    return app


def test_over_https_plain_http_is_redirected_and_cookies_are_secure(https_app):
    client = https_app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 302 and response.headers["Location"].startswith("https://")
    # Behind Heroku's router the app sees the original scheme through X-Forwarded-Proto (ProxyFix).
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
        jobs._finish(job.id, "done", message="Done.")
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
