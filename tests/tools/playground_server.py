"""A playground server on a free port in a thread, for the playground's tests, and a
client for its endpoints that returns the status and the decoded answer."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tensorcalc.tools.playground.server import Playground


@contextmanager
def running(time_limit: float = 20.0) -> Iterator[Playground]:
    """A playground serving in a thread until the block ends."""
    server = Playground("127.0.0.1", 0, time_limit)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def call(server: Playground, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """One request: the status, the body and the headers of the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def post(server: Playground, action: str, request: Any, **headers: str) -> tuple[int, Any]:
    """POST a JSON request to /api/ACTION with the server's token: status and answer."""
    sent = {"X-Tensorcalc-Token": server.token, "Content-Type": "application/json", **headers}
    status, body, _ = call(server, "POST", f"/api/{action}", json.dumps(request).encode(),
                           sent)
    return status, json.loads(body)
