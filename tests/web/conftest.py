"""The browser tests' fixtures: Debian's chromium, and the app it visits, served on loopback.

The app runs as in production as far as a browser can tell: CSRF protection on, sign-in required (one
operator, made with the real ``flask operator create``), no X API token, the demo accounts loaded by the
real ``flask seed-demo`` command. ``page`` is a desktop-sized browser tab, ``phone`` one 390 pixels wide;
both fail the test on a JavaScript error, a Content-Security-Policy violation or a broken asset. Without a
usable chromium the tests skip, or fail when ``REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import pytest

from tests.support.browser import (
    OPERATOR,
    OPERATOR_PASSWORD,
    PHONE,
    VIEWPORT,
    BrowserUnavailable,
    LiveServer,
    sign_in,
    start_chromium,
)
from tests.support.data import require
from twitapp import create_app
from twitapp.extensions import db


@pytest.fixture(scope="session")
def chromium():
    """The launched browser, shared by every test; skips (or fails under REQUIRE_BROWSER=1) without one."""
    try:
        playwright, browser = start_chromium()
    except BrowserUnavailable as exc:
        require("browser", str(exc))
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture(scope="session")
def browser_app(tmp_path_factory):
    """The app with CSRF on and no X token, its demo accounts loaded by the real ``seed-demo`` command."""
    tmp = tmp_path_factory.mktemp("browser")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "browser-test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/browser.sqlite3",
            "X_BEARER_TOKEN": None,
            "SIGN_IN_REQUIRED": True,
            "RATELIMIT_SIGN_IN": "1000 per minute",  # every test signs in, within the same minute
        }
    )
    app.instance_path = str(tmp / "instance")
    with app.app_context():
        db.create_all()
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, f"flask seed-demo failed:\n{result.output}\n{result.exception!r}"
    made = app.test_cli_runner().invoke(
        args=["operator", "create", OPERATOR, "--password-stdin"], input=OPERATOR_PASSWORD + "\n"
    )
    assert made.exit_code == 0, made.output
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_url(chromium, browser_app):
    """The app served over HTTP on loopback (the browser is started first, so a missing one skips early)."""
    server = LiveServer(browser_app).start()
    try:
        yield server.url
    finally:
        server.stop()


def watched_tab(chromium, live_url, viewport: dict):
    """A fresh browser context (own cookies) of the given size, and the problems seen on its pages."""
    context = chromium.new_context(viewport=viewport, base_url=live_url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    problems: list[str] = []

    def on_response(response) -> None:  # a page's own status is the test's business; its assets are not
        if response.status >= 400 and response.request.resource_type != "document":
            problems.append(f"{response.status} for {response.url}")

    def on_request_failed(request) -> None:  # ERR_ABORTED: cut short by the next navigation, not a fault
        if request.failure != "net::ERR_ABORTED":
            problems.append(f"request failed: {request.url} ({request.failure})")

    def on_console(message) -> None:
        # Content-Security-Policy violations show only here: the pages must need no exception to it.
        # (A document's own 4xx is logged here too; the status is the test's business, as above.)
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console {message.type}: {message.text}")

    tab.on("pageerror", lambda exc: problems.append(f"JavaScript error: {exc}"))
    tab.on("console", on_console)
    tab.on("response", on_response)
    tab.on("requestfailed", on_request_failed)
    return context, tab, problems


@pytest.fixture(params=["desktop"])
def page(request, chromium, live_url):
    """A browser tab at 1100x800, or 390x844 in a test marked
    ``@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)``; fails the test on a JS
    error or a broken asset."""
    viewport = PHONE if request.param == "phone" else VIEWPORT
    context, tab, problems = watched_tab(chromium, live_url, viewport)
    try:
        yield tab
    finally:
        context.close()
    assert not problems, "the page had problems:\n" + "\n".join(problems)


@pytest.fixture
def phone(chromium, live_url):
    """A browser tab 390 pixels wide, as on a phone; fails the test on a JS error or a broken asset."""
    context, tab, problems = watched_tab(chromium, live_url, PHONE)
    try:
        yield tab
    finally:
        context.close()
    assert not problems, "the page had problems:\n" + "\n".join(problems)


@pytest.fixture
def signed_in(page):
    """The page's browser signed in as the operator, through the sign-in form, back on the home page."""
    sign_in(page)
