"""What every fake network shares: a Flask app served on 127.0.0.1, on a port the system picks, in a
daemon thread, started and stopped by the test (or as a context manager)."""

from __future__ import annotations

import threading
from typing import Any, Self

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """One request per connection and no access log.

    HTTP/1.0 makes each connection end with its response, so no handler thread is left waiting on an idle
    keep-alive socket when the server stops (which would leak sockets and trip ResourceWarning).
    """

    protocol_version = "HTTP/1.0"

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class LoopbackServer:
    """A fake's server; the subclass sets ``_app`` (its Flask app) and ``name`` (its thread's) in __init__."""

    name = "fake-server"
    _app: Flask
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Self:
        if self._server is None:
            self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=QuietHandler)
            # A short poll keeps stop() quick: shutdown() waits for serve_forever's next poll.
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=self.name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
