"""Helpers for the browser tests: the app served on loopback, and Debian's chromium driven by Playwright.

Playwright's own browser downloads are not used: ``playwright install`` needs the network. The tests launch
the system chromium instead, and skip (or fail, with ``REQUIRE_BROWSER=1``) when it cannot be started.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from twitapp import jobs
from twitapp.extensions import db
from twitapp.models import ModelVersion, SentimentModel
from twitapp.sentiment import model as sentiment
from twitapp.style import model as generate
from twitapp.virality import model as virality

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


VIEWPORT = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}  # a phone held upright
OPERATOR, OPERATOR_PASSWORD = "keeper", "lamp oil and patience"


class BrowserUnavailable(RuntimeError):
    """Chromium or Playwright cannot be used here; the message says why."""


class _QuietHandler(WSGIRequestHandler):
    """No access log, and one request per connection.

    HTTP/1.0 ends each connection with its response, so no handler thread is left blocked on an idle
    keep-alive socket when the server stops (which would leak the socket and trip ResourceWarning).
    """

    protocol_version = "HTTP/1.0"

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class LiveServer:
    """A WSGI app served by werkzeug on 127.0.0.1 with an OS-chosen port, in a daemon thread."""

    def __init__(self, app) -> None:
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="browser-live-server", daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_chromium():
    """``(playwright, browser)``, started; raises :class:`BrowserUnavailable` with the reason otherwise."""
    if not os.path.exists(CHROMIUM):
        raise BrowserUnavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise BrowserUnavailable("Playwright's sync API cannot run inside a running asyncio loop")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserUnavailable(f"the playwright package is not installed: {exc}") from None
    try:
        playwright = sync_playwright().start()
    except Exception as exc:  # the driver (a node process) could not be started
        raise BrowserUnavailable(f"Playwright's driver did not start: {exc}") from None
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except PlaywrightError as exc:
        playwright.stop()
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BrowserUnavailable(f"{CHROMIUM} did not launch: {first_line}") from None
    return playwright, browser


def sign_in(page) -> None:
    """Signs the page's browser in as the operator, through the sign-in form."""
    from playwright.sync_api import expect

    page.goto("/signin")
    page.locator("input#name").fill(OPERATOR)
    page.locator("input#password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".account-menu")).to_contain_text(f"Signed in as {OPERATOR}")


def post_times(page) -> list[datetime]:
    """The ``datetime`` attributes of the listed posts' ``time`` elements, top to bottom."""
    return [
        datetime.fromisoformat(v)
        for v in page.locator("ol.posts li.post time").evaluate_all("els => els.map(e => e.getAttribute('datetime'))")
    ]


def percentages(page) -> list[float]:
    """The ranked accounts' probabilities on a result page, in percent, top to bottom."""
    texts = page.locator("#ranking li .prob").all_inner_texts()
    values = []
    for text in texts:
        match = re.fullmatch(r"\s*([<>]?)(\d{1,3}(?:\.\d)?)\s*%\s*", text)
        assert match, f"a probability should read like '42.0%' (or '>99.9%', '<0.1%'), not {text!r}"
        bound, value = match.group(1), float(match.group(2))
        values.append(value + {"": 0.0, ">": 0.05, "<": -0.05}[bound])
    return values


def sideways_overflow(page) -> int:
    """How many pixels the page scrolls sideways (0 or less: it fits the screen's width)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def forget_models(app) -> None:
    """Once a test's jobs are over, drop the models it trained, so later tests meet the app as it was."""
    jobs.thread_worker.join()
    with app.app_context():
        db.session.execute(sa.delete(SentimentModel))
        db.session.execute(sa.delete(ModelVersion))
        db.session.commit()
    for service in (sentiment._service, virality._service, generate._service):
        service.clear()
