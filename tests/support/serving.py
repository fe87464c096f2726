"""Real uvicorn serving an ASGI app over HTTP from a thread of the test process: no interpreter to start."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10


@contextmanager
def serving_in_thread(app: ASGIApp, port: int = 0, **options: Any) -> Iterator[str]:
    """uvicorn serving ``app`` on loopback ``port`` (by default a free one) until the block ends; yields its base URL.

    The app's lifespan runs as under any uvicorn: its start-up has finished (and its background tasks are running)
    when the URL is yielded, and its shutdown has finished when the block is left. ``options`` are uvicorn.Config's.
    A later block may serve on the same port again, as a server back from an outage does.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the closed connections' TIME_WAIT must not block it
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **options))
    # uvicorn installs no signal handlers outside the main thread: should_exit is how this server is stopped.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        _wait_until_started(server, thread)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT_S)
        sock.close()
    if thread.is_alive():
        pytest.fail(f"uvicorn still serving {STOP_TIMEOUT_S} s after it was told to stop")


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn stopped before it served (its log is in the captured output)")
        if time.monotonic() > deadline:
            pytest.fail(f"uvicorn not serving within {START_TIMEOUT_S} s")
        time.sleep(0.01)
